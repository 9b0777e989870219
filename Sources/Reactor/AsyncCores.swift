import Net
import Selector
import Synchronization
import SysCalls

/// One waiting async call's cancellation: set by the cancelled task, read on the reactor's
/// thread. Its identity names the call, so that a cancellation arriving late never reaches a
/// later call on the same socket.
final class CallCancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    var isCancelled: Bool { flag.load(ordering: .acquiring) }

    func cancel() { flag.store(true, ordering: .releasing) }
}

/// The reactor-thread half of an `AsyncConnection`: its registration, its connect, and its
/// I/O (`io`, which tasks on the reactor's thread use directly).
// Invariant: used and released only on the reactor's thread (every access is inside a
// `Handle.execute` task, an event callback or `io`'s calls, which check the thread); other
// threads only create it (before sharing it), hold and pass the reference. That is what makes
// the unchecked Sendable sound.
final class AsyncStreamCore<Backend: EventSelector>: EventHandler, @unchecked Sendable {
    let socket: any StreamSocket
    /// The reads and writes; shares this core's thread.
    let io: AsyncStreamIO
    private var pendingConnect:
        (
            continuation: CheckedContinuation<Void, any Error>, to: SocketAddress,
            call: CallCancellation?, timer: TimerID?
        )?
    /// `pendingConnect != nil`, in a byte: testing the optional tuple, whose layout is not
    /// known at compile time (it holds a `CheckedContinuation`), costs value-witness calls per
    /// event.
    private var connecting = false
    private var token: Token?
    private var closed = false
    #if DEBUG
    /// Calls that ran off the reactor's thread and hopped to it (tests check that code living
    /// on the loop never does).
    let hops = Atomic<Int>(0)
    #endif

    /// A core for `socket`, to be served by the reactor behind `handle`.
    init(socket: any StreamSocket, handle: Reactor<Backend>.Handle) {
        self.socket = socket
        io = AsyncStreamIO(
            fd: socket.fileDescriptor, signals: handle.signals,
            shortReadDrains: Backend.shortReadMeansDrained,
            queueOnLoop: { body in (try? handle.execute { _ in body() }) != nil })
    }

    func start(on reactor: Reactor<Backend>, interest: Interest) throws(Errno) {
        io.drainHook = reactor.context.drainHook
        io.scratch = reactor.context.readScratch
        token = try reactor.register(socket.fileDescriptor, interest: interest, handler: self)
    }

    /// Registers the socket, whose connect to `address` is in progress, and resumes
    /// `continuation` when it completes, fails, times out (`timeout`) or is cancelled; in
    /// every case but success the socket is closed and deregistered first.
    func connect(
        to address: SocketAddress, timeout: Duration?, call: CallCancellation,
        reactor: Reactor<Backend>, _ continuation: CheckedContinuation<Void, any Error>
    ) {
        if call.isCancelled {
            try? socket.close()
            return continuation.resume(throwing: CancellationError())
        }
        do {
            try start(on: reactor, interest: [.readable, .writable])
        } catch {
            try? socket.close()
            return continuation.resume(throwing: NetError(error, address: address))
        }
        let timer = timeout.map { delay in
            reactor.schedule(after: delay) { [self] reactor in
                failConnect(NetError(.ETIMEDOUT, address: address), reactor: reactor)
            }
        }
        pendingConnect = (continuation, address, call, timer)
        connecting = true
    }

    func cancelConnect(_ call: CallCancellation, reactor: Reactor<Backend>) {
        guard pendingConnect?.call === call else { return }
        failConnect(CancellationError(), reactor: reactor)
    }

    private func failConnect(_ error: any Error, reactor: Reactor<Backend>) {
        guard let (continuation, _, _, timer) = pendingConnect.take() else { return }
        connecting = false
        if let timer { reactor.cancel(timer) }
        close(on: reactor)
        continuation.resume(throwing: error)
    }

    func close(on reactor: Reactor<Backend>) {
        if let token, reactor.deregister(token) { return }
        finish()
    }

    func handle(_ event: Event, reactor: Reactor<Backend>) {
        if connecting, event.isWritable || event.isError || event.isWriteClosed {
            finishConnect(reactor: reactor)
        }
        io.handle(event)
    }

    func deregistered(reactor: Reactor<Backend>) {
        token = nil
        finish()
    }

