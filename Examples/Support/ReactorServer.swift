import Net
import Reactor
import Selector
import Synchronization
import SysCalls

/// What an example server on the Reactor serves: a delegate per reactor and the settings of
/// every connection it accepts.
public protocol ReactorService: Sendable {
    /// Settings for every accepted connection.
    var settings: ConnectionSettings { get }

    /// The delegate for every connection of `reactor`; called once per reactor, on its thread.
    func makeDelegate<Backend: EventSelector>(
        for reactor: Reactor<Backend>
    ) -> any ConnectionDelegate<Backend>
}

extension ReactorService {
    /// Default connection settings.
    public var settings: ConnectionSettings { ConnectionSettings() }
}

/// Serves `service` on `arguments.threads` reactors of `arguments.backend` until SIGINT or
/// SIGTERM, then returns; if the servers cannot start, prints why and exits with status 1.
///
/// Each reactor accepts on its own listener for `arguments.addressText`; with more than one
/// they share the port through SO_REUSEPORT (the first binds, so port 0 picks one port for
/// all). Accepted sockets get TCP_NODELAY. Prints "<name> listening on <address> (<backend>,
/// <n> thread(s))" once accepting (followed by " (provided buffers …)" for a backend with a
/// receive buffer pool, resident from then on), "<name> stopped (signal <n>)" at the end. Call
/// `prepareForTermination()` first.
public func runReactorServer(
    _ name: String, _ arguments: ServerArguments, _ service: some ReactorService
) {
    do {
        let stop: () -> Void
        switch arguments.backend {
        case "poll": stop = try startGroup(PollSelector.self, name, arguments, service).stop
        #if canImport(Darwin) || Kqueue
        case "kqueue": stop = try startGroup(KqueueSelector.self, name, arguments, service).stop
        #endif
        #if os(Linux)
        case "epoll": stop = try startGroup(EpollSelector.self, name, arguments, service).stop
        case "uring": stop = try startGroup(URingSelector.self, name, arguments, service).stop
        #endif
        default: stop = try startGroup(DefaultSelector.self, name, arguments, service).stop
        }
        let signal = waitForTermination()
        stop()
        printLine("\(name) stopped (signal \(signal))")
    } catch {
        printError("\(name): \(error)")
        Sys.exit(1)
    }
}

/// Counts accept failures, so only every thousandth is printed.
private let acceptErrors = Atomic<Int>(0)

/// Starts the reactors of `runReactorServer`.
private func startGroup<Backend: EventSelector>(
    _: Backend.Type, _ name: String, _ arguments: ServerArguments,
    _ service: some ReactorService
) throws -> ReactorGroup<Backend> {
    let requested = try SocketAddress(parsing: arguments.addressText)
    let boundPort = Atomic<Int>(arguments.port)
    let reusePort = arguments.threads > 1
    let settings = service.settings
    return try ReactorGroup<Backend>(threads: arguments.threads) { reactor, index in
        let address = requested.withPort(UInt16(boundPort.load(ordering: .acquiring)))
        let listener = try TCPListener(binding: address, reusePort: reusePort)
        if index == 0 {
            let local = try listener.localAddress
            boundPort.store(Int(local.port ?? 0), ordering: .releasing)
        }
        let delegate = service.makeDelegate(for: reactor)
        let acceptor = Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
            try? stream.setNoDelay(true)
            try? Connection(
                socket: stream, reactor: reactor, delegate: delegate, settings: settings
            )
            .start()
        }
        acceptor.onError = { error in
            if acceptErrors.wrappingAdd(1, ordering: .relaxed).oldValue % 1000 == 0 {
                printError("\(name): accept: \(error)")
            }
        }
        try acceptor.start()
        // After `start`: a completion backend's receive buffers exist (and are resident) now.
        if index == 0 {
            printLine(
                "\(name) listening on \(try listener.localAddress) (\(Backend.backendName), "
                    + "\(arguments.threads) thread(s))\(bufferPoolNote(reactor.selector))")
        }
    }
}

/// " (provided buffers N × S B = M MiB per thread)" for a backend that receives into buffers
/// of its own (io_uring), "" for the others: the pool is a fixed cost, reported apart from the
/// memory each connection takes. (No colon in it: the port is read after the line's last one.)
private func bufferPoolNote(_ selector: some EventSelector) -> String {
    let pool = selector.receiveBufferPool
    guard pool.start != nil, pool.count > 0 else { return "" }
    let tenths = Int((Double(pool.count * pool.bufferSize) / Double(1 << 20) * 10).rounded())
    let size = "\(tenths / 10).\(tenths % 10) MiB"
    return " (provided buffers \(pool.count) × \(pool.bufferSize) B = \(size) per thread)"
}

/// Serves an echo written with async/await on one reactor thread of `arguments.backend` until
/// SIGINT or SIGTERM: a task per connection on the reactor's executor reads into one buffer
/// and writes back what it read. Prints "echo-server listening on <address> (<backend>, async)".
public func runAsyncEchoServer(_ arguments: ServerArguments) {
    do {
        let stop: () -> Void
        switch arguments.backend {
        case "poll": stop = try startAsyncEcho(PollSelector.self, arguments)
        #if canImport(Darwin) || Kqueue
        case "kqueue": stop = try startAsyncEcho(KqueueSelector.self, arguments)
        #endif
        #if os(Linux)
        case "epoll": stop = try startAsyncEcho(EpollSelector.self, arguments)
        case "uring": stop = try startAsyncEcho(URingSelector.self, arguments)
        #endif
        default: stop = try startAsyncEcho(DefaultSelector.self, arguments)
        }
        let signal = waitForTermination()
        stop()
        printLine("echo-server stopped (signal \(signal))")
    } catch {
        printError("echo-server: \(error)")
        Sys.exit(1)
    }
}

/// Starts `runAsyncEchoServer`'s reactor thread and accept loop; returns how to stop them.
private func startAsyncEcho<Backend: EventSelector>(
    _: Backend.Type, _ arguments: ServerArguments
) throws -> () -> Void {
    let loop = try ReactorThread<Backend>()
    let handle = loop.handle
    let listener = try TCPListener(binding: try SocketAddress(parsing: arguments.addressText))
    let local = try listener.localAddress
    let ready = Completion()
    Task(executorPreference: handle) {
        do {
            let asyncListener = try await AsyncListener(wrapping: listener, on: handle)
            ready.signal()
            for try await connection in asyncListener.connections {
                Task(executorPreference: handle) { await echo(connection) }
            }
        } catch {
            printError("echo-server: accept: \(error)")
            ready.signal()
        }
    }
    ready.wait()
    printLine("echo-server listening on \(local) (\(Backend.backendName), async)")
    return {
        loop.stop()
        try? loop.join()
    }
}

/// Echoes `connection` until EOF or an error, then closes it. The lent read waits holding no
/// buffer, so an idle connection costs no read buffer, and the bytes stay in the buffer the
/// reactor lends until they are written: no allocation per message.
private func echo<Backend>(_ connection: AsyncConnection<Backend>) async {
    while let bytes = try? await connection.readLent(), !bytes.isEmpty {
        do {
            try await connection.write(bytes)
        } catch {
            break
        }
    }
    await connection.close()
}

/// A one-shot signal between threads.
private final class Completion: @unchecked Sendable {
    // Invariant: `done` is only read or written with `lock` held.
    private let lock = Lock()
    private var done = false

    func signal() {
        lock.withLock {
            done = true
            lock.broadcast()
        }
    }

    func wait() {
        lock.lock()
        while !done { _ = lock.wait(until: nil) }
        lock.unlock()
    }
}
