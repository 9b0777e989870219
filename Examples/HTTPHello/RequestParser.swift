/// What a request asks of the connection once it is answered.
enum ConnectionMode: Int {
    /// HTTP/1.1 default: keep the connection; the response carries no Connection header.
    case persistent = 0
    /// Close after the response (`Connection: close`, or HTTP/1.0 without keep-alive).
    case close = 1
    /// HTTP/1.0 with `Connection: keep-alive`: keep it, and say so in the response.
    case keepAlive = 2
}

/// The method, as far as routing cares.
enum RequestMethod {
    /// GET.
    case get
    /// HEAD: the GET response's headers without its body.
    case head
    /// Anything else (a valid token).
    case other
}

/// A request head that parsed cleanly.
struct RequestHead {
    /// Bytes from the start of the buffer through the blank line that ends the head.
    var length = 0
    /// The method.
    var method = RequestMethod.other
    /// True when the target's path is exactly `/` (a query string is ignored).
    var isRoot = false
    /// What to do with the connection after the response.
    var mode = ConnectionMode.persistent
    /// The body that follows the head, to be read and ignored.
    var contentLength = 0
}

/// Why a request is refused; each answer closes the connection.
enum RequestFailure {
    /// 400: bad request line, header syntax, Content-Length, framing or version.
    case badRequest
    /// 413: a Content-Length above the body limit.
    case payloadTooLarge
    /// 431: the head is longer than the header limit.
    case headersTooLarge
    /// 501: Transfer-Encoding (chunked bodies are not supported).
    case notImplemented
}

/// The outcome of looking at the front of the input.
enum ParseResult {
    /// The head is not complete yet and still within the limit: wait for more bytes.
    case incomplete
    /// A complete, valid head.
    case request(RequestHead)
    /// A request to refuse.
    case failure(RequestFailure)
}

/// An HTTP/1.x request-head parser that works in place on the bytes it is given.
///
/// It never allocates and keeps no state between calls: an incomplete head is parsed again
/// from its start once more bytes arrive (heads are small and bounded by `maxHeaderBytes`).
/// Syntax follows RFC 9112 strictly: CRLF or bare LF line ends, single spaces in the
/// request line, no whitespace before a header's colon, no obsolete line folding, no
/// control characters in values. Leading empty lines before a request line are skipped.
struct RequestParser {
    /// Longest accepted head (request line, headers and the blank line), in bytes.
    let maxHeaderBytes: Int
    /// Largest Content-Length accepted.
    let maxBodyBytes: Int

    private static var tokenLow: UInt64 { 0x03ff_6cfa_0000_0000 }
    private static var tokenHigh: UInt64 { 0x57ff_ffff_c7ff_fffe }

    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool {
        if byte >= 128 { return false }
        let mask = byte < 64 ? tokenLow : tokenHigh
        return (mask >> UInt64(byte & 63)) & 1 == 1
    }

