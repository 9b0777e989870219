import Selector
import SysCalls

/// The I/O half of an `AsyncConnection`, run by tasks on the reactor's thread: reads and writes
/// are made inline by the calling task, which suspends only when the socket would block, and
/// the next readiness event resumes it.
///
/// Not generic, so a task's read or write runs as specialized code whatever the backend. Per
/// call that waits it costs one continuation in the task's own frame and one cancellation
/// record (the task's allocator, not the heap); per call that does not wait, a system call.
///
/// Readiness is edge-triggered: `canRead` / `canWrite` say whether the socket may have data
/// or room since the last time I/O on it would block. A task waits only once they are false,
/// and an event sets them again.
// Invariant: every stored property but the `let`s is read and written only on the reactor's
// thread (`isOnLoop`, checked before each use; tasks reach it through the reactor's executor,
// events and cancellations through its loop). That is what makes the unchecked Sendable sound.
final class AsyncStreamIO: @unchecked Sendable {
    /// The way a waiting call is resumed.
    enum Wake: UInt8 {
        /// Readiness arrived (or may have): try the I/O again.
        case ready
        /// The task was cancelled while it waited.
        case cancelled
        /// The connection was closed (or its reactor shut down) while it waited.
        case closed
    }

    /// Which waiter slot.
    enum Direction: UInt8 {
        case read, write
    }

    /// One direction's state: readiness, the call in progress, the waiting task.
    struct Slot {
        /// The socket may be ready in this direction (no would-block since the last event).
        var ready = true
        /// A call in this direction is in progress (a second one throws EALREADY).
        var busy = false
        /// Names the current wait, so that a late cancellation never reaches a later one.
        var generation: UInt32 = 0
        /// The waiting task.
        var waiter: UnsafeContinuation<Wake, Never>?
    }

    let fd: FileDescriptor
    /// Where the loop records its thread.
    private let signals: LoopSignals
    /// Told when I/O would block (poll's edge emulation); nil for native edge backends. Set
    /// when the socket is registered.
    var drainHook: (any SelectorDrainHook)?
    /// The loop's shared read buffer, for `read(maxBytes:)`; set when the socket is
    /// registered.
    var scratch: ReadScratch?
    /// The backend reports the next arrival after a short read (`shortReadMeansDrained`).
    private let shortReadDrains: Bool
    /// Queues a closure on the reactor's loop (false once the reactor is gone): where a
    /// cancellation, raised on any thread, is handled.
    private let queueOnLoop: @Sendable (@escaping @Sendable () -> Void) -> Bool

    private var reading = Slot()
    private var writing = Slot()
    /// The peer shut down or the socket failed: reads never wait for an event again (the end
    /// of file, or the error, is there to read).
    private var readClosed = false
    private(set) var closed = false

    init(
        fd: FileDescriptor, signals: LoopSignals, shortReadDrains: Bool,
        queueOnLoop: @escaping @Sendable (@escaping @Sendable () -> Void) -> Bool
    ) {
        self.fd = fd
        self.signals = signals
        self.shortReadDrains = shortReadDrains
        self.queueOnLoop = queueOnLoop
    }

    deinit {
        assert(reading.waiter == nil && writing.waiter == nil, "a waiting call was never resumed")
    }

    /// Whether the calling thread is the reactor's (a task on its executor, an actor on its
    /// serial executor, or the loop itself).
    @inline(__always)
    var isOnLoop: Bool { signals.loopThread.load(ordering: .relaxed) == OSThread.currentID }

    // MARK: Calls, on the reactor's thread

