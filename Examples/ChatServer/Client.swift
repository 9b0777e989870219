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

    // Messages waiting, oldest first from `head`; sent ones are set to nil at once so their
    // memory goes back even before the array is compacted.
    private var backlog: [Message?] = []
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

    /// Queues `message` behind what is already waiting.
    func enqueue(_ message: Message) {
        guard message.bytes.count > 0 else { return }
        backlog.append(message)
        backlogBytes += message.bytes.count
    }

    /// Writes queued messages until the backlog is empty or the kernel would block; returns
    /// true when it is empty. Throws the write's error (EPIPE, ECONNRESET, …).
    func flush() throws(Errno) -> Bool {
        while backlogBytes > 0 {
            let result = try withUnsafeTemporaryAllocation(of: IOVector.self, capacity: 64) {
                (vectors) throws(Errno) -> IOResult<Int> in
                var count = 0
                var index = head
                var skip = headSent
                while index < backlog.count && count < vectors.count, let message = backlog[index] {
                    vectors[count] = IOVector(
                        UnsafeRawBufferPointer(rebasing: message.bytes[skip...]))
                    skip = 0
                    count += 1
                    index += 1
                }
                return try stream.writev(UnsafeBufferPointer(rebasing: vectors[..<count]))
            }
            guard case .processed(let written) = result else { return false }
            consume(written)
        }
        return true
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
        while left > 0, let message = backlog[head] {
            let remaining = message.bytes.count - headSent
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
