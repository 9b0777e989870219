import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// Runs `body` with the bytes of `text`.
private func withBytes<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    Array(text.utf8).withUnsafeBytes(body)
}

@Suite("Framing helpers", .opensDescriptors)
struct FramingTests {
    @Test("LineFramer finds lines, strips CRLF, waits for more, and refuses overlong lines")
    func lineFramer() throws {
        let framer = try LineFramer(maxLength: 8)
        withBytes("hello\r\nworld\npart") { bytes in
            guard case .frame(let first, let used) = framer.next(in: bytes) else {
                Issue.record("no first frame")
                return
            }
            #expect(Array(bytes[first]) == Array("hello".utf8))
            #expect(used == 7)
            guard case .frame(let second, let used2) = framer.next(in: bytes, from: used) else {
                Issue.record("no second frame")
                return
            }
            #expect(Array(bytes[second]) == Array("world".utf8))
            #expect(framer.next(in: bytes, from: used + used2) == .needMore)
        }
        withBytes("12345678\n") {
            #expect(framer.next(in: $0) == .frame(payload: 0..<8, consumed: 9))
        }
        withBytes("123456789\n") { #expect(framer.next(in: $0) == .tooLong) }
        // No newline yet, but already longer than any acceptable line: refuse without waiting.
        withBytes("1234567890") { #expect(framer.next(in: $0) == .tooLong) }
        withBytes("12345678") { #expect(framer.next(in: $0) == .needMore) }
        withBytes("\n") { #expect(framer.next(in: $0) == .frame(payload: 0..<0, consumed: 1)) }
    }

    @Test("LengthPrefixFramer round-trips headers of every width and refuses oversize lengths")
    func lengthPrefixFramer() throws {
        for width in [1, 2, 4, 8] {
            let framer = try LengthPrefixFramer(headerSize: width, maxLength: 200)
            var frame = [UInt8](repeating: 0, count: width)
            try frame.withUnsafeMutableBytes { try framer.encodeHeader(length: 5, into: $0) }
            frame += Array("abcde".utf8)
            frame.withUnsafeBytes { bytes in
                #expect(
                    framer.next(in: bytes)
                        == .frame(payload: width..<(width + 5), consumed: width + 5))
                let partial = UnsafeRawBufferPointer(rebasing: bytes[..<(width + 4)])
                #expect(framer.next(in: partial) == .needMore)
                let headerOnly = UnsafeRawBufferPointer(rebasing: bytes[..<(width - 1)])
                #expect(framer.next(in: headerOnly) == .needMore)
            }
        }
        let framer = try LengthPrefixFramer(headerSize: 2, maxLength: 100)
        [UInt8(0x01), 0x00].withUnsafeBytes { #expect(framer.next(in: $0) == .tooLong) }
    }

    @Test("Framers with a limit of Int.max refuse nothing and never overflow (found by fuzzing)")
    func unlimitedFramers() throws {
        let lines = try LineFramer(maxLength: .max)
        withBytes("ab\r\ncd") { bytes in
            #expect(lines.next(in: bytes) == .frame(payload: 0..<2, consumed: 4))
            #expect(lines.next(in: bytes, from: 4) == .needMore)
        }
        let lengths = try LengthPrefixFramer(headerSize: 8, maxLength: .max)
        // A header announcing Int.max bytes: more are needed, however many that is.
        [UInt8(0x7F), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00].withUnsafeBytes {
            #expect(lengths.next(in: $0) == .needMore)
        }
        [UInt8(0x80), 0, 0, 0, 0, 0, 0, 0].withUnsafeBytes {
            #expect(lengths.next(in: $0) == .tooLong)
        }
    }

    @Test(
        "a line protocol over a Connection reassembles lines split across reads",
        arguments: Backend.all)
    func linesOverConnection(_ backend: Backend) throws {
        try backend.run { try runLines($0) }
    }

    @Test(
        "input a delegate declined is offered again by redeliverBufferedInput, with no new bytes",
        arguments: Backend.all)
    func redeliverDeclinedInput(_ backend: Backend) throws {
        try backend.run { try runRedeliver($0) }
    }

    private func runRedeliver<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let delegate = DeferringDelegate<S>()
        let connection = Connection(socket: serverEnd, reactor: reactor, delegate: delegate)
        try connection.start()
        _ = try clientEnd.write(Array("abc".utf8))
        for _ in 0..<5 where delegate.offers.isEmpty {
            try reactor.runOnce(timeout: .milliseconds(50))
        }
        #expect(delegate.offers == [Array("abc".utf8)])
        #expect(connection.bufferedInputBytes == 3)
        // Nothing new arrives: the loop alone never offers the bytes again.
        try reactor.runOnce(timeout: .milliseconds(20))
        #expect(delegate.offers.count == 1)
        delegate.busy = false
        connection.redeliverBufferedInput()
        #expect(delegate.offers == [Array("abc".utf8), Array("abc".utf8)])
        #expect(delegate.taken == Array("abc".utf8))
        #expect(connection.bufferedInputBytes == 0)
        connection.redeliverBufferedInput()  // nothing buffered: no call
        #expect(delegate.offers.count == 2)
        try clientEnd.close()
        reactor.shutdown()
    }

    private func runLines<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let collector = LineCollector<S>()
        try Connection(socket: serverEnd, reactor: reactor, delegate: collector).start()
        for piece in ["hel", "lo\nwor", "ld\r\n", "x\n"] {
            _ = try clientEnd.write(Array(piece.utf8))
            try reactor.runOnce(timeout: .milliseconds(50))
        }
        #expect(collector.lines == ["hello", "world", "x"])
        // A line over the limit closes the connection instead of buffering without bound.
        _ = try clientEnd.write([UInt8](repeating: UInt8(ascii: "a"), count: 200))
        for _ in 0..<5 where collector.closed == nil {
            try reactor.runOnce(timeout: .milliseconds(50))
        }
        #expect(collector.closed == .closed)
        #expect(collector.lines.count == 3)
        try clientEnd.close()
        reactor.shutdown()
    }
}

/// Declines input while `busy`; takes it all otherwise.
final class DeferringDelegate<Backend: EventSelector>: ConnectionDelegate {
    var busy = true
    var offers: [[UInt8]] = []
    var taken: [UInt8] = []

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        offers.append(Array(bytes))
        if busy { return 0 }
        taken += bytes
        // Re-entrant call during a delivery: must be a no-op.
        connection.redeliverBufferedInput()
        return bytes.count
    }
}

/// Collects newline-delimited lines; closes the connection on an overlong one.
final class LineCollector<Backend: EventSelector>: ConnectionDelegate {
    let framer = try! LineFramer(maxLength: 64)  // a valid size: cannot throw
    var lines: [String] = []
    var closed: CloseReason?

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        var offset = 0
        while true {
            switch framer.next(in: bytes, from: offset) {
            case .frame(let payload, let used):
                lines.append(String(decoding: bytes[payload], as: UTF8.self))
                offset += used
            case .needMore:
                return offset
            case .tooLong:
                connection.close()
                return bytes.count
            }
        }
    }

    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
        closed = reason
    }
}
