// Fuzzes mini-redis's RequestParser (Examples/MiniRedis/RequestParser.swift).
//
// Property: parsing the input command by command either stops cleanly (needs more bytes, or a
// protocol error) or yields commands; each command parses the same from exactly its own
// bytes, any shorter prefix of them needs more, and its arguments re-encoded as a RESP
// multibulk parse back to the same arguments, consuming all of the encoding.

/// Parsers with the largest limits mini-redis accepts (--max-bulk up to 2^40) and with limits
/// small enough for inputs to reach them.
nonisolated(unsafe) let parsers = [
    RequestParser(maxBulk: 1 << 40),
    RequestParser(maxBulk: 16, maxArguments: 8, maxInline: 32),
]
/// Re-parses re-encoded commands: inline arguments are not bound by the bulk limits.
nonisolated(unsafe) let roundTripParser = RequestParser(maxBulk: 1 << 40)

/// The command at `start`, its arguments copied out of the parser's buffers.
enum Parsed: Equatable {
    case command([[UInt8]], consumed: Int)
    case nothing(consumed: Int)
    case needMore
    case failed(ProtocolError)
}

func parse(_ parser: RequestParser, _ bytes: UnsafeRawBufferPointer, from start: Int) -> Parsed {
    switch parser.parse(bytes, from: start) {
    case .command(let consumed):
        return .command(parser.arguments.map { Array($0) }, consumed: consumed)
    case .nothing(let consumed): return .nothing(consumed: consumed)
    case .needMore: return .needMore
    case .failed(let error): return .failed(error)
    }
}

/// `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
func encodeMultibulk(_ arguments: [[UInt8]]) -> [UInt8] {
    var out = Array("*\(arguments.count)\r\n".utf8)
    for argument in arguments {
        out += Array("$\(argument.count)\r\n".utf8)
        out += argument
        out += [0x0D, 0x0A]
    }
    return out
}

func check(_ parser: RequestParser, _ bytes: UnsafeRawBufferPointer) {
    var start = 0
    while start < bytes.count {
        let result = parse(parser, bytes, from: start)
        let consumed: Int
        switch result {
        case .needMore, .failed: return
        case .nothing(let used): consumed = used
        case .command(let arguments, let used):
            consumed = used
            expect(!arguments.isEmpty, "a command has arguments")
            // Inline commands are bound by their length only, as in Redis.
            expect(
                bytes[start] != UInt8(ascii: "*") || arguments.count <= parser.maxArguments,
                "multibulk argument count within the limit")
            let encoded = encodeMultibulk(arguments)
            let again = withExactCopy(of: encoded) { parse(roundTripParser, $0, from: 0) }
            expect(
                again == .command(arguments, consumed: encoded.count),
                "re-encoded arguments parse back the same: \(arguments) -> \(again)")
        }
        expect(consumed > 0 && consumed <= bytes.count - start, "consumed within the input")
        let own = bytes[start..<(start + consumed)]
        let alone = withExactCopy(of: own) { parse(parser, $0, from: 0) }
        expect(alone == result, "a command parses the same from its own bytes")
        if consumed > 1 {
            let short = withExactCopy(of: own.dropLast()) { parse(parser, $0, from: 0) }
            // An inline line may use the two bytes past the limit for its CRLF, so its prefix
            // can be too long without a line end (Redis decides the same way).
            let inline = bytes[start] != UInt8(ascii: "*")
            expect(
                short == .needMore || (inline && short == .failed(.tooBigInlineRequest)),
                "a prefix of a command needs more, got \(short)")
        }
        start += consumed
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for parser in parsers { check(parser, bytes) }
    return 0
}
