import Net
import Selector
import SysCalls

/// One line as it goes out: allocated once and shared by every recipient's backlog, at an
/// address that stays put while a gathered write points at it.
final class Message {
    /// The bytes to send.
    let bytes: UnsafeMutableRawBufferPointer

    /// Concatenates `pieces` into one new message.
    init(_ pieces: UnsafeRawBufferPointer...) {
        bytes = .allocate(byteCount: pieces.reduce(0) { $0 + $1.count }, alignment: 1)
        var offset = 0
        for piece in pieces where !piece.isEmpty {
            UnsafeMutableRawBufferPointer(rebasing: bytes[offset...]).copyMemory(from: piece)
            offset += piece.count
        }
    }

    /// A message of `count` bytes written by `fill`.
    init(count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        bytes = .allocate(byteCount: count, alignment: 1)
        fill(bytes)
    }

    /// A message holding `text`'s UTF-8 bytes.
    init(_ text: String) {
        var text = text
        let storage = UnsafeMutableRawBufferPointer.allocate(
            byteCount: text.utf8.count, alignment: 1)
        text.withUTF8 { storage.copyMemory(from: UnsafeRawBufferPointer($0)) }
        bytes = storage
    }

    deinit { bytes.deallocate() }
}

/// One connected chat user: its socket, the unfinished line it is typing, and the messages
/// the kernel has not yet taken.
final class Client {
    /// Where the client is in its life.
    enum State {
        /// Chatting: its lines are broadcast and it receives everyone's.
        case member
        /// Said goodbye (e.g. its line was too long): flushing what is queued, then closing.
        /// Input is read and thrown away until then.
        case leaving
    }

    /// The number other users see in front of its lines.
    let id: Int
    /// The connection.
    let stream: TCPStream
    /// Its registration token (slot and generation).
    let token: Token
    /// `"<id>: "`, put in front of each of its lines.
    let prefix: [UInt8]
    /// What the selector is watching for.
    var interest: Interest = .readable
    /// Member or leaving.
    var state = State.member
    /// Its read budget ran out before would-block: it is on the server's resume list.
    var readUnfinished = false
    /// The peer has sent end of file.
    var peerClosed = false
    /// When a leaving client is closed even if its output is not flushed.
    var deadline: ContinuousClock.Instant?
    /// The line received so far, without its newline.
    var partialLine: [UInt8] = []
    /// It is on the server's list of clients to write to at the end of the turn.
    var wantsFlush = false
    /// Where, in this turn's notices, the ones it should hear begin (past its own arrival).
    var noticesFrom = 0

    /// What one `flush()` achieved.
    enum FlushOutcome {
        /// Everything queued was written.
        case drained
        /// The kernel would take no more: wait for writability.
        case blocked
        /// The kernel took all it was offered, but more is queued: go on next turn.
        case more
    }

    // Messages waiting (with the offset each starts at: a member may get only the end of a
    // shared message), oldest first from `head`; sent ones are set to nil at once so their
    // memory goes back even before the array is compacted.
    private var backlog: [(message: Message, start: Int)?] = []
    private var head = 0
    // Bytes of `backlog[head]` already sent.
    private var headSent = 0
    /// Bytes queued and not yet taken by the kernel.
    private(set) var backlogBytes = 0

    /// Wraps an accepted connection.
    init(id: Int, stream: TCPStream, token: Token) {
        self.id = id
        self.stream = stream
        self.token = token
        self.prefix = Array("\(id): ".utf8)
    }

    /// True when nothing waits to be written.
    var isDrained: Bool { backlogBytes == 0 }

    /// Queues `message`, from byte `offset` on, behind what is already waiting.
    func enqueue(_ message: Message, from offset: Int = 0) {
        guard message.bytes.count > offset else { return }
        backlog.append((message, offset))
        backlogBytes += message.bytes.count - offset
    }

    /// One gathered write of the queued messages; when the kernel takes only part of it, more
    /// writes until it would block (readiness is edge-triggered, and the poll backend learns
    /// of the full buffer from that would-block). Throws the write's error (EPIPE, …).
    func flush() throws(Errno) -> FlushOutcome {
        while backlogBytes > 0 {
            let (result, offered) = try withUnsafeTemporaryAllocation(
                of: IOVector.self, capacity: 64
            ) { (vectors) throws(Errno) -> (IOResult<Int>, Int) in
                var count = 0
                var offered = 0
                var index = head
                var skip = headSent
                while index < backlog.count && count < vectors.count, let entry = backlog[index] {
                    let piece = UnsafeRawBufferPointer(
                        rebasing: entry.message.bytes[(entry.start + skip)...])
                    vectors[count] = IOVector(piece)
                    offered += piece.count
                    skip = 0
                    count += 1
                    index += 1
                }
                let result = try stream.writev(UnsafeBufferPointer(rebasing: vectors[..<count]))
                return (result, offered)
            }
            guard case .processed(let written) = result else { return .blocked }
            consume(written)
            // All it was offered went: the buffer has room, so stop for this turn.
            if written == offered { return backlogBytes == 0 ? .drained : .more }
        }
        return .drained
    }

    /// Drops everything queued (the client is going away).
    func discardBacklog() {
        backlog = []
        head = 0
        headSent = 0
        backlogBytes = 0
    }

    private func consume(_ count: Int) {
        backlogBytes -= count
        var left = count
        while left > 0, let entry = backlog[head] {
            let remaining = entry.message.bytes.count - entry.start - headSent
            if left < remaining {
                headSent += left
                return
            }
            left -= remaining
            backlog[head] = nil
            head += 1
            headSent = 0
        }
        if head == backlog.count {
            backlog.removeAll(keepingCapacity: backlog.capacity <= 64)
            head = 0
        } else if head > 32 && head * 2 > backlog.count {
            backlog.removeFirst(head)
            head = 0
        }
    }
}
