// Fuzzes the Reactor's framers (Sources/Reactor/Framing.swift).
//
// LineFramer property: the frames match a byte-at-a-time model of the format (a line ends at
// "\n", one "\r" before it is dropped, a payload over the limit is refused, a tail with no
// "\n" needs more until it is too long to become a line); payloads written back with "\r\n"
// frame to the same payloads. LengthPrefixFramer property: frames match the header's length,
// within the limit, and `encodeHeader` plus the payload frames back to the same payload.
// Refusals are values (`.tooLong`, `.needMore`), never traps, for every limit up to Int.max.
//
// Input: byte 0 picks the framer's limit, byte 1 the length header's size; the rest is the
// stream.

/// Limits to try: small ones the input reaches, the defaults, and the largest possible.
func maxLength(_ selector: UInt8, default standard: Int) -> Int {
    switch selector {
    case 0..<200: Int(selector % 40)
    case 200..<230: standard
    default: .max
    }
}

func frames(_ framer: (UnsafeRawBufferPointer, Int) -> FrameResult, _ bytes: UnsafeRawBufferPointer)
    -> (payloads: [[UInt8]], end: FrameResult)
{
    var payloads: [[UInt8]] = []
    var offset = 0
    while true {
        let result = framer(bytes, offset)
        guard case .frame(let payload, let consumed) = result else { return (payloads, result) }
        expect(consumed > 0 && consumed <= bytes.count - offset, "consumed within the input")
        expect(
            payload.lowerBound >= offset && payload.upperBound <= offset + consumed,
            "payload within the frame")
        payloads.append(Array(bytes[payload]))
        offset += consumed
    }
}

/// LineFramer's format, one byte at a time.
func lineModel(_ stream: ArraySlice<UInt8>, maxLength: Int) -> (
    payloads: [[UInt8]], end: FrameResult
) {
    var payloads: [[UInt8]] = []
    var line: [UInt8] = []
    for byte in stream {
        if byte == 0x0A {
            if line.last == 0x0D { line.removeLast() }
            if line.count > maxLength { return (payloads, .tooLong) }
            payloads.append(line)
            line = []
        } else {
            line.append(byte)
        }
    }
    // Unfinished: `maxLength` payload bytes and a "\r" may still end with "\n".
    return (payloads, line.count > maxLength &+ 1 && maxLength < .max ? .tooLong : .needMore)
}

func checkLines(_ stream: ArraySlice<UInt8>, maxLength: Int) {
    // A size the framer refuses (`ArgumentError`) is a clean rejection: nothing to frame.
    guard let framer = try? LineFramer(maxLength: maxLength) else { return }
    let found = withExactCopy(of: stream) { frames({ framer.next(in: $0, from: $1) }, $0) }
    let model = lineModel(stream, maxLength: maxLength)
    expect(found.payloads == model.payloads, "line payloads match the model")
    expect(found.end == model.end, "line framing ends as the model does: \(found.end)")
    let encoded: [UInt8] = found.payloads.flatMap { $0 + [0x0D, 0x0A] }
    let again = withExactCopy(of: encoded) { frames({ framer.next(in: $0, from: $1) }, $0) }
    expect(again.payloads == found.payloads && again.end == .needMore, "lines round-trip")
}

func checkLengthPrefix(_ stream: ArraySlice<UInt8>, headerSize: Int, maxLength: Int) {
    guard let framer = try? LengthPrefixFramer(headerSize: headerSize, maxLength: maxLength)
    else { return }
    let found = withExactCopy(of: stream) { frames({ framer.next(in: $0, from: $1) }, $0) }
    // The model: read the header, then the payload.
    var offset = stream.startIndex
    for payload in found.payloads {
        let length = stream[offset..<(offset + headerSize)].reduce(UInt64(0)) {
            $0 << 8 | UInt64($1)
        }
        expect(
            length == UInt64(payload.count) && payload.count <= maxLength, "header gives the length"
        )
        offset += headerSize + payload.count
    }
    let left = stream.endIndex - offset
    if left < headerSize {
        expect(found.end == .needMore, "a partial header needs more")
    } else {
        let length = stream[offset..<(offset + headerSize)].reduce(UInt64(0)) {
            $0 << 8 | UInt64($1)
        }
        let expected: FrameResult = length > UInt64(maxLength) ? .tooLong : .needMore
        expect(found.end == expected, "length-prefix framing ends as the header says: \(found.end)")
    }
    var encoded: [UInt8] = []
    for payload in found.payloads {
        var header = [UInt8](repeating: 0, count: headerSize)
        do {
            try header.withUnsafeMutableBytes {
                try framer.encodeHeader(length: payload.count, into: $0)
            }
        } catch {
            expect(false, "encodeHeader refuses a frame the framer found: \(error)")
        }
        encoded += header + payload
    }
    let again = withExactCopy(of: encoded) { frames({ framer.next(in: $0, from: $1) }, $0) }
    expect(again.payloads == found.payloads && again.end == .needMore, "frames round-trip")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    guard all.count >= 2 else { return 0 }
    let stream = all[2...]
    checkLines(stream, maxLength: maxLength(all[0], default: 64 << 10))
    let headerSize = [1, 2, 4, 8][Int(all[1] & 3)]
    checkLengthPrefix(
        stream, headerSize: headerSize, maxLength: maxLength(all[0], default: 1 << 20))
    return 0
}
