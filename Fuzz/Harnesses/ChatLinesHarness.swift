// Fuzzes chat-server's line splitting (Examples/ChatServer/LineSplitter.swift) as the server
// uses it: the input arrives in reads of varying sizes, each scanned with the unfinished line
// carried over, and each read's complete lines composed into one relayed message.
//
// Property: however the bytes are cut into reads, the lines relayed (taken back out of the
// composed messages, behind their prefix) are exactly the input's newline-terminated lines up
// to the first one longer than the limit, the connection is refused at that line and not
// before, and what is left unfinished is the input's tail; so lines, newlines and tail
// rebuild the input. The composed message is exactly `messageSize` bytes (ASan checks that
// nothing is written past it).
//
// Input: byte 0 picks the line limit, byte 1 the read sizes; the rest is what a client sends.

let prefix = Array("42: ".utf8)

struct Outcome: Equatable {
    var lines: [[UInt8]] = []
    var overlong = false
    var unfinished: [UInt8] = []
}

/// The lines as the whole input defines them, one byte at a time.
func reference(_ input: ArraySlice<UInt8>, maxLine: Int) -> Outcome {
    var outcome = Outcome()
    for byte in input {
        if byte == 0x0A {
            outcome.lines.append(outcome.unfinished)
            outcome.unfinished = []
        } else {
            outcome.unfinished.append(byte)
            if outcome.unfinished.count > maxLine {
                outcome.overlong = true
                outcome.unfinished = []
                break
            }
        }
    }
    return outcome
}

/// The lines as chat-server finds them in reads of the sizes `seed` picks.
func split(_ input: ArraySlice<UInt8>, maxLine: Int, seed: UInt8) -> Outcome {
    var outcome = Outcome()
    var state = UInt32(seed) | 1
    var offset = input.startIndex
    while offset < input.endIndex {
        state = state &* 1_103_515_245 &+ 12345
        let size = min(Int(state >> 16) % 23, input.endIndex - offset)  // 0 is a short read too
        let read = input[offset..<(offset + size)]
        offset += size
        let scan = withExactCopy(of: read) {
            LineSplitter.scan($0, pending: outcome.unfinished.count, maxLine: maxLine)
        }
        expect(scan.end <= read.count, "end within the read")
        if scan.lines > 0 {
            let size = LineSplitter.messageSize(
                lines: scan.lines, prefix: prefix.count, pending: outcome.unfinished.count,
                end: scan.end)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
            defer { out.deallocate() }
            let written = prefix.withUnsafeBytes { prefix in
                outcome.unfinished.withUnsafeBytes { pending in
                    withExactCopy(of: read.prefix(scan.end)) { lines in
                        LineSplitter.compose(
                            into: out, prefix: prefix, pending: pending, lines: lines)
                    }
                }
            }
            expect(written == size, "the message is exactly messageSize bytes")
            let message = Array(out)
            expect(message.last == 0x0A, "a message ends with a newline")
            let relayed = message.dropLast().split(
                separator: 0x0A, omittingEmptySubsequences: false)
            expect(relayed.count == scan.lines, "one relayed line per line found")
            for line in relayed {
                expect(line.starts(with: prefix), "each relayed line has the prefix")
                outcome.lines.append(Array(line.dropFirst(prefix.count)))
            }
            outcome.unfinished = []
        } else {
            expect(scan.end == 0, "no lines, no end")
        }
        if scan.overlong {
            outcome.overlong = true
            outcome.unfinished = []
            return outcome
        }
        outcome.unfinished += read[(read.startIndex + scan.end)...]
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    guard all.count >= 2 else { return 0 }
    let maxLine = all[0] < 0xF0 ? Int(all[0] % 24) : 64 << 10
    let input = all[2...]
    let expected = reference(input, maxLine: maxLine)
    let found = split(input, maxLine: maxLine, seed: all[1])
    expect(found == expected, "split lines \(found) match the input's \(expected)")
    if !found.overlong {
        let rebuilt: [UInt8] = found.lines.flatMap { $0 + [0x0A] } + found.unfinished
        expect(rebuilt[...] == input, "lines, newlines and tail rebuild the input")
    }
    return 0
}
