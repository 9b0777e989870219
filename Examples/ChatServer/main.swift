// chat-server: a line-based chat room on Selector and Net alone — no Reactor — to show that
// the lower layers stand on their own.
//
//     swift run -c release chat-server [--host 127.0.0.1] [--port 8080] [--backend epoll|poll|kqueue|uring]
//                                      [--max-line 65536] [--max-backlog 1048576]
//                                      [--max-open-files N]
//
// Each line a client sends reaches every other client as "<id>: line"; "* <id> joined" and
// "* <id> left" announce arrivals and departures, and a new client is told "* you are <id>".
// A line over --max-line bytes earns "error: line too long" and a disconnect; a client that
// lets more than --max-backlog bytes pile up unread is disconnected. --max-open-files lowers
// the soft RLIMIT_NOFILE (to try the descriptor-limit handling). Try it with `nc 127.0.0.1
// 8080` in two terminals. SIGINT or SIGTERM stops it cleanly.
import ExampleSupport
import Net
import Selector
import Synchronization
import SysCalls

let usage = """
    usage: chat-server [--host H] [--port P] [--backend epoll|poll|kqueue|uring] [--max-line BYTES]
                       [--max-backlog BYTES] [--max-open-files N]
    """
let arguments = ServerArguments(
    defaultPort: 8080, usage: usage, extraFlags: ["max-line", "max-backlog", "max-open-files"])

/// Reads a positive integer flag, or exits 2 explaining which one is wrong.
func positiveFlag(_ name: String) -> Int? {
    guard let text = arguments.extra[name] else { return nil }
    guard let value = Int(text), value > 0 else {
        printError("bad value for --\(name): \(text)\n\(usage)")
        Sys.exit(2)
    }
    return value
}

/// Runs the chat room on `Backend` until SIGINT or SIGTERM; returns the signal's number.
func serve<Backend: EventSelector>(_: Backend.Type, limits: ChatLimits) throws -> Int32 {
    let server = try ChatServer<Backend>(
        address: try SocketAddress(parsing: arguments.addressText), limits: limits)
    printLine("chat-server listening on \(server.localAddress) (\(Backend.backendName))")
    // Signals are blocked in every thread (prepareForTermination), so this thread takes them
    // with sigwait and wakes the selector; the loop then sees the waker's token and returns.
    let stopper = server.stopper
    let received = Atomic<Int32>(0)
    let signalThread = try OSThread(name: "chat-signals") {
        received.store(waitForTermination(), ordering: .releasing)
        try? stopper.wake()
    }
    try server.run()
    signalThread.join()
    return received.load(ordering: .acquiring)
}

prepareForTermination()
var limits = ChatLimits()
if let maxLine = positiveFlag("max-line") { limits.maxLine = maxLine }
if let maxBacklog = positiveFlag("max-backlog") { limits.maxBacklog = maxBacklog }
if let openFiles = positiveFlag("max-open-files") {
    do {
        let (_, hard) = try Sys.openFileLimit()
        try Sys.setOpenFileLimit(soft: UInt64(openFiles), hard: hard)
    } catch {
        printError("chat-server: cannot set the open-file limit: \(error)")
        Sys.exit(1)
    }
}
if arguments.threads != 1 {
    printError("chat-server runs on one thread; --threads is not supported\n\(usage)")
    Sys.exit(2)
}
do {
    let signal: Int32
    switch arguments.backend {
    case "poll": signal = try serve(PollSelector.self, limits: limits)
    #if canImport(Darwin) || Kqueue
    case "kqueue": signal = try serve(KqueueSelector.self, limits: limits)
    #endif
    #if os(Linux)
    case "epoll": signal = try serve(EpollSelector.self, limits: limits)
    case "uring": signal = try serve(URingSelector.self, limits: limits)
    #endif
    default: signal = try serve(DefaultSelector.self, limits: limits)
    }
    printLine("chat-server stopped (signal \(signal))")
} catch {
    printError("chat-server: \(error)")
    Sys.exit(1)
}
