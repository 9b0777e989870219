import Net
import Selector
import SysCalls

/// async/await reads and writes on a reactor: no thread per connection.
///
/// The socket lives on the reactor's thread; each call hops there through the reactor's
/// `Handle`, tries the I/O at once and, if it would block, parks a continuation that the next
/// readiness event resumes. Any task on any executor may call it; one read and one write may
/// be outstanding at a time (a second concurrent read throws EBUSY-like EALREADY).
///
/// ```swift
/// let connection = try await AsyncConnection.connect(to: address, on: reactor.handle)
/// try await connection.write(Array("ping\n".utf8))
/// let reply = try await connection.read()      // [] at end of file
/// await connection.close()
/// ```
public final class AsyncConnection<Backend: EventSelector>: Sendable {
    private let handle: Reactor<Backend>.Handle
    private let core: AsyncStreamCore<Backend>

    init(handle: Reactor<Backend>.Handle, core: AsyncStreamCore<Backend>) {
        self.handle = handle
        self.core = core
    }

    /// Connects to `address`; the socket is served by the reactor behind `handle`.
    public static func connect(
        to address: SocketAddress, on handle: Reactor<Backend>.Handle
    ) async throws -> AsyncConnection {
        let core: AsyncStreamCore<Backend> = try await withCheckedThrowingContinuation {
            continuation in
            do {
                try handle.execute { reactor in
                    do {
                        let stream = try TCPStream.connect(to: address)
                        let core = AsyncStreamCore<Backend>(socket: stream)
                        core.pendingConnect = (continuation, address)
                        try core.start(on: reactor, interest: [.readable, .writable])
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
        return AsyncConnection(handle: handle, core: core)
    }

    /// Reads what is available, up to `maxBytes`, waiting for data if none is; `[]` at EOF.
    public func read(maxBytes: Int = 64 << 10) async throws -> [UInt8] {
        let core = self.core
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                hop(continuation) { reactor in core.read(maxBytes: maxBytes, continuation) }
            }
        } onCancel: {
            try? handle.execute { _ in core.cancelRead() }
        }
    }

    /// Writes all of `bytes`, waiting while the kernel's buffer is full.
    public func write(_ bytes: [UInt8]) async throws {
        let core = self.core
        try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<Void, any Error>) in
            hop(continuation) { _ in core.write(bytes, continuation) }
        }
    }

    /// Shuts down the sending side; the peer reads EOF, reading continues.
    public func shutdownOutput() async throws {
        let core = self.core
        try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<Void, any Error>) in
            hop(continuation) { _ in
                do {
                    try core.socket.shutdown(.write)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Closes the connection; outstanding reads and writes fail with EBADF.
    public func close() async {
        let core = self.core
        await handle.closing { reactor in core.close(on: reactor) }
    }

    private func hop<T>(
        _ continuation: CheckedContinuation<T, any Error>,
        _ body: @escaping @Sendable (Reactor<Backend>) -> Void
    ) {
        do {
            try handle.execute(body)
        } catch {
            continuation.resume(throwing: error)
        }
    }
}

/// An async listener: `accept()` waits for the next connection without blocking a thread.
public final class AsyncListener<Backend: EventSelector>: Sendable {
    private let handle: Reactor<Backend>.Handle
    private let core: AsyncListenerCore<Backend>
    /// The bound address (port 0 resolved).
    public let localAddress: SocketAddress

    private init(
        handle: Reactor<Backend>.Handle, core: AsyncListenerCore<Backend>, address: SocketAddress
    ) {
        self.handle = handle
        self.core = core
        self.localAddress = address
    }

    /// Binds and listens on `address`, served by the reactor behind `handle`.
    public static func bind(
        _ address: SocketAddress, on handle: Reactor<Backend>.Handle
    ) async throws -> AsyncListener {
        let (core, local): (AsyncListenerCore<Backend>, SocketAddress) =
            try await withCheckedThrowingContinuation { continuation in
                do {
                    try handle.execute { reactor in
                        do {
                            let listener = try TCPListener(binding: address)
                            let local = try listener.localAddress
                            let core = AsyncListenerCore<Backend>(listener: listener)
                            try core.start(on: reactor)
                            continuation.resume(returning: (core, local))
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        return AsyncListener(handle: handle, core: core, address: local)
    }

    /// Waits for and returns the next connection.
    public func accept() async throws -> AsyncConnection<Backend> {
        let core = self.core
        let handle = self.handle
        let stream: AsyncStreamCore<Backend> = try await withCheckedThrowingContinuation {
            continuation in
            do {
                try handle.execute { reactor in core.accept(continuation, reactor: reactor) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
        return AsyncConnection(handle: handle, core: stream)
    }

    /// Stops listening; waiting `accept()`s fail with EBADF.
    public func close() async {
        let core = self.core
        await handle.closing { reactor in core.close(on: reactor) }
    }
}

extension Reactor.Handle {
    /// Runs `body` on the reactor's thread and returns once it has run — or at once if the
    /// reactor is gone, since its shutdown closed everything already.
    func closing(_ body: @escaping @Sendable (Reactor<Backend>) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            do {
                try execute { reactor in
                    body(reactor)
                    continuation.resume()
                }
            } catch {
                continuation.resume()
            }
        }
    }
}