    /// Reads what is available into `buffer` (not empty), waiting for data if none is; the
    /// count, 0 at end of file. EBADF once closed or off the reactor's thread (its reactor is
    /// gone), EALREADY while another read is in progress, `CancellationError` if the task is
    /// cancelled while it waits (nothing is consumed then).
    nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer) async throws
        -> Int
    {
        try begin(.read)
        defer { reading.busy = false }
        while true {
            if reading.ready, let count = try receive(into: buffer) { return count }
            try await wait(.read)
        }
    }

    /// `read(into:)` into the start of `bytes` (not empty), filled in place.
    nonisolated(nonsending) func read(into bytes: inout [UInt8]) async throws -> Int {
        try begin(.read)
        defer { reading.busy = false }
        while true {
            if reading.ready {
                let received = try bytes.withMutableBytes {
                    (raw) throws(Errno) -> Int? in try receive(into: raw)
                }
                if let count = received { return count }
            }
            try await wait(.read)
        }
    }

    /// Reads what is available, up to `maxBytes` (at least 1), into a new array of the size
    /// read, waiting for data if none is; `[]` at end of file. It waits holding no buffer and
    /// reads into the loop's shared one, so a connection waiting here costs no read buffer of
    /// its own; the one allocation is the returned array.
    nonisolated(nonsending) func read(maxBytes: Int) async throws -> [UInt8] {
        try begin(.read)
        defer { reading.busy = false }
        // Set when the socket is registered, which every connection handed out has been.
        guard let scratch else { throw Errno(Errno.EBADF.code, call: "read (not registered)") }
        let room = UnsafeMutableRawBufferPointer(
            start: scratch.base, count: min(maxBytes, scratch.byteCount))
        while true {
            // Filled and copied out before anything else runs on this thread.
            if reading.ready, let count = try receive(into: room) {
                return Array(UnsafeRawBufferPointer(rebasing: room[..<count]))
            }
            try await wait(.read)
        }
    }

    /// Writes all of `bytes`, waiting while the kernel's buffer is full. EBADF once closed,
    /// EALREADY while another write is in progress, `CancellationError` if the task is
    /// cancelled while it waits (an unknown prefix may have been sent then).
    nonisolated(nonsending) func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try begin(.write)
        defer { writing.busy = false }
        var offset = 0
        while true {
            if writing.ready, try send(bytes, from: &offset) { return }
            try await wait(.write)
        }
    }

    /// `write` of an array's bytes.
    nonisolated(nonsending) func write(_ bytes: ArraySlice<UInt8>) async throws {
        try begin(.write)
        defer { writing.busy = false }
        var offset = 0
        while true {
            if writing.ready {
                let sent = bytes.withUnsafeBytes { raw in
                    Result { () throws(Errno) -> Bool in try send(raw, from: &offset) }
                }
                if try sent.get() { return }
            }
            try await wait(.write)
        }
    }

    /// Shuts down the sending side (the peer reads EOF); EBADF once closed.
    func shutdownOutput() throws(Errno) {
        try checkUsable()
        try Sys.shutdownWrite(fd)
    }

    // MARK: Loop side

    /// Readiness arrived: marks the directions ready and resumes their waiters.
    func handle(_ event: Event) {
        if event.isReadClosed || event.isError { readClosed = true }
        if event.isReadable || event.isReadClosed || event.isError {
            reading.ready = true
            reading.waiter.take()?.resume(returning: .ready)
        }
        if event.isWritable || event.isWriteClosed || event.isError {
            writing.ready = true
            writing.waiter.take()?.resume(returning: .ready)
        }
    }

    /// The connection closed (the descriptor is closed by the caller): waiting calls end with
    /// EBADF, and later calls throw it without touching the descriptor (its number may be
    /// reused).
    func finish() {
        closed = true
        reading.waiter.take()?.resume(returning: .closed)
        writing.waiter.take()?.resume(returning: .closed)
    }

    /// Ends the wait of `generation` in `direction` with `CancellationError`, if it is still
    /// the current one.
    private func cancelWait(_ direction: Direction, generation: UInt32) {
        switch direction {
        case .read:
            guard reading.generation == generation else { return }
            reading.waiter.take()?.resume(returning: .cancelled)
        case .write:
            guard writing.generation == generation else { return }
            writing.waiter.take()?.resume(returning: .cancelled)
        }
    }

    // MARK: Internals

    /// Starts a call in `direction`: checks the thread, that the connection is open and that
    /// no other call in that direction is in progress.
    @inline(__always)
    private func begin(_ direction: Direction) throws(Errno) {
        try checkUsable()
        switch direction {
        case .read:
            if reading.busy { throw Errno(Errno.EALREADY.code, call: "read (one at a time)") }
            reading.busy = true
        case .write:
            if writing.busy { throw Errno(Errno.EALREADY.code, call: "write (one at a time)") }
            writing.busy = true
        }
    }

    /// EBADF when closed, or when called off the reactor's thread: a task on the reactor's
    /// executor only runs elsewhere once the reactor is gone (its jobs then run where they
    /// are enqueued).
    @inline(__always)
    private func checkUsable() throws(Errno) {
        guard isOnLoop else { throw Errno(Errno.EBADF.code, call: "async I/O (reactor gone)") }
        if closed { throw Errno(Errno.EBADF.code, call: "closed") }
    }

    /// One recv into `buffer`: the count, or nil when it would block (the socket is then
    /// marked not ready until the next event).
    @inline(__always)
    private func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        switch try Sys.recv(fd, into: buffer) {
        case .processed(let count):
            // A short read drained the socket, where the backend then reports the next
            // arrival: the next read waits for that event instead of making a would-block
            // recv. Not at end of file or after an error, which no later event reports.
            if count < buffer.count && count > 0 && shortReadDrains && !readClosed {
                reading.ready = false
                drainHook?.drained(fd, .readable)
            }
            return count
        case .wouldBlock:
            reading.ready = false
            drainHook?.drained(fd, .readable)
            return nil
        }
    }

    /// Sends `bytes[offset...]` until all is sent (true) or the kernel's buffer is full
    /// (false: the socket is marked not ready until the next event).
    @inline(__always)
    private func send(_ bytes: UnsafeRawBufferPointer, from offset: inout Int) throws(Errno)
        -> Bool
    {
        while offset < bytes.count {
            switch try Sys.send(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .processed(let count):
                offset += count
            case .wouldBlock:
                writing.ready = false
                drainHook?.drained(fd, .writable)
                return false
            }
        }
        return true
    }

    /// Suspends until `direction` may be ready again, the connection closes (EBADF) or the
    /// task is cancelled (`CancellationError`).
    nonisolated(nonsending) private func wait(_ direction: Direction) async throws {
        if Task.isCancelled { throw CancellationError() }
        let generation: UInt32
        switch direction {
        case .read:
            reading.generation &+= 1
            generation = reading.generation
        case .write:
            writing.generation &+= 1
            generation = writing.generation
        }
        let wake = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
                install(continuation, direction)
            }
        } onCancel: { [self] in
            // Any thread: the wait is ended on the loop. If the reactor is gone, its shutdown
            // has resumed (or will resume) the waiter with `.closed`.
            _ = queueOnLoop { [self] in cancelWait(direction, generation: generation) }
        }
        switch wake {
        case .ready: try checkUsable()
        case .cancelled: throw CancellationError()
        case .closed: throw Errno(Errno.EBADF.code, call: "closed")
        }
    }

    /// Parks `continuation` in `direction`'s slot, or resumes it at once if that direction
    /// turned ready meanwhile or the connection closed.
    private func install(_ continuation: UnsafeContinuation<Wake, Never>, _ direction: Direction) {
        assert(isOnLoop, "an async stream waited off its reactor's thread")
        if closed { return continuation.resume(returning: .closed) }
        switch direction {
        case .read:
            if reading.ready { return continuation.resume(returning: .ready) }
            assert(reading.waiter == nil, "two reads waiting at once")
            reading.waiter = continuation
        case .write:
            if writing.ready { return continuation.resume(returning: .ready) }
            assert(writing.waiter == nil, "two writes waiting at once")
            writing.waiter = continuation
        }
    }
}
