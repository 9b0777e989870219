// Delays: five slow requests served at once by one thread and one selector.
//
// The program is both server and clients, all in one selector loop, and never sleeps:
// - the server listens on 127.0.0.1 (a kernel-chosen port), reads "DELAY <ms>\n" from each
//   connection and schedules the answer "DONE <ms>\n" for now + <ms>; the loop's select
//   timeout is the nearest pending deadline, and the server hangs up once an answer is sent;
// - five non-blocking clients ask for 4, 3, 2, 1 and 0 units and print `RECEIVED: n` (n is
//   the request number, 1…5) as their answers complete.
// Shortest delay first, so the output is RECEIVED: 5, 4, 3, 2, 1, then FINISHED, after about
// 4 units in all, not the 10 a one-request-at-a-time server would take.
//
// Readiness is edge-triggered: after each event the loop accepts, reads or writes until the
// kernel answers would-block, and tolerates partial reads and writes.
//
//     swift run delays [--unit-ms 1000] [--backend epoll|poll|kqueue|uring]
import CSysCalls
import Selector
import SysCalls

let usage = """
    usage: delays [--unit-ms N] [--backend epoll|poll|kqueue|uring]
      --unit-ms N        milliseconds per delay unit (default 1000)
      --backend NAME     selector backend: epoll, poll, kqueue or uring (kqueue: Darwin/BSD,
                         or builds with the Kqueue trait; uring: Linux io_uring); default: the
                         platform's best
      -h, --help         print this help
    """

/// Writes `text` and a newline straight to `fd`, unbuffered, so lines show as they happen.
/// One write(2): a line this short to a blocking stdout or stderr is not split.
func emit(_ text: String, to fd: FileDescriptor = FileDescriptor(1)) {
    var line = text + "\n"
    _ = line.withUTF8 { try? Sys.write(fd, from: UnsafeRawBufferPointer($0)) }
}

/// Reports a command-line mistake and exits with status 2.
func usageError(_ message: String) -> Never {
    emit("delays: \(message)\n\(usage)", to: FileDescriptor(2))
    Sys.exit(2)
}

/// One TCP connection of either side: bytes in, bytes out.
final class Connection {
    let fd: FileDescriptor
    let token: Token
    var input: [UInt8] = []
    var output: [UInt8] = []
    var sent = 0
    var closed = false
    var connectChecked = false  // client side: SO_ERROR read after the connect finished
    var delay: Int?  // server side: the requested delay, once the request line is in

    init(fd: FileDescriptor, token: Token, output: String = "") {
        (self.fd, self.token, self.output) = (fd, token, Array(output.utf8))
    }
}

/// The whole demo: listener, clients, server sessions and answer deadlines in one loop.
final class Demo<S: EventSelector> {
    // Token 0 is the listener, 1…5 the clients, sessionBase + slot the server sessions.
    static var sessionBase: Int { 100 }
    let selector: S
    var listener: Connection?
    var clients: [Connection] = []
    var sessions: [Connection] = []
    /// Pending answers, sorted by deadline: few enough that a sorted array beats a heap.
    var deadlines: [(at: ContinuousClock.Instant, session: Connection)] = []
    var chunk = [UInt8](repeating: 0, count: 4096)

    init(selector: S) { self.selector = selector }

