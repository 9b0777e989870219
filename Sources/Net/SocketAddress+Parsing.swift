import SysCalls

extension SocketAddress {
    /// Why a string is not a socket address.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The text that failed to parse.
        public let input: String
        /// What is wrong with it and what to write instead.
        public let reason: String

        /// `"cannot parse \"localhost:80\" as a socket address: …"`.
        public var description: String {
            "cannot parse \"\(input)\" as a socket address: \(reason)"
        }
    }

    /// Parses `"a.b.c.d:port"`, `"[ipv6]:port"`, `"[ipv6%zone]:port"` (zone = interface
    /// index or name), a Unix path starting with `/`, `./` or `../`, or `"@name"` for a Linux
    /// abstract socket.
    ///
    /// Host names are refused: resolving them needs DNS, which this layer does not do. So are
    /// URLs (`"tcp://127.0.0.1:80"`): the error names the scheme and what to write instead.
    public init(parsing text: String) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(input: text, reason: reason) }
        if text.isEmpty { throw fail("it is empty") }
        if text.utf8.contains(0) { throw fail("it contains a NUL byte") }

        if text.hasPrefix("@") {
            let name = String(text.dropFirst())
            if name.isEmpty { throw fail("an abstract socket needs a name after '@'") }
            try Self.checkUnixLength(name, kind: "abstract socket name", fail)
            self = .unixAbstract(name)
            return
        }
        if text.hasPrefix("/") || text.hasPrefix("./") || text.hasPrefix("../") {
            try Self.checkUnixLength(text, kind: "Unix socket path", fail)
            self = .unix(text)
            return
        }
        // Checked after the Unix forms, whose names may contain "://" legitimately.
        if let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") {
            let scheme = text[..<colon]
            let rest = text[text.index(colon, offsetBy: 3)...]
            let instead = rest.isEmpty ? "the address alone, as in 127.0.0.1:8080" : "\"\(rest)\""
            throw fail(
                "\"\(scheme)://\" is a URL scheme; a socket address has none, so write \(instead)")
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw fail("'[' opens an IPv6 address but no ']' closes it")
            }
            let inside = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw fail("a port must follow the IPv6 address, as in [::1]:8080")
            }
            let port = try Self.parsePort(rest.dropFirst(), fail)
            let (host, zone) = Self.splitZone(inside)
            guard let ip = IPv6Address(host) else {
                throw fail("\"\(host)\" is not an IPv6 address")
            }
            let scopeID = try Self.parseZone(zone, fail)
            self = .v6(ip, port: port, scopeID: scopeID)
            return
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw fail(
                "expected host:port (127.0.0.1:8080), [ipv6]:port ([::1]:8080), "
                    + "a Unix path (/tmp/x.sock, ./x.sock) or @abstract-name")
        }
        let host = text[..<colon]
        if host.contains(":") {
            throw fail("an IPv6 address needs brackets before the port, as in [::1]:8080")
        }
        let port = try Self.parsePort(text[text.index(after: colon)...], fail)
        if let ip = IPv4Address(host) {
            self = .v4(ip, port: port)
        } else if host.contains(where: \.isLetter) {
            throw fail(
                "\"\(host)\" is a host name; this layer does no DNS lookups, "
                    + "so give an IP address (127.0.0.1, [::1])")
        } else {
            throw fail("\"\(host)\" is not an IPv4 address (expected four numbers 0-255: a.b.c.d)")
        }
    }

    private static func checkUnixLength(
        _ text: String, kind: String, _ fail: (String) -> ParseError
    ) throws(ParseError) {
        let length = text.utf8.count
        if length > maxUnixPathLength {
            throw fail("the \(kind) is \(length) bytes; the limit is \(maxUnixPathLength)")
        }
    }

    private static func parsePort(
        _ text: Substring, _ fail: (String) -> ParseError
    ) throws(ParseError) -> UInt16 {
        if text.isEmpty { throw fail("the port is missing after ':'") }
        guard text.allSatisfy(\.isASCIIDigit), let value = Int(text), value <= 65535 else {
            throw fail("\"\(text)\" is not a port number (0-65535)")
        }
        return UInt16(value)
    }

    private static func splitZone(_ text: Substring) -> (Substring, Substring?) {
        guard let percent = text.firstIndex(of: "%") else { return (text, nil) }
        return (text[..<percent], text[text.index(after: percent)...])
    }

    private static func parseZone(
        _ zone: Substring?, _ fail: (String) -> ParseError
    ) throws(ParseError) -> UInt32 {
        guard let zone else { return 0 }
        if zone.isEmpty { throw fail("'%' must be followed by an interface index or name") }
        if zone.allSatisfy(\.isASCIIDigit) {
            guard let index = UInt32(zone) else {
                throw fail("interface index \(zone) is out of range")
            }
            return index
        }
        do {
            return try Sys.ifNametoindex(String(zone))
        } catch {
            throw fail("there is no network interface called \"\(zone)\" (\(error.name))")
        }
    }
}
