/// Why a request was rejected; the connection closes after the error reply, as in Redis.
enum ProtocolError: Error, Equatable {
    case invalidMultibulkLength
    case invalidBulkLength
    case expectedDollar(UInt8)
    case tooBigCountString(multibulk: Bool)
    case tooBigInlineRequest
    case unbalancedQuotes

    /// The reply text, worded as Redis words it.
    var message: String {
        switch self {
        case .invalidMultibulkLength: "ERR Protocol error: invalid multibulk length"
        case .invalidBulkLength: "ERR Protocol error: invalid bulk length"
        case .expectedDollar(let byte):
            "ERR Protocol error: expected '$', got '\(Character(Unicode.Scalar(byte)))'"
        case .tooBigCountString(let multibulk):
            "ERR Protocol error: too big \(multibulk ? "mbulk" : "bulk") count string"
        case .tooBigInlineRequest: "ERR Protocol error: too big inline request"
        case .unbalancedQuotes: "ERR Protocol error: unbalanced quotes in request"
        }
    }
}

/// What the parser found at the front of the buffer.
enum ParseResult: Equatable {
    /// A command, its arguments in `arguments`; `consumed` bytes make it up.
    case command(consumed: Int)
    /// Bytes that hold no command (an empty line, `*0`); skip them.
    case nothing(consumed: Int)
    /// The command is not complete yet.
    case needMore
    /// The bytes break the protocol.
    case failed(ProtocolError)
}

/// Splits a byte stream into commands: RESP multibulk arrays (`*2\r\n$3\r\nGET\r\n…`) and
/// inline commands (`GET key\r\n`, quoting as `redis-cli` and Redis accept it).
///
/// Multibulk arguments point into the caller's buffer, so they cost no copy; inline ones are
/// unquoted into a scratch buffer owned by the parser. Nothing is allocated from a length the
/// peer declares: a command is only parsed once all its bytes have arrived, and the caller
/// bounds how much it buffers.
final class RequestParser {
    /// Largest bulk string accepted.
    let maxBulk: Int
    /// Most arguments in one multibulk request.
    let maxArguments: Int
    /// Longest inline request (and longest count line).
    let maxInline: Int
    /// The arguments of the last command parsed; valid until the next `parse` or until the
    /// buffer it came from goes away.
    // Unchecked exclusivity: one thread; nothing reads it while `parse` writes it.
    @exclusivity(unchecked) private(set) var arguments: [UnsafeRawBufferPointer] = []
    private let scratch: UnsafeMutableRawBufferPointer

    /// A parser with Redis's limits unless told otherwise.
    init(maxBulk: Int, maxArguments: Int = 1 << 20, maxInline: Int = 64 << 10) {
        self.maxBulk = maxBulk
        self.maxArguments = maxArguments
        self.maxInline = maxInline
        scratch = .allocate(byteCount: maxInline + 2, alignment: 16)
        arguments.reserveCapacity(64)
    }

    deinit { scratch.deallocate() }

    /// Parses the request starting at `start` in `bytes`.
    func parse(_ bytes: UnsafeRawBufferPointer, from start: Int) -> ParseResult {
        if arguments.capacity > 4096 {
            arguments = []
            arguments.reserveCapacity(64)
        } else {
            arguments.removeAll(keepingCapacity: true)
        }
        if bytes[start] == UInt8(ascii: "*") { return parseMultibulk(bytes, from: start) }
        return parseInline(bytes, from: start)
    }

    private enum Line {
        case number(Int64?, next: Int)
        case needMore
        case tooLong
    }

