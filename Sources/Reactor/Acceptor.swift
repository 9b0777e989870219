import Net
import Selector
import SysCalls

/// Accepts TCP connections on a listener and hands each to `onAccept`.
///
/// Accepts until would-block on every readable event (edge-triggered). At the descriptor
/// limit (EMFILE/ENFILE) it neither spins nor stalls: through Net's `DescriptorReserve` it
/// frees a descriptor kept for this moment, accepts and immediately closes pending
/// connections (their clients see a clean close instead of hanging in the backlog), reopens
/// the reserve and carries on serving the established connections; if even that fails it
/// retries on a timer. Each such event is
/// reported through `onError`.
///
/// ```swift
/// let acceptor = Acceptor(listener: listener, reactor: reactor) { stream, peer, reactor in
///     try? Connection(socket: stream, reactor: reactor, delegate: echo).start()
/// }
/// try acceptor.start()
/// ```
public final class Acceptor<Backend: EventSelector>: EventHandler {
    /// Called on the reactor's thread for each accepted connection.
    public typealias AcceptHandler = (TCPStream, SocketAddress, Reactor<Backend>) -> Void

    /// The listening socket; closed when the acceptor is deregistered.
    public let listener: TCPListener
    /// Told about accept failures (EMFILE, ENFILE, ENOBUFS, …) that the acceptor survived.
    public var onError: ((Errno) -> Void)?
    /// Connections accepted and handed over.
    public private(set) var acceptedCount = 0
    /// Connections accepted only to be closed at once for lack of descriptors.
    public var droppedCount: Int { reserve.turnedAwayCount }

    private unowned let reactor: Reactor<Backend>
    private let onAccept: AcceptHandler
    private var reserve = DescriptorReserve()
    /// The listener's registration token, once started (to script its events in tests).
    public private(set) var token = Token(rawValue: .max)
    private var retryPending = false
    private let retryDelay: Duration

    /// Serves `listener` on `reactor`; `retryDelay` paces retries when even the reserve
    /// descriptor cannot be reopened.
    public init(
        listener: TCPListener, reactor: Reactor<Backend>, retryDelay: Duration = .milliseconds(100),
        onAccept: @escaping AcceptHandler
    ) {
        self.listener = listener
        self.reactor = reactor
        self.onAccept = onAccept
        self.retryDelay = retryDelay
    }

    /// Registers the listener (readable) with the reactor.
    ///
    /// Once only: a second call throws EEXIST, as `Connection.start()` does.
    public func start() throws(Errno) {
        guard token == Token(rawValue: .max) else {
            throw Errno(Errno.EEXIST.code, call: "Acceptor.start (already started)")
        }
        if reactor.context.completesIO {
            // A multishot accept: each connection arrives as a completion.
            token = reactor.registerForCompletions(
                listener.fileDescriptor, handler: self, kind: .handler)
            do {
                try reactor.selector.accept(listener.fileDescriptor, token: token)
            } catch {
                reactor.deregister(token)
                throw error
            }
            return
        }
        token = try reactor.register(listener.fileDescriptor, interest: .readable, handler: self)
    }

    /// Stops accepting: deregisters and closes the listener.
    public func stop() { reactor.deregister(token) }

    /// Accepts until would-block.
    public func handle(_ event: Event, reactor: Reactor<Backend>) { acceptAll() }

    /// A connection the backend accepted (`EventSelector.completesIO`), or the end of its
    /// accepting (an error, then handled as `accept` errors are on readiness backends), or
    /// readability awaited after the descriptor limit.
    public func handle(_ completion: IOCompletion, reactor: Reactor<Backend>) {
        if completion.operation == .accept && completion.result >= 0 {
            let accepted: (TCPStream, SocketAddress)
            do {
                accepted = try listener.adoptAccepted(FileDescriptor(completion.result))
            } catch {
                return  // the client is gone already (ENOTCONN); its descriptor is closed
            }
            acceptedCount += 1
            onAccept(accepted.0, accepted.1, reactor)
            return
        }
        // The multishot accept ended (EMFILE, ECONNABORTED, ...) or the listener turned
        // readable after one: accept here until would-block, which starts it again.
        acceptAll()
    }

    /// A retry after the descriptor limit.
    public func timerFired(tag: Int, reactor: Reactor<Backend>) {
        retryPending = false
        acceptAll()
    }

    /// Closes the listener.
    public func deregistered(reactor: Reactor<Backend>) {
        try? listener.close()
        reserve.close()
    }

    private func acceptAll() {
        while true {
            do {
                switch try listener.accept() {
                case .wouldBlock:
                    if reactor.context.completesIO { return resumeAccepting() }
                    reactor.drained(listener.fileDescriptor, .readable)
                    return
                case .processed(let (stream, peer)):
                    acceptedCount += 1
                    onAccept(stream, peer, reactor)
                }
            } catch let error {
                switch error.code {
                case Errno.ECONNABORTED.code, Errno.EPERM.code, Errno.EPROTO.code:
                    continue  // that client gave up (or a firewall said no); next one
                case Errno.EMFILE.code, Errno.ENFILE.code:
                    onError?(error)
                    switch reserve.turnAwayOne(from: listener) {
                    case .turnedAway:
                        continue
                    case .queueEmpty:
                        // Backlog empty. accept4 fails with EMFILE before it looks at the
                        // queue, so looping here would spin; the would-block re-arms readiness.
                        // (A multishot accept would fail at once too: wait for readability.)
                        if reactor.context.completesIO { return awaitConnection() }
                        reactor.drained(listener.fileDescriptor, .readable)
                        return
                    case .failed:
                        scheduleRetry()
                        return
                    }
                default:
                    // ENOBUFS, ENOMEM: transient. Without a would-block, edge-triggered
                    // readiness will not fire again, so come back on a timer.
                    onError?(error)
                    scheduleRetry()
                    return
                }
            }
        }
    }

    /// Completions: starts the multishot accept again (on failure, retries on a timer).
    private func resumeAccepting() {
        do {
            try reactor.selector.accept(listener.fileDescriptor, token: token)
        } catch {
            onError?(error)
            scheduleRetry()
        }
    }

    /// Completions: asks for one completion when a connection is pending.
    private func awaitConnection() {
        do {
            try reactor.selector.awaitReadable(listener.fileDescriptor, token: token)
        } catch {
            onError?(error)
            scheduleRetry()
        }
    }

    private func scheduleRetry() {
        guard !retryPending else { return }
        retryPending = true
        reactor.scheduleTimer(after: retryDelay, for: token, tag: 0)
    }
}
