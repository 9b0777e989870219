import Net
import Selector
import Synchronization
import SysCalls

/// async/await reads and writes over a TCP or Unix stream on a reactor: no thread per
/// connection.
///
/// The socket lives on the reactor's thread, and so does the I/O: code running there (a task
/// started with `Task(executorPreference: loop.handle)`, or an actor on
/// `handle.serialExecutor`) reads and writes inline, suspending only when the socket would
/// block, until the next readiness event; code on any other executor hops to the reactor's
/// thread for the call and back. One read and one write may be in progress at a time (a
/// second concurrent one throws EALREADY).
///
/// Cancelling a task waiting in a call ends the call with `CancellationError` (a call that
/// finds its I/O ready completes even in a cancelled task):
/// - `read`: nothing was consumed; the connection stays open and usable.
/// - `write`: the connection stays open, but an unknown prefix of the bytes may have been
///   sent; close it unless the protocol can resynchronise.
/// - `connect`: the socket is closed and nothing stays registered.
///
/// ```swift
/// let loop = try ReactorThread<DefaultSelector>()
/// let connection = try await AsyncConnection.connect(to: address, on: loop.handle)
/// try await connection.write(Array("ping\n".utf8))
/// let reply = try await connection.read()      // [] at end of file
/// await connection.close()
/// ```
public final class AsyncConnection<Backend: EventSelector>: Sendable {
    private let handle: Reactor<Backend>.Handle
    // Built on the reactor's thread for an accepted connection: its fields (`io` included)
    // are read only there (a task on the loop, or after the hop), never here.
    private let core: AsyncStreamCore<Backend>
    // The core's I/O state, held here too: a call on the loop reaches it from this
    // connection's own field, which the call borrows (through `core` it was retained and
    // released around every call). Touched only on the reactor's thread, like `core`; handed
    // in by whoever made the core (on the thread that did), not read from it here.
    private let io: AsyncStreamIO
    /// Where the loop records its thread (the handle's: shared before this connection was).
    private let signals: LoopSignals

    init(handle: Reactor<Backend>.Handle, core: AsyncStreamCore<Backend>, io: AsyncStreamIO) {
        self.handle = handle
        self.core = core
        self.io = io
        signals = handle.signals
    }

    /// Whether the calling thread is the reactor's (a task on its executor, an actor on its
    /// serial executor).
    @inline(__always)
    private var isOnLoop: Bool {
        signals.loopThread.load(ordering: .relaxed) == OSThread.currentID
    }

    /// Serves an existing connected stream (`TCPStream`, `UnixStream`, e.g. one end of
    /// `UnixStream.pair()`) on the reactor behind `handle`. The reactor's thread owns the socket
    /// from now on (do not use it elsewhere) and closes it on `close()`.
    public convenience init(
        wrapping socket: some StreamSocket, on handle: Reactor<Backend>.Handle
    ) async throws {
        // Built here, before any other thread can see it; the reactor's thread has it from now on.
        let core = AsyncStreamCore<Backend>(socket: socket, handle: handle)
        let io = core.io  // read where the core was made, before another thread sees it
        try await handle.waiting { reactor, continuation, _ in
            do {
                try core.start(on: reactor, interest: [.readable, .writable])
                continuation.resume()
            } catch {
                try? core.socket.close()
                continuation.resume(throwing: error)
            }
        } cancel: { _, _ in
        }
        self.init(handle: handle, core: core, io: io)
    }

