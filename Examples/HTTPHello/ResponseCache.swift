/// The statuses http-hello answers with.
enum Status: Int, CaseIterable {
    /// 200, for GET or HEAD on `/`.
    case ok
    /// 404, for any other path.
    case notFound
    /// 405, for other methods on `/`.
    case methodNotAllowed
    /// 400, for malformed requests.
    case badRequest
    /// 413, for bodies over the limit.
    case payloadTooLarge
    /// 431, for heads over the limit.
    case headersTooLarge
    /// 501, for Transfer-Encoding.
    case notImplemented
    /// 408, for a head not complete within the header timeout.
    case requestTimeout

    var line: String {
        switch self {
        case .ok: "200 OK"
        case .notFound: "404 Not Found"
        case .methodNotAllowed: "405 Method Not Allowed"
        case .badRequest: "400 Bad Request"
        case .payloadTooLarge: "413 Content Too Large"
        case .headersTooLarge: "431 Request Header Fields Too Large"
        case .notImplemented: "501 Not Implemented"
        case .requestTimeout: "408 Request Timeout"
        }
    }

    var body: String {
        switch self {
        case .ok: "Hello, World!"
        case .notFound: "Not Found\n"
        case .methodNotAllowed: "Method Not Allowed\n"
        case .badRequest: "Bad Request\n"
        case .payloadTooLarge: "Content Too Large\n"
        case .headersTooLarge: "Request Header Fields Too Large\n"
        case .notImplemented: "Transfer-Encoding is not supported\n"
        case .requestTimeout: "Request Timeout\n"
        }
    }
}

/// Every response http-hello can send, preformatted once into one buffer; only the Date
/// field changes, rewritten in place by `refresh(now:)` at most once per wall-clock second.
///
/// A response is looked up by status, connection mode and HEAD-ness and handed out as a
/// pointer into the buffer: answering a request formats and allocates nothing. One cache
/// per reactor thread (it is not shared).
final class ResponseCache {
    private struct Span {
        var offset: Int
        var count: Int
    }

    private static var dateLength: Int { 29 }  // "Sun, 06 Nov 1994 08:49:37 GMT"
    private static let modes: [ConnectionMode] = [.persistent, .close, .keepAlive]

    private let storage: UnsafeMutableRawBufferPointer
    private let spans: UnsafeMutableBufferPointer<Span>
    private let dateOffsets: UnsafeMutableBufferPointer<Int>
    /// The wall-clock second the Date fields show.
    private(set) var second: Int64 = .min
    /// The longest response, for callers batching several into one buffer.
    let maxResponseLength: Int

    /// Formats every response, dated `seconds` (Unix time).
    init(now seconds: Int64) {
        var text: [UInt8] = []
        var spanList: [Span] = []
        var dates: [Int] = []
        for status in Status.allCases {
            for mode in Self.modes {
                for isHead in [false, true] {
                    let start = text.count
                    var head = "HTTP/1.1 \(status.line)\r\nServer: swift-reactor\r\nDate: "
                    text.append(contentsOf: head.utf8)
                    dates.append(text.count)
                    text.append(contentsOf: repeatElement(0x20, count: Self.dateLength))
                    head = "\r\nContent-Type: text/plain\r\n"
                    head += "Content-Length: \(status.body.utf8.count)\r\n"
                    if status == .methodNotAllowed { head += "Allow: GET, HEAD\r\n" }
                    switch mode {
                    case .persistent: break
                    case .close: head += "Connection: close\r\n"
                    case .keepAlive: head += "Connection: keep-alive\r\n"
                    }
                    head += "\r\n"
                    text.append(contentsOf: head.utf8)
                    if !isHead { text.append(contentsOf: status.body.utf8) }
                    spanList.append(Span(offset: start, count: text.count - start))
                }
            }
        }
        storage = .allocate(byteCount: text.count, alignment: 16)
        storage.copyBytes(from: text)
        spans = .allocate(capacity: spanList.count)
        _ = spans.initialize(from: spanList)
        dateOffsets = .allocate(capacity: dates.count)
        _ = dateOffsets.initialize(from: dates)
        maxResponseLength = spanList.map(\.count).max() ?? 0
        refresh(now: seconds)
    }

    deinit {
        storage.deallocate()
        spans.deallocate()
        dateOffsets.deallocate()
    }

    /// The bytes of one response; valid until the cache is released.
    @inline(__always)
    func response(_ status: Status, _ mode: ConnectionMode, head: Bool) -> UnsafeRawBufferPointer {
        let span = spans[(status.rawValue * 3 + mode.rawValue) * 2 + (head ? 1 : 0)]
        return UnsafeRawBufferPointer(rebasing: storage[span.offset..<span.offset + span.count])
    }

    /// Rewrites every Date field if the second changed; returns whether it did.
    @discardableResult
    func refresh(now seconds: Int64) -> Bool {
        guard seconds != second else { return false }
        second = seconds
        let first = storage.baseAddress! + dateOffsets[0]
        IMFDate.write(seconds, into: first)
        for offset in dateOffsets.dropFirst() {
            (storage.baseAddress! + offset).copyMemory(from: first, byteCount: Self.dateLength)
        }
        return true
    }
}

/// RFC 9110 §5.6.7 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), always 29 bytes.
enum IMFDate {
    /// Writes the date of Unix time `seconds` (years 0...9999) as 29 ASCII bytes at `target`.
    static func write(_ seconds: Int64, into target: UnsafeMutableRawPointer) {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        let weekday = Int(((days + 4) % 7 + 7) % 7)  // 1970-01-01 was a Thursday

        let out = target.assumingMemoryBound(to: UInt8.self)
        let weekdays: StaticString = "SunMonTueWedThuFriSat"
        let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        func copy3(_ names: StaticString, _ index: Int, at position: Int) {
            for k in 0..<3 { out[position + k] = names.utf8Start[index * 3 + k] }
        }
        func digits(_ value: Int, _ count: Int, at position: Int) {
            var value = value
            for k in stride(from: count - 1, through: 0, by: -1) {
                out[position + k] = UInt8(0x30 + value % 10)
                value /= 10
            }
        }
        copy3(weekdays, weekday, at: 0)
        out[3] = 0x2C  // ','
        out[4] = 0x20
        digits(day, 2, at: 5)
        out[7] = 0x20
        copy3(months, month - 1, at: 8)
        out[11] = 0x20
        digits(min(max(year, 0), 9999), 4, at: 12)
        out[16] = 0x20
        digits(secondOfDay / 3600, 2, at: 17)
        out[19] = 0x3A
        digits(secondOfDay / 60 % 60, 2, at: 20)
        out[22] = 0x3A
        digits(secondOfDay % 60, 2, at: 23)
        let zone: StaticString = " GMT"
        for k in 0..<4 { out[25 + k] = zone.utf8Start[k] }
    }
}
