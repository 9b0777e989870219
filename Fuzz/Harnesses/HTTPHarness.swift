// Fuzzes http-hello's RequestParser (Examples/HTTPHello/RequestParser.swift).
//
// Property: a head that parses is self-delimiting (it parses the same from exactly its own
// bytes, and any shorter prefix of it is incomplete) and its meaning (method, root target,
// connection mode, body length) written back as a canonical request parses to the same
// meaning; "incomplete" only below the header limit; anything else is a refusal, never a trap.
// The limits include Int.max bodies, where Content-Length digits could overflow.

let parsers = [
    RequestParser(maxHeaderBytes: 8 << 10, maxBodyBytes: 1 << 20),
    RequestParser(maxHeaderBytes: 64, maxBodyBytes: 10),
    RequestParser(maxHeaderBytes: 8 << 10, maxBodyBytes: 1 << 62),
    RequestParser(maxHeaderBytes: 8 << 10, maxBodyBytes: .max),
]

/// What a parsed head means, comparable.
struct Meaning: Equatable {
    var method: String
    var isRoot: Bool
    var mode: ConnectionMode
    var contentLength: Int

    init(_ head: RequestHead) {
        switch head.method {
        case .get: method = "GET"
        case .head: method = "HEAD"
        case .other: method = "POST"
        }
        isRoot = head.isRoot
        mode = head.mode
        contentLength = head.contentLength
    }

    /// A canonical request with this meaning.
    var request: [UInt8] {
        var text = "\(method) \(isRoot ? "/" : "/other") "
        switch mode {
        case .persistent: text += "HTTP/1.1\r\nHost: fuzz\r\n"
        case .close: text += "HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
        case .keepAlive: text += "HTTP/1.0\r\nConnection: keep-alive\r\n"
        }
        if contentLength > 0 { text += "Content-Length: \(contentLength)\r\n" }
        return Array((text + "\r\n").utf8)
    }
}

func check(_ parser: RequestParser, _ bytes: UnsafeRawBufferPointer) {
    switch parser.parse(bytes) {
    case .failure:
        return
    case .incomplete:
        expect(bytes.count < parser.maxHeaderBytes, "incomplete only below the header limit")
    case .request(let head):
        expect(head.length > 0 && head.length <= bytes.count, "head length within the input")
        expect(head.length <= parser.maxHeaderBytes, "head length within the limit")
        expect(
            head.contentLength >= 0 && head.contentLength <= parser.maxBodyBytes,
            "body length within the limit")
        let meaning = Meaning(head)
        let own = bytes[..<head.length]
        withExactCopy(of: own) { alone in
            guard case .request(let again) = parser.parse(alone) else {
                violated("a head parses from its own bytes")
            }
            expect(again.length == head.length && Meaning(again) == meaning, "same head alone")
        }
        withExactCopy(of: own.dropLast()) { short in
            guard case .incomplete = parser.parse(short) else {
                violated("a prefix of a head is incomplete")
            }
        }
        let canonical = meaning.request
        // The canonical form may be longer than a tiny header limit allows.
        guard canonical.count <= parser.maxHeaderBytes else { return }
        withExactCopy(of: canonical) { encoded in
            guard case .request(let again) = parser.parse(encoded) else {
                violated(
                    "the canonical request parses: \(String(decoding: canonical, as: UTF8.self))")
            }
            expect(
                again.length == canonical.count && Meaning(again) == meaning,
                "the canonical request means the same")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for parser in parsers { check(parser, bytes) }
    return 0
}