    /// Connects to `address`, a TCP (`127.0.0.1:80`, `[::1]:80`) or Unix (path, abstract)
    /// address; the socket is served by the reactor behind `handle`.
    ///
    /// Throws the `NetError` the connect failed with (ECONNREFUSED, …), ETIMEDOUT (as a
    /// `NetError` naming `address`) if `timeout` passes first, or `CancellationError` if the
    /// task is cancelled; in each case the socket is closed and nothing stays registered.
    public static func connect(
        to address: SocketAddress, on handle: Reactor<Backend>.Handle, timeout: Duration? = nil
    ) async throws -> AsyncConnection {
        let socket: any StreamSocket
        switch address {
        case .unix, .unixAbstract, .unixUnnamed: socket = try UnixStream.connect(to: address)
        case .v4, .v6: socket = try TCPStream.connect(to: address)
        }
        let core = AsyncStreamCore<Backend>(socket: socket, handle: handle)
        let io = core.io  // read where the core was made, before another thread sees it
        _ = try await handle.waiting { reactor, continuation, call in
            core.connect(to: address, timeout: timeout, call: call, reactor: reactor, continuation)
        } cancel: { reactor, call in
            core.cancelConnect(call, reactor: reactor)
        }
        return AsyncConnection(handle: handle, core: core, io: io)
    }

    deinit {
        // Dropped without `close()`: the reactor closes it (at once if the reactor is gone).
        let core = self.core
        try? handle.execute { reactor in core.close(on: reactor) }
    }

