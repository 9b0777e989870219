// echo-server: every byte a client sends comes back, on the Reactor.
//
//     swift run -c release echo-server [--host 127.0.0.1] [--port 7000] [--threads N]
//                                      [--backend epoll|poll] [--max-open-files N]
//
// With --threads N, N reactors share the port through SO_REUSEPORT. --max-open-files lowers
// the soft RLIMIT_NOFILE (to try the descriptor-limit handling). Prints where it listens;
// SIGINT or SIGTERM stops it cleanly.
import ExampleSupport
import Net
import Reactor
import Selector
import Synchronization
import SysCalls

let usage = """
    usage: echo-server [--host H] [--port P] [--threads N] [--backend epoll|poll]
                       [--max-open-files N]
    """
let arguments = ServerArguments(defaultPort: 7000, usage: usage, extraFlags: ["max-open-files"])

/// Echoes whatever arrives; one instance serves every connection.
final class Echo<Backend: EventSelector>: ConnectionDelegate {
    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        connection.write(bytes)
        return bytes.count
    }
}

/// Counts descriptor-limit events so the operator sees them.
let limitEvents = Atomic<Int>(0)

func serve<Backend: EventSelector>(
    _: Backend.Type, _ arguments: ServerArguments
) throws -> ReactorGroup<Backend> {
    let requested = try SocketAddress(parsing: arguments.addressText)
    let boundPort = Atomic<Int>(arguments.port)
    let reusePort = arguments.threads > 1
    return try ReactorGroup<Backend>(threads: arguments.threads) { reactor, index in
        let address = requested.withPort(UInt16(boundPort.load(ordering: .acquiring)))
        let listener = try TCPListener(binding: address, reusePort: reusePort)
        if index == 0 {
            let local = try listener.localAddress
            boundPort.store(Int(local.port ?? 0), ordering: .releasing)
            printLine(
                "echo-server listening on \(local) (\(Backend.backendName), \(arguments.threads) thread(s))"
            )
        }
        let echo = Echo<Backend>()
        let acceptor = Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
            try? stream.setNoDelay(true)
            try? Connection(socket: stream, reactor: reactor, delegate: echo).start()
        }
        acceptor.onError = { error in
            if limitEvents.wrappingAdd(1, ordering: .relaxed).oldValue % 1000 == 0 {
                printError("echo-server: accept: \(error)")
            }
        }
        try acceptor.start()
    }
}

prepareForTermination()
if let limit = arguments.extra["max-open-files"].flatMap(UInt64.init) {
    do {
        let (_, hard) = try Sys.openFileLimit()
        try Sys.setOpenFileLimit(soft: limit, hard: hard)
    } catch {
        printError("echo-server: cannot set the open-file limit: \(error)")
        Sys.exit(1)
    }
}
do {
    let stop: () -> Void
    switch arguments.backend {
    case "poll": stop = try serve(PollSelector.self, arguments).stop
    default: stop = try serve(EpollSelector.self, arguments).stop
    }
    let signal = waitForTermination()
    stop()
    printLine("echo-server stopped (signal \(signal))")
} catch {
    printError("echo-server: \(error)")
    Sys.exit(1)
}