    /// Opens the listener, prints its address, and starts one client per delay.
    func start(delays: [Int]) throws(Errno) {
        let fd = try Sys.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
        listener = Connection(fd: fd, token: 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian  // 127.0.0.1, port 0
        try withUnsafeBytes(of: address) { (raw) throws(Errno) in try Sys.bind(fd, raw) }
        try Sys.listen(fd, backlog: 16)
        try selector.register(fd, token: 0, interest: .readable)
        let (bound, _) = try Sys.getsockname(fd)
        address.sin_port = withUnsafeBytes(of: bound) { $0.load(as: sockaddr_in.self).sin_port }
        emit("listening on 127.0.0.1:\(UInt16(bigEndian: address.sin_port)) (\(S.backendName))")

        for (index, delay) in delays.enumerated() {
            let socket = try Sys.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
            let client = Connection(fd: socket, token: Token(index + 1), output: "DELAY \(delay)\n")
            clients.append(client)
            // In progress or done at once: either way a writable event follows.
            _ = try withUnsafeBytes(of: address) { (raw) throws(Errno) in
                try Sys.connect(socket, raw)
            }
            // Both directions for good: edge-triggered, writable fires again only after a
            // write would have blocked, so there is nothing to toggle.
            try selector.register(socket, token: client.token, interest: [.readable, .writable])
        }
    }

    /// Runs until every client has its answer.
    func run() throws(Errno) {
        var events = Events(capacity: 64)
        while clients.contains(where: { !$0.closed }) {
            let timeout = deadlines.first.map { max(.zero, $0.at - ContinuousClock.now) }
            try selector.select(into: &events, timeout: timeout)
            for event in events {
                let token = event.token.intValue
                if token == 0 {
                    try acceptAll()
                } else if token <= clients.count {
                    try clientReady(clients[token - 1], event)
                } else {
                    sessionReady(sessions[token - Self.sessionBase], event)
                }
            }
            let now = ContinuousClock.now
            while let first = deadlines.first, first.at <= now {
                deadlines.removeFirst()
                answer(first.session)
            }
        }
        emit("FINISHED")
    }

    func acceptAll() throws(Errno) {
        guard let listener else { return }
        while case .processed(let fd) = try Sys.accept(listener.fd) {
            let session = Connection(fd: fd, token: Token(Self.sessionBase + sessions.count))
            sessions.append(session)
            try selector.register(fd, token: session.token, interest: [.readable, .writable])
        }
        // Would block: a backend that emulates edges (poll) watches the listener again.
        selector.drainHook?.drained(listener.fd, .readable)
    }

    /// Reads until the kernel would block; true at end of file.
    func readAll(_ connection: Connection) throws(Errno) -> Bool {
        while true {
            // Array's buffer accessors rethrow untyped errors: the Errno rides in a Result.
            let result = try chunk.withUnsafeMutableBytes { raw in
                Result { () throws(Errno) in try Sys.recv(connection.fd, into: raw) }
            }.get()
            switch result {
            case .wouldBlock:
                selector.drainHook?.drained(connection.fd, .readable)
                return false
            case .processed(0): return true
            case .processed(let n): connection.input += chunk[..<n]
            }
        }
    }

    /// Writes pending output until it is all out (true) or the kernel would block (false).
    func writeAll(_ connection: Connection) throws(Errno) -> Bool {
        while connection.sent < connection.output.count {
            let result = try connection.output[connection.sent...].withUnsafeBytes { raw in
                Result { () throws(Errno) in try Sys.send(connection.fd, raw) }
            }.get()
            guard case .processed(let n) = result else {
                selector.drainHook?.drained(connection.fd, .writable)
                return false
            }
            connection.sent += n
        }
        return true
    }

    func clientReady(_ client: Connection, _ event: Event) throws(Errno) {
        if client.closed { return }
        if !client.connectChecked, event.isWritable || event.isError {
            let error = try Sys.socketError(client.fd)
            if error != 0 { throw Errno(error, call: "connect") }
            client.connectChecked = true
        }
        if client.connectChecked { _ = try writeAll(client) }
        guard event.isReadable || event.isReadClosed || event.isError else { return }
        let ended = try readAll(client)
        if client.input.contains(UInt8(ascii: "\n")) {
            emit("RECEIVED: \(client.token.intValue)")
            close(client)
        } else if ended {
            throw Errno(Errno.ECONNRESET.code, call: "server hung up early")
        }
    }

    /// Reads the request and schedules its answer. A failing session is closed; the server
    /// carries on.
    func sessionReady(_ session: Connection, _ event: Event) {
        if session.closed { return }
        do throws(Errno) {
            if event.isReadable || event.isReadClosed || event.isError {
                // End of file: the client left, nobody to answer.
                if try readAll(session) { return close(session) }
            }
            if session.delay == nil, let end = session.input.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: session.input[..<end], as: UTF8.self)
                guard line.hasPrefix("DELAY "), let delay = Int(line.dropFirst(6)), delay >= 0
                else { throw Errno(Errno.EINVAL.code, call: "bad request") }
                session.delay = delay
                let at = ContinuousClock.now + .milliseconds(delay)
                let index = deadlines.firstIndex { $0.at > at } ?? deadlines.endIndex
                deadlines.insert((at, session), at: index)
            }
            // A partial answer continues here, on the writable edge.
            if !session.output.isEmpty, try writeAll(session) { close(session) }
        } catch {
            emit("delays: \(session.token): \(error)", to: FileDescriptor(2))
            close(session)
        }
    }

    /// The deadline passed: send the answer, and hang up once it is all out (or failed).
    func answer(_ session: Connection) {
        if session.closed { return }
        session.output = Array("DONE \(session.delay ?? 0)\n".utf8)
        if (try? writeAll(session)) != false { close(session) }
    }

    func close(_ connection: Connection) {
        if connection.closed { return }
        connection.closed = true
        try? selector.deregister(connection.fd)
        try? Sys.close(connection.fd)
    }

    /// Closes every descriptor still open, whatever happened.
    func closeAll() {
        for connection in clients + sessions + [listener].compactMap({ $0 }) { close(connection) }
    }
}

/// Runs the demo on the selector type `S`.
func runDemo<S: EventSelector>(_: S.Type, unitMs: Int) throws(Errno) {
    let selector = try S()
    let demo = Demo(selector: selector)
    defer {
        demo.closeAll()
        selector.close()
    }
    try demo.start(delays: [4, 3, 2, 1, 0].map { $0 * unitMs })
    try demo.run()
}

var unitMs = 1000
var backend = ""
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "-h", "--help":
        emit(usage)
        Sys.exit(0)
    case "--unit-ms":
        guard let value = arguments.popFirst().flatMap({ Int($0) }), (0...60_000).contains(value)
        else { usageError("--unit-ms needs a whole number of milliseconds, 0…60000") }
        unitMs = value
    case "--backend":
        guard let value = arguments.popFirst(),
            ["epoll", "poll", "kqueue", "uring"].contains(value)
        else { usageError("--backend needs epoll, poll, kqueue or uring") }
        #if !(canImport(Darwin) || Kqueue)
        if value == "kqueue" {
            usageError(
                "--backend kqueue: this build lacks the Kqueue trait "
                    + "(install libkqueue and build with `swift build --traits Kqueue`)")
        }
        #endif
        backend = value
    default:
        usageError("unknown argument '\(flag)'")
    }
}

do throws(Errno) {
    Sys.ignoreSIGPIPE()
    switch backend {
    case "poll": try runDemo(PollSelector.self, unitMs: unitMs)
    #if canImport(Darwin) || Kqueue
    case "kqueue": try runDemo(KqueueSelector.self, unitMs: unitMs)
    #endif
    #if os(Linux)
    case "epoll": try runDemo(EpollSelector.self, unitMs: unitMs)
    case "uring": try runDemo(URingSelector.self, unitMs: unitMs)
    #endif
    default: try runDemo(DefaultSelector.self, unitMs: unitMs)
    }
} catch {
    emit("delays: \(error)", to: FileDescriptor(2))
    Sys.exit(1)
}
