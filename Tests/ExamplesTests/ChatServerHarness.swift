import Foundation
import Glibc
import Net
import Synchronization
import SysCalls
import TestSupport
import Testing

// Helpers for the chat-server tests: the server as a child process, TCP peers written in
// Swift, nc/socat peers as child processes, and a leak check for the descriptors a test
// opens. Names start with "Chat" because other examples' tests share this target.

/// What a peer's next read produced.
enum ChatIncoming: Equatable, CustomStringConvertible {
    /// One line, without its newline.
    case line([UInt8])
    /// End of file or a reset.
    case end
    /// Nothing arrived in time.
    case timeout

    /// The line as text (lossy), for messages.
    var text: String? {
        if case .line(let bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    var description: String {
        switch self {
        case .line: "line \(text!.debugDescription)"
        case .end: "end of stream"
        case .timeout: "timeout"
        }
    }
}

/// Splits what arrives on a descriptor (socket or pipe) into lines.
struct ChatLineReader {
    /// The descriptor read from (non-blocking).
    let fd: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0
    private var ended = false

    /// Reads from `fd`, which is switched to non-blocking mode.
    init(fd: Int32) {
        self.fd = fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// The next complete line, waiting at most `timeout` for it.
    mutating func next(timeout: Duration = .seconds(10)) -> ChatIncoming {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = takeLine() { return .line(line) }
            if ended { return .end }
            switch fill(until: deadline) {
            case .processed: continue
            case .wouldBlock: return .timeout
            }
        }
    }

    /// Reads whatever is available now without waiting; returns false at end of stream.
    @discardableResult
    mutating func drain() -> Bool {
        while !ended, case .processed = fill(until: .now) {}
        if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
        return !ended
    }

    /// Bytes received but not yet returned as lines.
    var pendingCount: Int { buffer.count - start }

    private mutating func takeLine() -> [UInt8]? {
        let count = buffer.count - start
        guard count > 0 else { return nil }
        let found = buffer.withUnsafeBytes { raw -> Int? in
            guard let hit = memchr(raw.baseAddress! + start, 10, count) else { return nil }
            return UnsafeRawPointer(hit) - raw.baseAddress!
        }
        guard let newline = found else { return nil }
        let line = Array(buffer[start..<newline])
        start = newline + 1
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return line
    }

    /// One read, after waiting for readability until `deadline`; `.wouldBlock` on timeout.
    private mutating func fill(until deadline: ContinuousClock.Instant) -> IOResult<Int> {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = max(.zero, deadline - .now)
        let milliseconds = Int32(
            left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
        if poll(&entry, 1, milliseconds) <= 0 { return .wouldBlock }
        let (count, code) = chunk.withUnsafeMutableBytes {
            let count = Glibc.read(fd, $0.baseAddress, $0.count)
            return (count, errno)  // read at once: later calls may change it
        }
        if count > 0 {
            buffer.append(contentsOf: chunk[..<count])
            return .processed(count)
        }
        if count < 0 && (code == EAGAIN || code == EINTR) { return .processed(0) }
        ended = true  // EOF, ECONNRESET, …
        return .processed(0)
    }
}

/// Waits until `fd` is writable (or has an error), at most until `deadline`.
func chatWaitWritable(_ fd: Int32, until deadline: ContinuousClock.Instant) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    let left = max(.zero, deadline - .now)
    return poll(&entry, 1, Int32(left.components.seconds * 1000) + 1) > 0
}

/// A chat client written against Net: connects, learns its id from the welcome line.
final class ChatTestPeer {
    /// The connection.
    let stream: TCPStream
    /// The id the server announced ("* you are <id>").
    private(set) var id = 0
    /// Incoming lines.
    var reader: ChatLineReader

    /// Connects to 127.0.0.1:`port` and reads the welcome line.
    init(port: UInt16, tracker: DescriptorTracker, receiveBuffer: Int? = nil) throws {
        stream = try TCPStream.connect(to: .v4(.loopback, port: port))
        tracker.note(stream.fileDescriptor.rawValue)
        if let receiveBuffer { try stream.setReceiveBufferSize(receiveBuffer) }
        reader = ChatLineReader(fd: stream.fileDescriptor.rawValue)
        guard chatWaitWritable(stream.fileDescriptor.rawValue, until: .now + .seconds(10)),
            try stream.takeError() == nil
        else { throw Errno.ECONNREFUSED }
    }

    /// Reads the "* you are <id>" welcome; false if it did not come.
    func readWelcome() -> Bool {
        guard let text = reader.next().text, text.hasPrefix("* you are "),
            let number = Int(text.dropFirst("* you are ".count))
        else { return false }
        id = number
        return true
    }

    /// Sends all of `bytes`, waiting for room as needed (at most 30 s in all).
    func send(_ bytes: [UInt8]) throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var sent = 0
        while sent < bytes.count {
            let result = try bytes[sent...].withUnsafeBytes { raw throws(Errno) in
                try stream.write(raw)
            }
            switch result {
            case .processed(let count): sent += count
            case .wouldBlock:
                guard chatWaitWritable(stream.fileDescriptor.rawValue, until: deadline) else {
                    throw Errno.ETIMEDOUT
                }
            }
        }
    }

    /// Sends `text`'s UTF-8 bytes.
    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// The next line, end or timeout.
    func next(timeout: Duration = .seconds(10)) -> ChatIncoming { reader.next(timeout: timeout) }

    /// Reads lines until one equals `text`; records an issue (and returns false) if the
    /// stream ends or times out first. Lines in between are skipped.
    @discardableResult
    func expect(
        _ text: String, timeout: Duration = .seconds(10),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool {
        chatExpect(text, timeout: timeout, sourceLocation: sourceLocation) {
            reader.next(timeout: $0)
        }
    }

    /// Closes the connection.
    func close() { try? stream.close() }
}

/// Reads lines from `next` until one equals `text`, or records an issue.
func chatExpect(
    _ text: String, timeout: Duration, sourceLocation: SourceLocation,
    next: (Duration) -> ChatIncoming
) -> Bool {
    let deadline = ContinuousClock.now + timeout
    var skipped: [String] = []
    while true {
        let incoming = next(max(.zero, deadline - .now))
        switch incoming {
        case .line:
            if incoming.text == text { return true }
            if skipped.count < 5 { skipped.append(incoming.text!) }
        case .end, .timeout:
            Issue.record(
                "expected \(text.debugDescription), got \(incoming) (skipped: \(skipped))",
                sourceLocation: sourceLocation)
            return false
        }
    }
}

/// A child process (the server, nc, socat) with piped stdin and stdout.
class ChatChildProcess {
    /// The process.
    let process = Process()
    /// Its standard output, as lines.
    var reader: ChatLineReader
    private let input = Pipe()
    private let output = Pipe()

    /// Starts `executable` with `arguments`; stderr is inherited.
    init(_ executable: String, _ arguments: [String], tracker: DescriptorTracker) throws {
        for fd in [
            input.fileHandleForReading, input.fileHandleForWriting,
            output.fileHandleForReading, output.fileHandleForWriting,
        ] {
            tracker.note(fd.fileDescriptor)
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        reader = ChatLineReader(fd: output.fileHandleForReading.fileDescriptor)
        try process.run()
        try? input.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
    }

    /// The process id.
    var pid: Int32 { process.processIdentifier }

    /// Writes `text` to the child's stdin.
    func send(_ text: String) { try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8)) }

    /// Closes the child's stdin.
    func closeInput() { try? input.fileHandleForWriting.close() }

    /// Reads lines until one equals `text`; records an issue if it does not come.
    @discardableResult
    func expect(
        _ text: String, timeout: Duration = .seconds(10),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool {
        chatExpect(text, timeout: timeout, sourceLocation: sourceLocation) {
            reader.next(timeout: $0)
        }
    }

    /// Sends `signal` (if still running) and waits for the exit (SIGKILL after 10 s);
    /// returns the exit status, or nil if it had to be killed or died of a signal.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32? {
        if process.isRunning { kill(pid, signal) }
        let exited = waitForExit(timeout: .seconds(10))
        if !exited {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        closeInput()
        reader.drain()  // keeps what the child printed last readable after the close
        try? output.fileHandleForReading.close()
        guard exited, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    /// Waits up to `timeout` for the process to exit.
    func waitForExit(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(10_000)
        }
        return true
    }
}

/// The chat-server binary, started on a kernel-chosen port.
final class ChatTestServer: ChatChildProcess {
    /// The port it listens on.
    private(set) var port: UInt16 = 0

    /// The built chat-server, next to the test bundle.
    static var executable: String { get throws { try siblingExecutable("chat-server") } }

    /// Starts the server with `arguments` (plus `--port 0`) and reads where it listens.
    init(_ arguments: [String] = [], tracker: DescriptorTracker) throws {
        try super.init(try Self.executable, ["--port", "0"] + arguments, tracker: tracker)
        let first = reader.next(timeout: .seconds(20)).text ?? ""
        // "chat-server listening on 127.0.0.1:PORT (epoll)"
        guard let port = listeningPort(in: first, name: "chat-server") else {
            stop(signal: SIGKILL)
            throw ChatTestError.badBanner(first)
        }
        self.port = port
    }

    /// The server's resident set size in KiB (VmRSS), or 0 if unreadable.
    var residentKiB: Int { TestSupport.residentKiB(pid: pid) ?? 0 }

    /// CPU time the server has used, in clock ticks (utime + stime from /proc/PID/stat).
    var cpuTicks: Int { (try? TestSupport.cpuTicks(pid: pid)) ?? 0 }

    /// Connects a Swift peer and reads its welcome.
    func connect(tracker: DescriptorTracker, receiveBuffer: Int? = nil) throws -> ChatTestPeer {
        let peer = try ChatTestPeer(port: port, tracker: tracker, receiveBuffer: receiveBuffer)
        guard peer.readWelcome() else {
            peer.close()
            throw ChatTestError.noWelcome
        }
        return peer
    }
}

/// Test set-up failures.
enum ChatTestError: Error {
    /// The server's first line was not the expected banner.
    case badBanner(String)
    /// A client got no "* you are <id>" line.
    case noWelcome
}

/// Reads a peer's lines on a thread of its own until a given line arrives, keeping the
/// notices ("* …" lines) it passes, so the peer keeps up with a flood the test thread sends.
final class ChatLineCollector: @unchecked Sendable {
    // Invariant: between init and `finish()` only the collecting thread touches `peer`,
    // `notices` and `sawTarget`; `finish()` joins that thread before reading them.
    private let peer: ChatTestPeer
    private var notices: [String] = []
    private var sawTarget = false
    private var thread: OSThread?
    /// Lines read so far (any thread may watch it).
    let received = Atomic<Int>(0)

    /// Starts reading `peer` until the line `target` (or end of stream, or `timeout` of quiet).
    init(peer: ChatTestPeer, until target: String, timeout: Duration = .seconds(60)) throws {
        self.peer = peer
        let wanted = Array(target.utf8)
        thread = try OSThread(name: "chat-collector") { [self] in
            while case .line(let bytes) = self.peer.next(timeout: timeout) {
                self.received.add(1, ordering: .releasing)
                if bytes == wanted {
                    self.sawTarget = true
                    return
                }
                if bytes.first == UInt8(ascii: "*") {
                    self.notices.append(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
    }

    /// Waits until at least `count` lines have been read, at most `timeout`.
    func waitUntilReceived(_ count: Int, timeout: Duration = .seconds(30)) {
        let deadline = ContinuousClock.now + timeout
        while received.load(ordering: .acquiring) < count && ContinuousClock.now < deadline {
            usleep(1000)
        }
    }

    /// Waits for the thread; returns the notices seen and whether the target line came.
    func finish() -> (notices: [String], sawTarget: Bool) {
        thread?.join()
        thread = nil
        return (notices, sawTarget)
    }
}
