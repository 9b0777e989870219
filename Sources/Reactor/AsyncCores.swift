import Net
import Selector
import SysCalls

/// The reactor-thread half of an `AsyncConnection`.
// Invariant: created, used and released only on the reactor's thread (every access is inside
// a `Handle.execute` task or an event callback); other threads only hold and pass the
// reference. That is what makes the unchecked Sendable sound.
final class AsyncStreamCore<Backend: EventSelector>: EventHandler, @unchecked Sendable {
    let socket: any StreamSocket
    /// A connect in progress: who waits for it, and the address (which its error names).
    var pendingConnect:
        (continuation: CheckedContinuation<AsyncStreamCore<Backend>, any Error>, to: SocketAddress)?
    private var pendingRead: (max: Int, continuation: CheckedContinuation<[UInt8], any Error>)?
    private var pendingWrite:
        (bytes: [UInt8], offset: Int, continuation: CheckedContinuation<Void, any Error>)?
    private var token: Token?
    private var closed = false
    /// The selector's drain hook, told when I/O would block.
    private var drainHook: (any SelectorDrainHook)?

    init(socket: any StreamSocket) { self.socket = socket }

    func start(on reactor: Reactor<Backend>, interest: Interest) throws(Errno) {
        drainHook = reactor.context.drainHook
        token = try reactor.register(socket.fileDescriptor, interest: interest, handler: self)
    }

    func read(maxBytes: Int, _ continuation: CheckedContinuation<[UInt8], any Error>) {
        guard !closed else {
            return continuation.resume(throwing: Errno(Errno.EBADF.code, call: "read"))
        }
        guard pendingRead == nil else {
            return continuation.resume(throwing: Errno(Errno.EALREADY.code, call: "read"))
        }
        pendingRead = (max(1, maxBytes), continuation)
        tryRead()
    }

    func write(_ bytes: [UInt8], _ continuation: CheckedContinuation<Void, any Error>) {
        guard !closed else {
            return continuation.resume(throwing: Errno(Errno.EBADF.code, call: "write"))
        }
        guard pendingWrite == nil else {
            return continuation.resume(throwing: Errno(Errno.EALREADY.code, call: "write"))
        }
        pendingWrite = (bytes, 0, continuation)
        tryWrite()
    }

    func cancelRead() {
        pendingRead.take()?.continuation.resume(throwing: CancellationError())
    }

    func close(on reactor: Reactor<Backend>) {
        if let token { reactor.deregister(token) } else { finish() }
    }

    func handle(_ event: Event, reactor: Reactor<Backend>) {
        if let (connect, address) = pendingConnect,
            event.isWritable || event.isError || event.isWriteClosed
        {
            pendingConnect = nil
            switch Result(catching: { () throws(Errno) in try socket.takeConnectError(to: address) }
            ) {
            case .success(nil): connect.resume(returning: self)
            case .success(let error?): connect.resume(throwing: error)
            case .failure(let error): connect.resume(throwing: NetError(error, address: address))
            }
        }
        if pendingRead != nil { tryRead() }
        if pendingWrite != nil { tryWrite() }
    }

    func deregistered(reactor: Reactor<Backend>) { finish() }

    private func finish() {
        closed = true
        try? socket.close()
        let gone = Errno(Errno.EBADF.code, call: "closed")
        if let (connect, address) = pendingConnect.take() {
            connect.resume(throwing: NetError(gone, address: address))
        }
        pendingRead.take()?.continuation.resume(throwing: gone)
        pendingWrite.take()?.continuation.resume(throwing: gone)
    }

    private func tryRead() {
        guard let (limit, continuation) = pendingRead else { return }
        var bytes = [UInt8](repeating: 0, count: limit)
        do {
            switch try socket.read(into: &bytes) {
            case .wouldBlock:
                drainHook?.drained(socket.fileDescriptor, .readable)
                return  // the next readable event retries
            case .processed(let n):
                pendingRead = nil
                bytes.removeSubrange(n...)
                continuation.resume(returning: bytes)
            }
        } catch {
            pendingRead = nil
            continuation.resume(throwing: error)
        }
    }

    private func tryWrite() {
        guard let (bytes, start, continuation) = pendingWrite else { return }
        var offset = start
        do {
            while offset < bytes.count {
                let result = try bytes.withUnsafeBytes { (raw) throws(Errno) in
                    try socket.write(UnsafeRawBufferPointer(rebasing: raw[offset...]))
                }
                guard case .processed(let n) = result else {
                    drainHook?.drained(socket.fileDescriptor, .writable)
                    pendingWrite = (bytes, offset, continuation)
                    return  // the next writable event retries
                }
                offset += n
            }
            pendingWrite = nil
            continuation.resume()
        } catch {
            pendingWrite = nil
            continuation.resume(throwing: error)
        }
    }
}

/// The reactor-thread half of an `AsyncListener`.
// Invariant: as for AsyncStreamCore — only touched on the reactor's thread.
final class AsyncListenerCore<Backend: EventSelector>: EventHandler, @unchecked Sendable {
    private let listener: TCPListener
    private var waiting: [CheckedContinuation<AsyncStreamCore<Backend>, any Error>] = []
    private var token: Token?
    /// The selector's drain hook, told when accept would block.
    private var drainHook: (any SelectorDrainHook)?

    init(listener: TCPListener) { self.listener = listener }

    func start(on reactor: Reactor<Backend>) throws(Errno) {
        drainHook = reactor.context.drainHook
        token = try reactor.register(listener.fileDescriptor, interest: .readable, handler: self)
    }

    func accept(
        _ continuation: CheckedContinuation<AsyncStreamCore<Backend>, any Error>,
        reactor: Reactor<Backend>
    ) {
        guard token != nil else {
            return continuation.resume(throwing: Errno(Errno.EBADF.code, call: "accept"))
        }
        waiting.append(continuation)
        acceptWaiting(reactor: reactor)
    }

    func close(on reactor: Reactor<Backend>) {
        if let token { reactor.deregister(token) }
    }

    func handle(_ event: Event, reactor: Reactor<Backend>) { acceptWaiting(reactor: reactor) }

    func deregistered(reactor: Reactor<Backend>) {
        token = nil
        try? listener.close()
        let gone = Errno(Errno.EBADF.code, call: "accept")
        waiting.forEach { $0.resume(throwing: gone) }
        waiting = []
    }

    private func acceptWaiting(reactor: Reactor<Backend>) {
        while !waiting.isEmpty {
            do {
                guard case .processed(let (stream, _)) = try listener.accept() else {
                    drainHook?.drained(listener.fileDescriptor, .readable)
                    return
                }
                let core = AsyncStreamCore<Backend>(socket: stream)
                try core.start(on: reactor, interest: [.readable, .writable])
                waiting.removeFirst().resume(returning: core)
            } catch Errno.ECONNABORTED {
                continue
            } catch {
                // EMFILE and friends: fail this waiter rather than spin; the next accept retries.
                waiting.removeFirst().resume(throwing: error)
            }
        }
    }
}