    /// Reads what is available into `buffer`, waiting for data if none is; returns the number
    /// of bytes read, 0 at end of file. Allocates nothing. `buffer` must stay valid and
    /// untouched until the call returns; an empty buffer throws `ArgumentError`.
    public nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer)
        async throws -> Int
    {
        guard buffer.count > 0 else {
            throw ArgumentError("AsyncConnection read buffer", 0, "read into at least 1 byte")
        }
        if isOnLoop { return try await io.read(into: buffer) }
        return try await readHopping(into: buffer)
    }

    /// Reads what is available into the start of `bytes` (at most `bytes.count`), waiting for
    /// data if none is; returns the number of bytes read, 0 at end of file. `bytes` keeps its
    /// count and storage (the call allocates nothing), also when it throws. An empty `bytes`
    /// throws `ArgumentError`.
    public nonisolated(nonsending) func read(into bytes: inout [UInt8]) async throws -> Int {
        guard !bytes.isEmpty else {
            throw ArgumentError("AsyncConnection read buffer", 0, "read into at least 1 byte")
        }
        if isOnLoop { return try await io.read(into: &bytes) }
        return try await readHopping(into: &bytes)
    }

    /// Reads what is available, up to `maxBytes` (at least 1; at most 64 KiB per call), waiting
    /// for data if none is; `[]` at EOF. The array is sized to what was read, and the wait
    /// holds no buffer (the read goes through the reactor's shared buffer), so a connection
    /// waiting here costs no read buffer: one allocation per call, the array returned.
    public nonisolated(nonsending) func read(maxBytes: Int = 64 << 10) async throws -> [UInt8] {
        let maxBytes = max(1, maxBytes)
        if isOnLoop { return try await io.read(maxBytes: maxBytes) }
        return try await readHopping(maxBytes: maxBytes)
    }

    /// Reads what is available, up to `maxBytes` (at least 1; at most 64 KiB per call), waiting
    /// for data if none is, into a buffer the reactor lends; `LentBytes` holds the buffer until
    /// it ends, then gives it back (empty at end of file). The wait holds no buffer, and on the
    /// reactor's executor given-back buffers serve the next reads, so in steady state the call
    /// allocates nothing. Called from another executor, the read hops to the reactor and the
    /// call allocates the buffer.
    ///
    /// An echo that allocates nothing per message and holds no buffer while idle:
    ///
    ///     while let bytes = try await connection.readLent(), !bytes.isEmpty {
    ///         try await connection.write(bytes)
    ///     }
    public nonisolated(nonsending) func readLent(maxBytes: Int = 64 << 10) async throws
        -> LentBytes
    {
        let maxBytes = min(max(1, maxBytes), LoopContext.readSize)
        if isOnLoop {
            let lent = try await io.readLent(maxBytes: maxBytes)
            return LentBytes(lent, owner: io)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 16)
        do {
            let count = try await readHopping(into: buffer)
            return LentBytes(UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]), owner: nil)
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    /// How many given-back lent buffers the reactor keeps for the next `readLent` (for tests;
    /// on the reactor's thread only).
    var spareLentBuffers: Int { core.io.spareLentBuffers }

    /// Writes all of `bytes` (see `write(_:)` for a buffer), waiting while the kernel's buffer
    /// is full.
    @inlinable
    public nonisolated(nonsending) func write(_ bytes: borrowing LentBytes) async throws {
        try await write(bytes.bytes)
    }

    /// Writes all of `bytes`, waiting while the kernel's buffer is full.
    public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        if isOnLoop { return try await io.write(bytes[...]) }
        try await writeHopping(bytes[...])
    }

    /// Writes all of `bytes` (a slice of an array: no copy), waiting while the kernel's buffer
    /// is full.
    public nonisolated(nonsending) func write(_ bytes: ArraySlice<UInt8>) async throws {
        if isOnLoop { return try await io.write(bytes) }
        try await writeHopping(bytes)
    }

    /// Writes all of `bytes`, waiting while the kernel's buffer is full. `bytes` must stay
    /// valid and untouched until the call returns.
    ///
    /// Inlined into the caller: a write that the kernel takes whole at once (the common case
    /// on the reactor's executor) is a plain call, with no async frame of its own.
    @inlinable
    public nonisolated(nonsending) func write(_ bytes: UnsafeRawBufferPointer) async throws {
        let offset = try _writeAtOnce(bytes)
        if offset < 0 { return }
        try await _writeRest(bytes, from: offset)
    }

    /// `write`'s first attempt, made without suspending: -1 if all of `bytes` went out, else
    /// where the rest starts (0 off the reactor's thread, where nothing was tried).
    @usableFromInline
    func _writeAtOnce(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard isOnLoop else { return 0 }
        return try io.writeAtOnce(bytes)
    }

    /// The rest of `write` from `offset`: waits on the loop, or hops there for the whole write
    /// (off the reactor's thread, where `_writeAtOnce` tried nothing).
    @usableFromInline
    nonisolated(nonsending) func _writeRest(_ bytes: UnsafeRawBufferPointer, from offset: Int)
        async throws
    {
        if isOnLoop { return try await io.writeRest(bytes, from: offset) }
        try await writeHopping(bytes)
    }

    /// Shuts down the sending side; the peer reads EOF, reading continues.
    public nonisolated(nonsending) func shutdownOutput() async throws {
        if isOnLoop { return try io.shutdownOutput() }
        try await withTaskExecutorPreference(handle) { try await shutdownOutputOnLoop() }
    }

    // The calls above, made from another executor: each runs on the reactor's executor (the
    // task hops there and back). Off the reactor's thread here, its reactor is gone (a job
    // then runs where it is enqueued): EBADF, without touching the core. The hop is a function
    // of its own, so the calls above keep a small async frame on the reactor's thread.

    @inline(never)
    private nonisolated(nonsending) func readHopping(into buffer: UnsafeMutableRawBufferPointer)
        async throws -> Int
    {
        noteHop()
        return try await withTaskExecutorPreference(handle) { try await readOnLoop(into: buffer) }
    }

    @inline(never)
    private nonisolated(nonsending) func readHopping(into bytes: inout [UInt8]) async throws
        -> Int
    {
        noteHop()
        return try await withTaskExecutorPreference(handle) { try await readOnLoop(into: &bytes) }
    }

    @inline(never)
    private nonisolated(nonsending) func readHopping(maxBytes: Int) async throws -> [UInt8] {
        noteHop()
        return try await withTaskExecutorPreference(handle) {
            try await readOnLoop(maxBytes: maxBytes)
        }
    }

    @inline(never)
    private nonisolated(nonsending) func writeHopping(_ bytes: UnsafeRawBufferPointer)
        async throws
    {
        noteHop()
        try await withTaskExecutorPreference(handle) { try await writeOnLoop(bytes) }
    }

    @inline(never)
    private nonisolated(nonsending) func writeHopping(_ bytes: ArraySlice<UInt8>) async throws {
        noteHop()
        try await withTaskExecutorPreference(handle) { try await writeOnLoop(bytes) }
    }

    @inline(__always)
    private func noteHop() {
        #if DEBUG
        core.hops.add(1, ordering: .relaxed)
        #endif
    }

    #if DEBUG
    /// How many calls ran off the reactor's thread and hopped to it (for tests).
    var hoppedCalls: Int { core.hops.load(ordering: .relaxed) }
    #endif

    @concurrent private func readOnLoop(into buffer: UnsafeMutableRawBufferPointer)
        async throws -> Int
    {
        guard isOnLoop else { throw Self.reactorGone }
        return try await core.io.read(into: buffer)
    }

    @concurrent private func readOnLoop(into bytes: inout [UInt8]) async throws -> Int {
        guard isOnLoop else { throw Self.reactorGone }
        return try await core.io.read(into: &bytes)
    }

    @concurrent private func readOnLoop(maxBytes: Int) async throws -> [UInt8] {
        guard isOnLoop else { throw Self.reactorGone }
        return try await core.io.read(maxBytes: maxBytes)
    }

    @concurrent private func writeOnLoop(_ bytes: UnsafeRawBufferPointer) async throws {
        guard isOnLoop else { throw Self.reactorGone }
        try await core.io.write(bytes)
    }

    @concurrent private func writeOnLoop(_ bytes: ArraySlice<UInt8>) async throws {
        guard isOnLoop else { throw Self.reactorGone }
        try await core.io.write(bytes)
    }

    @concurrent private func shutdownOutputOnLoop() async throws {
        guard isOnLoop else { throw Self.reactorGone }
        try core.io.shutdownOutput()
    }

    private static var reactorGone: Errno {
        Errno(Errno.EBADF.code, call: "async I/O (reactor gone)")
    }

    /// Closes the connection; waiting reads and writes fail with EBADF.
    public func close() async {
        let core = self.core
        await handle.closing { reactor in core.close(on: reactor) }
    }
}