    /// Field-value bytes: visible ASCII, obs-text, space and tab.
    @inline(__always)
    static func isFieldByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == 0x09
    }

    /// Parses the request head at the front of `bytes`.
    func parse(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        let limit = min(bytes.count, maxHeaderBytes)
        var start = 0
        // Skip empty lines before the request line (RFC 9112 §2.2), counted in the limit.
        while true {
            if start < limit && bytes[start] == 0x0A {
                start += 1
            } else if start + 1 < limit && bytes[start] == 0x0D && bytes[start + 1] == 0x0A {
                start += 2
            } else {
                break
            }
        }
        var head = RequestHead()
        var isHTTP10 = false
        var sawClose = false
        var sawKeepAlive = false
        var sawContentLength = false
        var sawTransferEncoding = false
        var hostCount = 0
        var lineStart = start
        var isRequestLine = true
        while true {
            // Find the end of this line within the limit.
            var newline = lineStart
            while newline < limit && bytes[newline] != 0x0A { newline += 1 }
            if newline == limit {
                if isRequestLine && !Self.couldStartRequestLine(bytes, from: lineStart, to: limit) {
                    return .failure(.badRequest)  // at once, not after maxHeaderBytes of junk
                }
                return bytes.count >= maxHeaderBytes ? .failure(.headersTooLarge) : .incomplete
            }
            var lineEnd = newline
            if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            if isRequestLine {
                guard
                    parseRequestLine(
                        bytes, from: lineStart, to: lineEnd, into: &head, isHTTP10: &isHTTP10)
                else { return .failure(.badRequest) }
                isRequestLine = false
            } else if lineEnd == lineStart {
                head.length = newline + 1
                break
            } else {
                // field-name ":" OWS field-value OWS
                var cursor = lineStart
                while cursor < lineEnd && Self.isToken(bytes[cursor]) { cursor += 1 }
                // An empty name covers obs-fold (a line starting with whitespace) too.
                guard cursor > lineStart, cursor < lineEnd, bytes[cursor] == 0x3A else {
                    return .failure(.badRequest)
                }
                let nameStart = lineStart
                let nameCount = cursor - lineStart
                var valueStart = cursor + 1
                var valueEnd = lineEnd
                var index = valueStart
                while index < valueEnd {
                    guard Self.isFieldByte(bytes[index]) else { return .failure(.badRequest) }
                    index += 1
                }
                while valueStart < valueEnd && Self.isSpace(bytes[valueStart]) { valueStart += 1 }
                while valueEnd > valueStart && Self.isSpace(bytes[valueEnd - 1]) { valueEnd -= 1 }
                switch nameCount {
                case 4 where Self.matches(bytes, nameStart, "host"):
                    hostCount += 1
                case 10 where Self.matches(bytes, nameStart, "connection"):
                    Self.scanConnection(
                        bytes, from: valueStart, to: valueEnd, close: &sawClose,
                        keepAlive: &sawKeepAlive)
                case 14 where Self.matches(bytes, nameStart, "content-length"):
                    guard let length = parseLength(bytes, from: valueStart, to: valueEnd),
                        !sawContentLength || length == head.contentLength
                    else { return .failure(.badRequest) }
                    sawContentLength = true
                    head.contentLength = length
                case 17 where Self.matches(bytes, nameStart, "transfer-encoding"):
                    sawTransferEncoding = true
                default:
                    break
                }
            }
            lineStart = newline + 1
        }
        if sawTransferEncoding {
            return .failure(sawContentLength || isHTTP10 ? .badRequest : .notImplemented)
        }
        // HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); HTTP/1.0 allows at most one.
        if hostCount > 1 || (!isHTTP10 && hostCount == 0) { return .failure(.badRequest) }
        if head.contentLength > maxBodyBytes { return .failure(.payloadTooLarge) }
        if sawClose {
            head.mode = .close
        } else if isHTTP10 {
            head.mode = sawKeepAlive ? .keepAlive : .close
        }
        return .request(head)
    }

    /// method SP request-target SP HTTP-version, each single-space separated.
    @inline(__always)
    private func parseRequestLine(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int,
        into head: inout RequestHead, isHTTP10: inout Bool
    ) -> Bool {
        var cursor = start
        while cursor < end && Self.isToken(bytes[cursor]) { cursor += 1 }
        let methodCount = cursor - start
        guard methodCount > 0, cursor < end, bytes[cursor] == 0x20 else { return false }
        if methodCount == 3 && bytes[start] == 0x47 && bytes[start + 1] == 0x45
            && bytes[start + 2] == 0x54
        {
            head.method = .get
        } else if methodCount == 4 && bytes[start] == 0x48 && bytes[start + 1] == 0x45
            && bytes[start + 2] == 0x41 && bytes[start + 3] == 0x44
        {
            head.method = .head
        }
        cursor += 1
        let targetStart = cursor
        while cursor < end && bytes[cursor] > 0x20 && bytes[cursor] < 0x7F { cursor += 1 }
        guard cursor > targetStart, cursor < end, bytes[cursor] == 0x20 else { return false }
        head.isRoot = Self.isRootTarget(bytes, from: targetStart, to: cursor)
        cursor += 1
        // "HTTP/" DIGIT "." DIGIT and nothing after it.
        guard end - cursor == 8, bytes[cursor] == 0x48, bytes[cursor + 1] == 0x54,
            bytes[cursor + 2] == 0x54, bytes[cursor + 3] == 0x50, bytes[cursor + 4] == 0x2F,
            bytes[cursor + 5] == 0x31, bytes[cursor + 6] == 0x2E,
            bytes[cursor + 7] >= 0x30, bytes[cursor + 7] <= 0x39
        else { return false }
        isHTTP10 = bytes[cursor + 7] == 0x30
        return true
    }

    /// Origin form `/` or `/?query`, or absolute form `http://authority/` likewise.
    private static func isRootTarget(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int
    ) -> Bool {
        var path = start
        if bytes[start] != 0x2F {
            // Absolute form: scheme "://" authority, then the path (empty means "/").
            var cursor = start
            while cursor + 2 < end
                && !(bytes[cursor] == 0x3A && bytes[cursor + 1] == 0x2F
                    && bytes[cursor + 2] == 0x2F)
            {
                cursor += 1
            }
            guard cursor + 2 < end else { return false }
            cursor += 3
            while cursor < end && bytes[cursor] != 0x2F && bytes[cursor] != 0x3F { cursor += 1 }
            if cursor == end || bytes[cursor] == 0x3F { return true }
            path = cursor
        }
        return path + 1 == end || bytes[path + 1] == 0x3F
    }

    /// 1*DIGIT, saturating just above the body limit (so huge values give 413, not 400).
    /// Checked arithmetic: the limit may be close to `Int.max`.
    private func parseLength(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int)
        -> Int?
    {
        guard start < end else { return nil }
        let ceiling = maxBodyBytes == .max ? maxBodyBytes : maxBodyBytes + 1
        var value = 0
        for index in start..<end {
            let digit = bytes[index] &- 0x30
            guard digit <= 9 else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(digit))
            value = overflow1 || overflow2 ? ceiling : min(sum, ceiling)
        }
        return value
    }

    /// Whether `bytes[start..<end]`, a request line without its end yet, could still become a
    /// valid one: a token, SP, visible ASCII, SP, a prefix of `HTTP/d.d`, then only CR.
    static func couldStartRequestLine(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int
    ) -> Bool {
        if end - start == 1 && bytes[start] == 0x0D { return true }  // maybe an empty line
        var cursor = start
        while cursor < end && isToken(bytes[cursor]) { cursor += 1 }
        if cursor == end { return true }
        guard cursor > start, bytes[cursor] == 0x20 else { return false }
        cursor += 1
        let targetStart = cursor
        while cursor < end && bytes[cursor] > 0x20 && bytes[cursor] < 0x7F { cursor += 1 }
        if cursor == end { return true }
        guard cursor > targetStart, bytes[cursor] == 0x20 else { return false }
        cursor += 1
        let version: StaticString = "HTTP/1.0"
        var position = 0
        while cursor < end && position < 8 {
            let byte = bytes[cursor]
            let fits =
                position == 7
                ? byte >= 0x30 && byte <= 0x39 : byte == version.utf8Start[position]
            guard fits else { return false }
            cursor += 1
            position += 1
        }
        if cursor == end { return true }
        return bytes[cursor] == 0x0D && cursor + 1 == end
    }

    /// Looks for the `close` and `keep-alive` options in a Connection value.
    private static func scanConnection(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int,
        close: inout Bool, keepAlive: inout Bool
    ) {
        var cursor = start
        while cursor < end {
            while cursor < end && (bytes[cursor] == 0x2C || isSpace(bytes[cursor])) {
                cursor += 1
            }
            let optionStart = cursor
            while cursor < end && bytes[cursor] != 0x2C && !isSpace(bytes[cursor]) {
                cursor += 1
            }
            switch cursor - optionStart {
            case 5 where matches(bytes, optionStart, "close"): close = true
            case 10 where matches(bytes, optionStart, "keep-alive"): keepAlive = true
            default: break
            }
        }
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// Case-insensitive match of `bytes[start...]` against a lowercase letters-and-dashes
    /// literal of the caller-checked length.
    @inline(__always)
    private static func matches(
        _ bytes: UnsafeRawBufferPointer, _ start: Int, _ literal: StaticString
    ) -> Bool {
        let text = literal.utf8Start
        for index in 0..<literal.utf8CodeUnitCount where bytes[start + index] | 0x20 != text[index]
        {
            return false
        }
        return true
    }
}
