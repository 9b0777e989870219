import Net
import SysCalls
import Testing

extension NetTests {
    /// Parsing, printing and round-tripping socket addresses.
    @Suite("SocketAddress")
    struct SocketAddressTests {
        @Test(
            "valid addresses parse and their description round-trips",
            arguments: [
                ("127.0.0.1:8080", SocketAddress.v4(.loopback, port: 8080)),
                ("0.0.0.0:0", .v4(.any, port: 0)),
                ("255.255.255.255:65535", .v4(.broadcast, port: 65535)),
                ("[::1]:8080", .v6(.loopback, port: 8080)),
                ("[::]:80", .v6(.any, port: 80)),
                ("[fe80::1%1]:80", .v6(IPv6Address("fe80::1")!, port: 80, scopeID: 1)),
                ("[2001:db8::1:0:0:1]:443", .v6(IPv6Address("2001:db8:0:0:1:0:0:1")!, port: 443)),
                ("[::ffff:10.0.0.1]:53", .v6(IPv6Address("::ffff:a00:1")!, port: 53)),
                ("/tmp/app.sock", .unix("/tmp/app.sock")),
                ("./relative.sock", .unix("./relative.sock")),
                ("@abstract-name", .unixAbstract("abstract-name")),
            ])
        func parsesAndRoundTrips(_ text: String, _ expected: SocketAddress) throws {
            let address = try SocketAddress(parsing: text)
            #expect(address == expected)
            #expect(address.description == text)
            #expect(try SocketAddress(parsing: address.description) == address)
        }

        @Test(
            "IPv6 text is printed in RFC 5952 form",
            arguments: [
                ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
                ("0:0:0:0:0:0:0:0", "::"),
                ("1:0:0:0:0:0:0:0", "1::"),
                ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),  // single zeros are not compressed
                ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),  // the longest run wins
                ("1:0:0:1:1:0:0:1", "1::1:1:0:0:1"),  // the first of equal runs wins
                ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
                ("fe80:0000:0000:0000:0000:0000:0000:00ab", "fe80::ab"),
            ])
        func ipv6Canonical(_ text: String, _ canonical: String) throws {
            let ip = try #require(IPv6Address(text))
            #expect(ip.description == canonical)
            #expect(IPv6Address(canonical) == ip)
        }

        @Test(
            "malformed IP addresses are rejected",
            arguments: [
                "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", "",
            ])
        func badIPv4(_ text: String) {
            #expect(IPv4Address(text) == nil)
        }

        @Test(
            "malformed IPv6 addresses are rejected",
            arguments: [
                "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", ":1::", "1:::2",
                "::1.2.3", "1:2:3:4:5:6:7::1.2.3.4", "",
            ])
        func badIPv6(_ text: String) {
            #expect(IPv6Address(text) == nil)
        }

        @Test(
            "bad socket addresses fail with an actionable reason",
            arguments: [
                ("localhost:80", "\"localhost\" is a host name; this layer does no DNS lookups"),
                ("example.com:443", "\"example.com\" is a host name"),
                ("::1:80", "an IPv6 address needs brackets before the port, as in [::1]:8080"),
                ("127.0.0.1", "expected host:port"),
                ("127.0.0.1:", "the port is missing after ':'"),
                ("127.0.0.1:65536", "\"65536\" is not a port number (0-65535)"),
                ("127.0.0.1:-1", "\"-1\" is not a port number"),
                ("1.2.3.400:80", "\"1.2.3.400\" is not an IPv4 address"),
                ("[::1]", "a port must follow the IPv6 address"),
                ("[::1]:x", "\"x\" is not a port number"),
                ("[::1:80", "'[' opens an IPv6 address but no ']' closes it"),
                ("[1::2::3]:80", "\"1::2::3\" is not an IPv6 address"),
                ("[fe80::1%]:80", "'%' must be followed by an interface index or name"),
                ("[fe80::1%no-such-if0]:80", "there is no network interface called"),
                ("@", "an abstract socket needs a name after '@'"),
                ("", "it is empty"),
                ("relative.sock", "expected host:port"),
                (
                    "tcp://127.0.0.1:80",
                    "\"tcp://\" is a URL scheme; a socket address has none, so write \"127.0.0.1:80\""
                ),
                ("tcp://[::1]:80", "\"tcp://\" is a URL scheme; a socket address has none"),
                ("unix:///tmp/app.sock", "\"unix://\" is a URL scheme"),
                ("http://", "\"http://\" is a URL scheme; a socket address has none, so write the"),
            ])
        func rejects(_ text: String, _ reason: String) {
            let error = #expect(throws: SocketAddress.ParseError.self) {
                _ = try SocketAddress(parsing: text)
            }
            #expect(error?.input == text)
            #expect(error?.reason.hasPrefix(reason) == true, "reason was: \(error?.reason ?? "")")
        }

        @Test("the DNS refusal reads well as a whole message")
        func dnsMessage() {
            let error = #expect(throws: SocketAddress.ParseError.self) {
                _ = try SocketAddress(parsing: "localhost:80")
            }
            #expect(
                error?.description
                    == "cannot parse \"localhost:80\" as a socket address: \"localhost\" is a host "
                    + "name; this layer does no DNS lookups, so give an IP address "
                    + "(127.0.0.1, [::1])")
        }

        @Test("a zone given as an interface name becomes its index")
        func zoneByName() throws {
            let lo = try NetworkInterface.index(named: "lo")
            let address = try SocketAddress(parsing: "[fe80::1%lo]:80")
            #expect(address == .v6(IPv6Address("fe80::1")!, port: 80, scopeID: lo))
            #expect(address.description == "[fe80::1%\(lo)]:80")
        }

        @Test("flow info travels but is not part of identity or text")
        func flowInfo() {
            let a = SocketAddress.v6(.loopback, port: 1, flowInfo: 7)
            let b = SocketAddress.v6(.loopback, port: 1)
            #expect(a == b)
            #expect(a.hashValue == b.hashValue)
            #expect(a.description == "[::1]:1")
        }

        @Test("ports, and distinct families never compare equal")
        func portsAndFamilies() {
            #expect(SocketAddress.v4(.loopback, port: 9).port == 9)
            #expect(SocketAddress.unix("/x").port == nil)
            #expect(SocketAddress.unix("x") != .unixAbstract("x"))
            #expect(SocketAddress.unixUnnamed.description == "(unnamed)")
            #expect(IPv6Address("::ffff:127.0.0.1")?.ipv4Mapped == .loopback)
            #expect(IPv4Address(10, 1, 2, 3).bytes == [10, 1, 2, 3])
        }
    }
}