    private func finishConnect(reactor: Reactor<Backend>) {
        guard let (continuation, address, _, timer) = pendingConnect else { return }
        let outcome = Result { () throws(Errno) in try socket.takeConnectError(to: address) }
        switch outcome {
        case .success(nil):
            pendingConnect = nil
            connecting = false
            if let timer { reactor.cancel(timer) }
            continuation.resume()
        case .success(let error?): failConnect(error, reactor: reactor)
        case .failure(let error): failConnect(NetError(error, address: address), reactor: reactor)
        }
    }

    private func finish() {
        if closed { return }
        closed = true
        try? socket.close()
        let gone = Errno(Errno.EBADF.code, call: "closed")
        if let (connect, address, _, _) = pendingConnect.take() {
            connecting = false
            connect.resume(throwing: NetError(gone, address: address))
        }
        io.finish()
    }
}

/// A connection accepted on the reactor's thread, as the accepting task receives it: the core
/// and the core's I/O state, read there, so that the task (which may run on another thread)
/// reads none of the core's fields.
struct AcceptedStream<Backend: EventSelector>: Sendable {
    let core: AsyncStreamCore<Backend>
    let io: AsyncStreamIO
}

/// The reactor-thread half of an `AsyncListener`, over a TCP or Unix listener.
// Invariant: as for AsyncStreamCore — only touched on the reactor's thread.
final class AsyncListenerCore<Backend: EventSelector>: EventHandler, @unchecked Sendable {
    private let listener: any Socket
    /// Accepts one connection from `listener`, erasing its stream type.
    private let acceptOne: () throws(Errno) -> IOResult<any StreamSocket>
    /// Waiting `accept`s, oldest first; resumed with nil once the listener is closed.
    private var waiting:
        [(
            call: CallCancellation,
            continuation: CheckedContinuation<AcceptedStream<Backend>?, any Error>
        )] =
            []
    private var token: Token?
    private var closed = false
    /// The selector's drain hook, told when accept would block.
    private var drainHook: (any SelectorDrainHook)?

    init<Listener: ListenerSocket>(listener: Listener) {
        self.listener = listener
        acceptOne = { () throws(Errno) -> IOResult<any StreamSocket> in
            switch try listener.accept() {
            case .wouldBlock: .wouldBlock
            case .processed(let (stream, _)): .processed(stream)
            }
        }
    }

    func start(on reactor: Reactor<Backend>) throws(Errno) {
        drainHook = reactor.context.drainHook
        token = try reactor.register(listener.fileDescriptor, interest: .readable, handler: self)
    }

    /// Resumes `continuation` with the next connection, or nil once the listener is closed.
    func accept(
        call: CallCancellation,
        _ continuation: CheckedContinuation<AcceptedStream<Backend>?, any Error>,
        reactor: Reactor<Backend>
    ) {
        if call.isCancelled { return continuation.resume(throwing: CancellationError()) }
        guard !closed else { return continuation.resume(returning: nil) }
        waiting.append((call, continuation))
        acceptWaiting(reactor: reactor)
    }

    func cancelAccept(_ call: CallCancellation) {
        guard let index = waiting.firstIndex(where: { $0.call === call }) else { return }
        waiting.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    func close(on reactor: Reactor<Backend>) {
        if let token, reactor.deregister(token) { return }
        finish()
    }

    func handle(_ event: Event, reactor: Reactor<Backend>) { acceptWaiting(reactor: reactor) }

    func deregistered(reactor: Reactor<Backend>) {
        token = nil
        finish()
    }

    private func finish() {
        if closed { return }
        closed = true
        try? listener.close()
        let waiters = waiting
        waiting = []
        waiters.forEach { $0.continuation.resume(returning: nil) }
    }

    private func acceptWaiting(reactor: Reactor<Backend>) {
        while !waiting.isEmpty {
            do {
                guard case .processed(let stream) = try acceptOne() else {
                    drainHook?.drained(listener.fileDescriptor, .readable)
                    return
                }
                let core = AsyncStreamCore<Backend>(socket: stream, handle: reactor.handle)
                try core.start(on: reactor, interest: [.readable, .writable])
                waiting.removeFirst().continuation.resume(
                    returning: AcceptedStream(core: core, io: core.io))
            } catch Errno.ECONNABORTED {
                continue
            } catch {
                // EMFILE and friends: fail this waiter rather than spin; the next accept retries.
                waiting.removeFirst().continuation.resume(throwing: error)
            }
        }
    }
}
