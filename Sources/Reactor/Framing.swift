/// What a framer found at the front of a buffer.
public enum FrameResult: Equatable, Sendable {
    /// A frame: its payload's byte range, and how many bytes it used up (payload plus
    /// delimiter or header).
    case frame(payload: Range<Int>, consumed: Int)
    /// Not enough bytes yet.
    case needMore
    /// The frame would exceed the maximum length: the peer is misbehaving.
    case tooLong
}

/// Newline-delimited frames ("\n", with an optional "\r" before it stripped), at most
/// `maxLength` bytes of payload.
///
/// ```swift
/// var offset = 0
/// while case .frame(let line, let used) = framer.next(in: bytes, from: offset) {
///     handle(bytes[line]); offset += used
/// }
/// return offset   // from ConnectionDelegate.connection(_:didRead:)
/// ```
public struct LineFramer: Sendable {
    /// The longest payload accepted.
    public let maxLength: Int

    /// Frames lines of at most 64 KiB.
    public init() { maxLength = 64 << 10 }

    /// Frames lines of at most `maxLength` bytes (not counting the line ending); throws if
    /// `maxLength` is below 1.
    public init(maxLength: Int) throws(ArgumentError) {
        guard maxLength >= 1 else {
            throw ArgumentError(
                "LineFramer maxLength", maxLength, "a line must be allowed 1 byte or more")
        }
        self.maxLength = maxLength
    }

    /// The frame starting at `offset` in `bytes`; payload ranges are indices into `bytes`.
    public func next(in bytes: UnsafeRawBufferPointer, from offset: Int = 0) -> FrameResult {
        let left = bytes.count - offset
        // A line's end can be no further than the payload, a "\r" and the "\n". Compared
        // against what is left rather than added to the offset: the limit may be Int.max.
        let end = maxLength < left - 1 ? offset + maxLength + 2 : bytes.count
        var index = offset
        while index < end {
            if bytes[index] == UInt8(ascii: "\n") {
                var payloadEnd = index
                if payloadEnd > offset && bytes[payloadEnd - 1] == UInt8(ascii: "\r") {
                    payloadEnd -= 1
                }
                if payloadEnd - offset > maxLength { return .tooLong }
                return .frame(payload: offset..<payloadEnd, consumed: index + 1 - offset)
            }
            index += 1
        }
        return left - 1 > maxLength ? .tooLong : .needMore
    }
}

/// Frames with a big-endian unsigned length header of 1, 2, 4 or 8 bytes, at most
/// `maxLength` bytes of payload.
public struct LengthPrefixFramer: Sendable {
    /// Header width in bytes: 1, 2, 4 or 8.
    public let headerSize: Int
    /// The longest payload accepted.
    public let maxLength: Int

    /// Frames with a 4-byte length, payloads up to 1 MiB.
    public init() {
        headerSize = 4
        maxLength = 1 << 20
    }

    /// Frames with a `headerSize`-byte big-endian length, payloads up to `maxLength`. Throws
    /// for a width other than 1, 2, 4 or 8, a `maxLength` below 1, or one the header cannot
    /// express (above 255 for a 1-byte header, 65,535 for 2 bytes, 2^32 - 1 for 4).
    public init(headerSize: Int = 4, maxLength: Int = 1 << 20) throws(ArgumentError) {
        guard [1, 2, 4, 8].contains(headerSize) else {
            throw ArgumentError(
                "LengthPrefixFramer headerSize", headerSize, "a header is 1, 2, 4 or 8 bytes")
        }
        guard maxLength >= 1 else {
            throw ArgumentError(
                "LengthPrefixFramer maxLength", maxLength,
                "a payload must be allowed 1 byte or more")
        }
        let widest = headerSize == 8 ? Int.max : (1 << (8 * headerSize)) - 1
        guard maxLength <= widest else {
            throw ArgumentError(
                "LengthPrefixFramer maxLength", maxLength,
                "a \(headerSize)-byte header holds lengths up to \(widest)")
        }
        self.headerSize = headerSize
        self.maxLength = maxLength
    }

    /// The frame starting at `offset` in `bytes`.
    public func next(in bytes: UnsafeRawBufferPointer, from offset: Int = 0) -> FrameResult {
        guard bytes.count - offset >= headerSize else { return .needMore }
        var length: UInt64 = 0
        for index in offset..<(offset + headerSize) {
            length = length << 8 | UInt64(bytes[index])
        }
        guard length <= UInt64(maxLength) else { return .tooLong }
        let start = offset + headerSize
        // Compared with what is left, not added to `start`: the limit may be Int.max.
        guard Int(length) <= bytes.count - start else { return .needMore }
        let end = start + Int(length)
        return .frame(payload: start..<end, consumed: end - offset)
    }

    /// Writes a header for a `length`-byte payload into `header`. Throws if `length` is
    /// negative or above `maxLength`, or `header` is shorter than `headerSize`.
    public func encodeHeader(
        length: Int, into header: UnsafeMutableRawBufferPointer
    ) throws(ArgumentError) {
        guard length >= 0, length <= maxLength else {
            throw ArgumentError(
                "LengthPrefixFramer.encodeHeader length", length,
                "a payload is 0 to \(maxLength) bytes (maxLength)")
        }
        guard header.count >= headerSize else {
            throw ArgumentError(
                "LengthPrefixFramer.encodeHeader buffer size", header.count,
                "the header needs \(headerSize) bytes")
        }
        for index in 0..<headerSize {
            header[index] = UInt8(
                truncatingIfNeeded: UInt64(length) >> (8 * (headerSize - 1 - index)))
        }
    }
}