/// An async listener on a TCP or Unix address: `accept()` or `connections` wait for the next
/// connection without blocking a thread.
///
/// Cancelling a task waiting in `accept()` ends it with `CancellationError`; the listener
/// stays open and no connection is lost (the next `accept()` gets it).
///
/// ```swift
/// let listener = try await AsyncListener.bind(address, on: loop.handle)
/// for try await connection in listener.connections { … }   // ends when closed
/// ```
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

    /// Binds and listens on `address` (TCP or Unix), served by the reactor behind `handle`.
    public static func bind(
        _ address: SocketAddress, on handle: Reactor<Backend>.Handle
    ) async throws -> AsyncListener {
        switch address {
        case .unix, .unixAbstract, .unixUnnamed:
            return try await AsyncListener(wrapping: try UnixListener(binding: address), on: handle)
        case .v4, .v6:
            return try await AsyncListener(wrapping: try TCPListener(binding: address), on: handle)
        }
    }

    /// Serves an existing `TCPListener` or `UnixListener` on the reactor behind `handle`. The
    /// reactor's thread owns the listener from now on (do not use it elsewhere) and closes it
    /// on `close()`.
    public convenience init<Listener: ListenerSocket>(
        wrapping listener: Listener, on handle: Reactor<Backend>.Handle
    ) async throws {
        let local = try listener.localAddress
        // Built here, before any other thread can see it; the reactor's thread has it from now on.
        let core = AsyncListenerCore<Backend>(listener: listener)
        try await handle.waiting { reactor, continuation, _ in
            do {
                try core.start(on: reactor)
                continuation.resume()
            } catch {
                core.close(on: reactor)
                continuation.resume(throwing: error)
            }
        } cancel: { _, _ in
        }
        self.init(handle: handle, core: core, address: local)
    }

    deinit {
        let core = self.core
        try? handle.execute { reactor in core.close(on: reactor) }
    }

    /// Waits for and returns the next connection; throws EBADF once the listener is closed.
    public func accept() async throws -> AsyncConnection<Backend> {
        guard let connection = try await next() else {
            throw Errno(Errno.EBADF.code, call: "accept (listener closed)")
        }
        return connection
    }

    /// The next connection, or nil once the listener is closed: by `close()`, or by the
    /// shutdown of its reactor (which closes every handler), also when that came first.
    nonisolated(nonsending) func next() async throws -> AsyncConnection<Backend>? {
        let core = self.core
        let stream: AcceptedStream<Backend>?
        do {
            stream = try await handle.waiting { reactor, continuation, call in
                core.accept(call: call, continuation, reactor: reactor)
            } cancel: { _, call in
                core.cancelAccept(call)
            }
        } catch let error as Errno where error == .EBADF && handle.isClosed {
            return nil
        }
        return stream.map { AsyncConnection(handle: handle, core: $0.core, io: $0.io) }
    }

    /// Stops listening; waiting `accept()`s fail with EBADF and `connections` ends.
    public func close() async {
        let core = self.core
        await handle.closing { reactor in core.close(on: reactor) }
    }
}

