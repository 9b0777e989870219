// Fuzzes SocketAddress parsing (Sources/Net/SocketAddress+Parsing.swift, IPAddress.swift).
//
// Property: text either parses to an address whose description parses back to an equal
// address (and describes itself the same way again), or is refused with a ParseError that
// names the input and gives a reason; IPv4Address and IPv6Address round-trip through their
// descriptions the same way.

import Net

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let address = try SocketAddress(parsing: text)
        let description = address.description
        do {
            let again = try SocketAddress(parsing: description)
            expect(again == address, "\(description) parses back to \(address), got \(again)")
            expect(again.description == description, "the description is stable")
        } catch {
            violated("the description \(description) of \(text) is refused: \(error)")
        }
    } catch {
        expect(error.input == text && !error.reason.isEmpty, "a refusal names input and reason")
    }
    if let ip = IPv4Address(text) {
        expect(IPv4Address(ip.description) == ip, "IPv4 \(ip) round-trips")
    }
    if let ip = IPv6Address(text) {
        expect(IPv6Address(ip.description) == ip, "IPv6 \(ip) round-trips")
    }
    return 0
}
