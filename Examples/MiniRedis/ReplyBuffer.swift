/// RESP2 replies gathered for one batch of commands, sent with one write.
///
/// One instance serves every connection of a reactor: the server fills it while it runs the
/// commands that arrived in one read, then hands it to `Connection.write` and empties it.
/// The storage is allocated once and grows only for a reply bigger than it (then shrinks back
/// once sent), so steady-state replies cost no allocation.
final class ReplyBuffer {
    private static var initialCapacity: Int { 64 << 10 }

    // Unchecked exclusivity: one thread, and no method re-enters another while it writes
    // these; dynamic checks on every append cost more than the append.
    @exclusivity(unchecked) private var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    /// Bytes written and not yet sent.
    @exclusivity(unchecked) private(set) var count = 0

    /// An empty buffer.
    init() {
        capacity = Self.initialCapacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// The bytes written so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets what was written (after it was sent); gives back memory a huge reply took.
    func reset() {
        count = 0
        if capacity > Self.initialCapacity * 4 {
            base.deallocate()
            capacity = Self.initialCapacity
            base = .allocate(byteCount: capacity, alignment: 16)
        }
    }

    @inline(__always)
    private func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Appends raw bytes.
    @inline(__always)
    func append(_ data: UnsafeRawBufferPointer) {
        guard let source = data.baseAddress, !data.isEmpty else { return }
        reserve(data.count)
        (base + count).copyMemory(from: source, byteCount: data.count)
        count += data.count
    }

    /// Appends the bytes of a literal.
    @inline(__always)
    func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends one byte.
    @inline(__always)
    func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends the decimal digits of `value`.
    func appendDecimal(_ value: Int64) {
        reserve(20)
        count += Decimal.format(value, into: base + count)
    }

    /// `prefix`, the decimal `value`, CRLF: integers (`:`), array (`*`) and bulk (`$`) headers.
    @inline(__always)
    func appendHeader(_ prefix: UInt8, _ value: Int64) {
        reserve(23)
        base.storeBytes(of: prefix, toByteOffset: count, as: UInt8.self)
        count += 1
        count += Decimal.format(value, into: base + count)
        base.storeBytes(of: 0x0A0D, toByteOffset: count, as: UInt16.self)  // "\r\n"
        count += 2
    }

    /// `:value\r\n`.
    func integer(_ value: Int64) { appendHeader(UInt8(ascii: ":"), value) }

    /// `*count\r\n`.
    func arrayHeader(_ elements: Int) { appendHeader(UInt8(ascii: "*"), Int64(elements)) }

    /// `$len\r\n<bytes>\r\n`.
    func bulk(_ data: UnsafeRawBufferPointer) {
        reserve(data.count + 25)
        appendHeader(UInt8(ascii: "$"), Int64(data.count))
        append(data)
        append("\r\n")
    }

    /// The null bulk string, `$-1\r\n`.
    func null() { append("$-1\r\n") }

    /// `+OK\r\n`.
    func ok() { append("+OK\r\n") }

    /// `-ERR <message>\r\n`; `message` must not contain CR or LF.
    func error(_ message: StaticString) {
        append("-ERR ")
        append(message)
        append("\r\n")
    }

    /// An error built at run time (rare paths: unknown commands, protocol errors); CR and LF
    /// in it become spaces, as Redis does, so the reply stays one line.
    func error(text: String) {
        var line = Array(text.utf8)
        for index in line.indices where line[index] == 0x0D || line[index] == 0x0A {
            line[index] = 0x20
        }
        append("-")
        line.withUnsafeBytes { append($0) }
        append("\r\n")
    }
}

/// Decimal conversions without allocation.
enum Decimal {
    /// Writes the digits of `value` at `destination` (at most 20 bytes); returns how many.
    static func format(_ value: Int64, into destination: UnsafeMutableRawPointer) -> Int {
        var magnitude = value.magnitude
        var length = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            length += 1
        }
        var offset = 0
        if value < 0 {
            destination.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            offset = 1
        }
        var index = offset + length - 1
        repeat {
            let digit = UInt8(truncatingIfNeeded: magnitude % 10)
            destination.storeBytes(of: 0x30 + digit, toByteOffset: index, as: UInt8.self)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
        return offset + length
    }

    /// Parses a strict decimal integer the way Redis's `string2ll` does: optional '-', no
    /// '+', no leading zeros or spaces, within Int64. Nil otherwise.
    static func parse(_ text: UnsafeRawBufferPointer) -> Int64? {
        let count = text.count
        guard count > 0, count <= 20 else { return nil }
        if count == 1 && text[0] == UInt8(ascii: "0") { return 0 }
        var index = 0
        let negative = text[0] == UInt8(ascii: "-")
        if negative {
            index = 1
            guard count > 1 else { return nil }
        }
        guard text[index] >= UInt8(ascii: "1"), text[index] <= UInt8(ascii: "9") else {
            return nil
        }
        var magnitude: UInt64 = 0
        while index < count {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2 else { return nil }
            magnitude = sum
            index += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}