extension Reactor.Handle {
    /// Runs `start` on the reactor's thread with a continuation that it (or a later event)
    /// resumes; if the calling task is cancelled meanwhile, runs `cancel` there with the same
    /// call, whose `isCancelled` is already set (so a `start` that runs after the cancellation
    /// sees it). Throws EBADF at once if the reactor is gone. Called on the reactor's thread
    /// (a task on its executor), `start` runs at once, without the queue.
    func waiting<T: Sendable>(
        _ start:
            @escaping @Sendable (
                Reactor<Backend>, CheckedContinuation<T, any Error>, CallCancellation
            ) -> Void,
        cancel: @escaping @Sendable (Reactor<Backend>, CallCancellation) -> Void
    ) async throws -> T {
        let call = CallCancellation()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if let reactor = reactorOnThisThread {
                    return start(reactor, continuation, call)
                }
                do {
                    try execute { reactor in start(reactor, continuation, call) }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            call.cancel()
            try? execute { reactor in cancel(reactor, call) }
        }
    }

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

/// Bytes an `AsyncConnection.readLent(maxBytes:)` read into a buffer the reactor lent: valid
/// while this value lives, which gives the buffer back when it ends (to the reactor for the
/// next read on its thread, freed on any other). Not copyable, so the bytes cannot outlive it.
public struct LentBytes: ~Copyable, @unchecked Sendable {
    // Sendable: the buffer is this value's alone while it lives; `owner` takes it back on
    // any thread (`AsyncStreamIO.giveBack` checks which).
    /// The bytes read; valid until this value ends.
    public let bytes: UnsafeRawBufferPointer
    /// Takes the buffer back; nil when the buffer was allocated for this value alone.
    private let owner: AsyncStreamIO?

    init(_ lent: UnsafeMutableRawBufferPointer, owner: AsyncStreamIO?) {
        bytes = UnsafeRawBufferPointer(lent)
        self.owner = owner
    }

    /// How many bytes were read.
    public var count: Int { bytes.count }

    /// True at end of file.
    public var isEmpty: Bool { bytes.isEmpty }

    deinit {
        guard let base = bytes.baseAddress else { return }
        let buffer = UnsafeMutableRawPointer(mutating: base)
        // Optional chaining borrows `owner`: no retain and release around the call.
        if owner?.giveBack(buffer) == nil { buffer.deallocate() }
    }
}