    /// The decimal number after the type byte at `start`, up to CR (the LF after it is
    /// skipped unchecked, as Redis does). Scans and converts in one pass; a number that is
    /// not plain digits (or too long to be exact) goes through the strict parser.
    @inline(__always)
    private func numberLine(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Line {
        let limit = min(bytes.count, start + maxInline)
        var index = start + 1
        var value: Int64 = 0
        var plain = true
        while index < limit {
            let digit = bytes[index] &- UInt8(ascii: "0")
            if digit <= 9 {
                value = value &* 10 &+ Int64(digit)
            } else if bytes[index] == 0x0D {
                break
            } else {
                plain = false
            }
            index += 1
        }
        if index == limit {
            return bytes.count - start > maxInline ? .tooLong : .needMore
        }
        guard index + 1 < bytes.count else { return .needMore }
        let length = index - start - 1
        if plain && length > 0 && length <= 18 && (length == 1 || bytes[start + 1] != 0x30) {
            return .number(value, next: index + 2)
        }
        let digits = UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<index])
        return .number(Decimal.parse(digits), next: index + 2)
    }

    private func parseMultibulk(_ bytes: UnsafeRawBufferPointer, from start: Int) -> ParseResult {
        let count: Int
        var position: Int
        switch numberLine(bytes, at: start) {
        case .needMore: return .needMore
        case .tooLong: return .failed(.tooBigCountString(multibulk: true))
        case .number(let value, let next):
            guard let value, value <= maxArguments else {
                return .failed(.invalidMultibulkLength)
            }
            if value <= 0 { return .nothing(consumed: next - start) }
            count = Int(value)
            position = next
        }
        for _ in 0..<count {
            guard position < bytes.count else { return .needMore }
            guard bytes[position] == UInt8(ascii: "$") else {
                return .failed(.expectedDollar(bytes[position]))
            }
            switch numberLine(bytes, at: position) {
            case .needMore: return .needMore
            case .tooLong: return .failed(.tooBigCountString(multibulk: false))
            case .number(let value, let next):
                guard let value, value >= 0, value <= maxBulk else {
                    return .failed(.invalidBulkLength)
                }
                let length = Int(value)
                guard bytes.count - next >= length + 2 else { return .needMore }
                arguments.append(UnsafeRawBufferPointer(rebasing: bytes[next..<(next + length)]))
                position = next + length + 2
            }
        }
        return .command(consumed: position - start)
    }

    private func parseInline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> ParseResult {
        // A line of `maxInline` bytes may still be followed by CR and LF (Redis does not count
        // them); only more than `maxInline` bytes with no LF among them is too big.
        let limit = min(bytes.count, start + maxInline + 2)
        var newline = start
        while newline < limit && bytes[newline] != 0x0A { newline += 1 }
        if newline == limit {
            return bytes.count - start > maxInline ? .failed(.tooBigInlineRequest) : .needMore
        }
        var end = newline
        if end > start && bytes[end - 1] == 0x0D { end -= 1 }
        guard splitInline(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) else {
            return .failed(.unbalancedQuotes)
        }
        let consumed = newline + 1 - start
        return arguments.isEmpty ? .nothing(consumed: consumed) : .command(consumed: consumed)
    }

    /// Splits a line into arguments like Redis's `sdssplitargs`: blanks separate, "double
    /// quotes" take \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' take \'; a closing
    /// quote must end the argument. False on unbalanced quotes.
    private func splitInline(_ line: UnsafeRawBufferPointer) -> Bool {
        let out = scratch.baseAddress!
        var written = 0
        var index = 0
        let count = line.count
        func isBlank(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0
                || byte == 0x0B || byte == 0x0C
        }
        func put(_ byte: UInt8) {
            out.storeBytes(of: byte, toByteOffset: written, as: UInt8.self)
            written += 1
        }
        while true {
            while index < count && isBlank(line[index]) { index += 1 }
            if index == count { return true }
            let argumentStart = written
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                if inDouble {
                    guard index < count else { return false }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\") && index + 3 < count
                        && line[index + 1] == UInt8(ascii: "x"),
                        let high = hexValue(line[index + 2]), let low = hexValue(line[index + 3])
                    {
                        put(high << 4 | low)
                        index += 3
                    } else if byte == UInt8(ascii: "\\") && index + 1 < count {
                        index += 1
                        switch line[index] {
                        case UInt8(ascii: "n"): put(0x0A)
                        case UInt8(ascii: "r"): put(0x0D)
                        case UInt8(ascii: "t"): put(0x09)
                        case UInt8(ascii: "b"): put(0x08)
                        case UInt8(ascii: "a"): put(0x07)
                        case let other: put(other)
                        }
                    } else if byte == UInt8(ascii: "\"") {
                        if index + 1 < count && !isBlank(line[index + 1]) { return false }
                        done = true
                    } else {
                        put(byte)
                    }
                } else if inSingle {
                    guard index < count else { return false }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\") && index + 1 < count
                        && line[index + 1] == UInt8(ascii: "'")
                    {
                        put(UInt8(ascii: "'"))
                        index += 1
                    } else if byte == UInt8(ascii: "'") {
                        if index + 1 < count && !isBlank(line[index + 1]) { return false }
                        done = true
                    } else {
                        put(byte)
                    }
                } else if index == count || isBlank(line[index]) {
                    done = true
                } else if line[index] == UInt8(ascii: "\"") {
                    inDouble = true
                } else if line[index] == UInt8(ascii: "'") {
                    inSingle = true
                } else {
                    put(line[index])
                }
                if index < count { index += 1 }
            }
            arguments.append(
                UnsafeRawBufferPointer(start: out + argumentStart, count: written - argumentStart))
        }
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
