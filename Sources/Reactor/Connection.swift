import Net
import Selector
import SysCalls

/// Connection settings, built once from `ConnectionOptions` and shared by many connections
/// (so each connection carries one reference instead of a copy).
public final class ConnectionSettings: Sendable {
    /// The options these settings were made from.
    public let options: ConnectionOptions
    let idleNanoseconds: UInt64
    let writeNanoseconds: UInt64
    let maxBufferedInput: Int
    /// An idle or a write timeout is set.
    let hasTimeouts: Bool

    /// Freezes `options` for sharing.
    public init(_ options: ConnectionOptions = ConnectionOptions()) {
        self.options = options
        idleNanoseconds = options.idleTimeout.map(Sys.nanoseconds) ?? 0
        writeNanoseconds = options.writeTimeout.map(Sys.nanoseconds) ?? 0
        maxBufferedInput = options.maxBufferedInput
        hasTimeouts = idleNanoseconds > 0 || writeNanoseconds > 0
    }
}

/// A stream socket served by a reactor: reads into the reactor's shared buffer and hands
/// the bytes to a delegate; queues what the kernel will not take yet and sends it when the
/// socket turns writable (writable interest only while output is pending); pauses reading
/// above the high watermark; closes on idle or stalled writes; half-closes cleanly.
///
/// Steady state costs no allocation: input is only copied when the delegate leaves part of
/// it unconsumed, and output only when the kernel does not take all of it at once.
///
/// ```swift
/// let connection = Connection(socket: stream, reactor: reactor, delegate: echo)
/// try connection.start()
/// ```
public final class Connection<Backend: EventSelector>: EventHandler {
    /// The socket; owned: closed when the connection ends.
    public let socket: any StreamSocket
    /// The protocol logic.
    public let delegate: any ConnectionDelegate<Backend>
    /// The registration token, once started.
    public var token: Token { registration }
    /// `token`'s storage: private, so that the optimizer sees every access and drops the
    /// dynamic exclusivity check a read of a public stored property costs (a connection on
    /// completions reads it per message).
    private var registration = Token(rawValue: .max)
    /// Free for the delegate's use (e.g. a client id).
    public var userInfo: Int = 0

    // Field order keeps the small ones together: an idle connection should cost little memory.
    // `write` is inlined into delegates in other modules, so what it touches is
    // @usableFromInline, and unchecked exclusivity spares those call sites a dynamic check
    // (Benchmarks/UNSAFE.md: 84 instructions per echo each for `state` and `outputPending`,
    // 168 for `lastActivity`). Sound because only the reactor's thread touches these fields
    // and no access overlaps another; debug builds check the thread (assertOnLoopThread).
    @usableFromInline let fd: FileDescriptor
    @usableFromInline @exclusivity(unchecked) var state = ConnectionState.idle {
        didSet {
            if state == .open {
                readStops &= ~ReadStop.notOpen
            } else {
                readStops |= ReadStop.notOpen
            }
        }
    }
    /// Whether `extras.output` holds bytes (so that testing it loads no side object).
    @usableFromInline @exclusivity(unchecked) var outputPending = false
    private var interest: Interest = .readable
    /// Why reading is stopped (`ReadStop` bits): zero while reading may go on, so the read
    /// path tests one byte.
    private var readStops = ReadStop.notOpen
    /// What a short read leads to (`ShortRead`): decided once, so the read path tests one byte.
    private let afterShortRead: ShortRead
    /// The backend runs this connection's I/O (`EventSelector.completesIO`): a multishot
    /// receive delivers input, every write is queued and sent through the backend, one send
    /// in flight at a time. `outputPending` then stays true, so `write` takes the queueing
    /// path.
    private let completes: Bool
    /// Completions: the receive is started (not stopped).
    private var receiving = false
    /// Unconsumed input waits in `extras.input` (kept in a byte of this object, so that the
    /// read path loads nothing else).
    private var hasBufferedInput = false
    /// The reactor's selector, for a connection on completions (no unowned-to-strong
    /// conversion of `reactor` per message).
    private let selector: Backend
    // Read on every event; a non-generic object, so no metadata lookup per access. Strong: the
    // loop's table holds a registered connection, and every registration ends at shutdown,
    // which breaks that cycle (an unowned reference measured no faster).
    @usableFromInline let context: LoopContext
    /// The reactor, for what is not per message (registering, timers, interest changes): the
    /// loop's reference to it, not a field here, which would take each connection past a
    /// malloc size class (120 -> 136 bytes). Unowned (checked) there: the reactor outlives its
    /// registrations, and shutting down ends them.
    private var reactor: Reactor<Backend> {
        guard let reactor = context.reactor as? Reactor<Backend> else {
            preconditionFailure("a connection outlived its reactor")
        }
        return reactor
    }
    private let settings: ConnectionSettings
    @usableFromInline @exclusivity(unchecked) var lastActivity: UInt64 = 0
    // What only some connections need (queued output, unconsumed input, timers, a close
    // reason), allocated on first use so that an idle connection stays small: the object is
    // 120 bytes (a 128-byte malloc chunk); one more 8-byte field makes it 144.
    private var extras: ConnectionExtras?

    private enum ReadStop {
        /// `state` is not `.open`.
        static var notOpen: UInt8 { 1 }
        /// Output is above the high watermark.
        static var paused: UInt8 { 2 }
        /// The peer sent EOF.
        static var peerClosed: UInt8 { 4 }
        /// Completions: received bytes wait in `extras.held` (later ones queue behind them).
        static var held: UInt8 { 8 }
    }

    private var readingPaused: Bool {
        get { readStops & ReadStop.paused != 0 }
        set { readStops = newValue ? readStops | ReadStop.paused : readStops & ~ReadStop.paused }
    }

    private var peerClosed: Bool {
        get { readStops & ReadStop.peerClosed != 0 }
        set {
            readStops =
                newValue ? readStops | ReadStop.peerClosed : readStops & ~ReadStop.peerClosed
        }
    }

    private var extra: ConnectionExtras {
        if let extras { return extras }
        let made = ConnectionExtras()
        extras = made
        return made
    }

    @inline(__always)
    private var hasOutput: Bool {
        completes ? extras.map { !$0.output.isEmpty } ?? false : outputPending
    }

    /// Why the connection ends, once known. The peer's end of file, the usual reason, is not
    /// stored: `peerClosed` says it (both are set together and neither is ever unset), so a
    /// connection that ends that way allocates no side object just to remember it.
    private var closeReason: CloseReason? {
        get { extras?.closeReason ?? (peerClosed ? .endOfFile : nil) }
        set {
            if newValue == .endOfFile && peerClosed {
                extras?.closeReason = newValue
            } else {
                extra.closeReason = newValue
            }
        }
    }

    private var idleTimer: TimerID? {
        get { extras?.idleTimer }
        set { extra.idleTimer = newValue }
    }

    private var writeTimer: TimerID? {
        get { extras?.writeTimer }
        set { extra.writeTimer = newValue }
    }

    /// Wraps `socket` (already connected, non-blocking) for `reactor`; call `start()` next.
    public init(
        socket: any StreamSocket, reactor: Reactor<Backend>,
        delegate: any ConnectionDelegate<Backend>,
        settings: ConnectionSettings = ConnectionSettings()
    ) {
        self.socket = socket
        self.fd = socket.fileDescriptor
        self.context = reactor.context
        self.selector = reactor.selector
        self.delegate = delegate
        self.settings = settings
        completes = reactor.context.completesIO
        if !Backend.shortReadMeansDrained {
            afterShortRead = .readAgain
        } else {
            afterShortRead =
                reactor.context.drainHook == nil ? ShortRead.stop : ShortRead.noteAndStop
        }
    }

    /// Registers with the reactor (readable) and arms the idle timer.
    ///
    /// Once only: a second call (also after the connection closed) throws EEXIST, as
    /// `Acceptor.start()` does, and changes nothing.
    public func start() throws(Errno) {
        guard state == .idle else {
            throw Errno(Errno.EEXIST.code, call: "Connection.start (already started)")
        }
        if completes {
            registration = reactor.registerForCompletions(fd, handler: self, kind: .connection)
            do {
                try reactor.selector.receive(fd, token: token)
            } catch {
                reactor.deregister(token)
                throw error
            }
            receiving = true
            outputPending = true
        } else {
            registration = try reactor.register(self, interest: .readable)
        }
        state = .open
        lastActivity = context.currentTime
        if settings.idleNanoseconds > 0 {
            idleTimer = reactor.scheduleTimer(
                at: lastActivity &+ settings.idleNanoseconds, for: token, tag: Self.idleTag)
        }
    }

    /// Bytes queued for the kernel.
    public var pendingOutputBytes: Int { extras?.output.bytes ?? 0 }

    /// Whether this connection holds its side state (`ConnectionExtras`) now: tests check that
    /// a connection on completions gives it back to the loop once its output drained.
    var holdsSideState: Bool { extras != nil }

    /// True while reading is paused by the high watermark.
    public var isReadingPaused: Bool { readingPaused }

    /// True until the connection has closed.
    public var isOpen: Bool { state == .open || state == .closing }

    // MARK: Writing

    /// Sends `bytes`, queueing what the kernel does not take now. Ignored once closing.
    ///
    /// Inlined into the caller: the common case (open, nothing queued, the kernel takes it
    /// all) is one system call and a store; everything else is out of line.
    @inlinable @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .open, !outputPending, !bytes.isEmpty else { return writeQueued(bytes) }
        let sent = Sys.sendAttempt(fd, bytes)
        guard sent == bytes.count else { return writeRest(bytes, sent: sent) }
        lastActivity = context.now
    }

    /// `write` when output is queued, the connection is not open, or `bytes` is empty.
    @usableFromInline @inline(never)
    func writeQueued(_ bytes: UnsafeRawBufferPointer) {
        context.assertOnLoopThread()
        guard state == .open, !bytes.isEmpty else { return }
        if completes { return submitWrite(bytes) }
        if outputPending { return enqueue(bytes) }
        let result: IOResult<Int>
        do {
            result = try Sys.send(fd, bytes)
        } catch {
            return fail(error)
        }
        switch result {
        case .processed(let n):
            lastActivity = context.now
            if n < bytes.count { enqueue(UnsafeRawBufferPointer(rebasing: bytes[n...])) }
        case .wouldBlock:
            context.drained(fd, .writable)
            enqueue(bytes)
        }
    }

    /// `write` after a send that did not take everything: `sent` bytes, or -errno.
    @usableFromInline @inline(never)
    func writeRest(_ bytes: UnsafeRawBufferPointer, sent: Int) {
        let result: IOResult<Int>?
        do {
            result = try Sys.rawIOResult(sent, call: "send")
        } catch {
            return fail(error)
        }
        switch result {
        case .processed(let n):
            lastActivity = context.now
            enqueue(UnsafeRawBufferPointer(rebasing: bytes[n...]))
        case .wouldBlock:
            context.drained(fd, .writable)
            enqueue(bytes)
        case nil:
            writeQueued(bytes)  // interrupted: send again
        }
    }

    /// Sends `bytes` (see `write(_:)` for buffers).
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Sends the UTF-8 of `text`.
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Bytes read but not yet consumed by the delegate.
    public var bufferedInputBytes: Int { extras?.input.count ?? 0 }

    /// Offers the buffered (unconsumed) input to the delegate again now, without waiting for
    /// new bytes: for a delegate that declined input earlier (e.g. while its output was backed
    /// up) and is ready for it, typically from `connectionDidDrain`. No-op when nothing is
    /// buffered or the connection is not open. (During a delivery the buffer is handed out,
    /// so a call from inside `connection(_:didRead:)` does nothing.)
    public func redeliverBufferedInput() {
        guard state == .open, let extras, !extras.input.isEmpty else { return }
        deliver(UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Closes after everything queued has been sent; stops reading now.
    public func close() {
        guard state == .open else { return }
        state = .closing
        if !hasOutput {
            finish(closeReason ?? .closed)
        } else {
            updateInterest()
        }
    }

    /// Closes now, dropping queued output.
    public func abort() { finish(.aborted) }

    /// Shuts down our sending side once queued output is sent (the peer reads EOF); reading
    /// continues. For protocols that half-close.
    public func shutdownOutput() {
        guard state == .open else { return }
        if !hasOutput {
            try? Sys.shutdownWrite(fd)
        } else {
            extra.output.shutdownWhenDrained = true
        }
    }

    // MARK: EventHandler

    /// Reads, flushes or fails according to `event`.
    public func handle(_ event: Event, reactor: Reactor<Backend>) {
        handleEvent(event, in: context)
    }

    /// `handle`'s body; the reactor's dispatch loop inlines it. (`context` is this
    /// connection's; the loop passes the one it holds.)
    @inline(__always)
    func handleEvent(_ event: Event, in context: LoopContext) {
        context.assertOnLoopThread()
        // The common event, readable alone, reads without testing the others.
        if event.isReadableOnly { return handleReadable(in: context) }
        handleAnyEvent(event)
    }

    /// `handleEvent` for an event that reports readability alone; the dispatch loop inlines it.
    @inline(__always)
    func handleReadable(in context: LoopContext) {
        context.assertOnLoopThread()
        readAvailable(sawReadClosed: false, in: context)
    }

    /// `handleEvent` for every event but readable alone.
    @inline(never)
    private func handleAnyEvent(_ event: Event) {
        if event.isWritable || event.isWriteClosed, hasOutput { flush() }
        if event.isReadable || event.isReadClosed || event.isError {
            readAvailable(sawReadClosed: event.isReadClosed || event.isError, in: context)
        }
        if event.isError, state != .closed {
            // Nothing surfaced it through I/O (e.g. reading paused): ask the socket.
            let code = (try? Sys.socketError(fd)) ?? 0
            if code != 0 { finish(.error(Errno(code, call: "SO_ERROR"))) }
        }
    }

    /// Notes that bytes moved, for the idle timeout. `context.now` (no clock read) is fresh
    /// whenever it matters: the loop reads the clock after each wait while any timer is
    /// pending, and this connection's idle timer is pending whenever it has an idle timeout.
    @inline(__always)
    private func noteActivity() {
        assert(
            settings.idleNanoseconds == 0 || context.nowIsFresh || !context.inTurn,
            "idle timeout set but the loop's time is stale")
        lastActivity = context.now
    }

    /// Idle and write timeouts.
    public func timerFired(tag: Int, reactor: Reactor<Backend>) {
        context.assertOnLoopThread()
        guard state == .open || state == .closing else { return }
        let now = context.currentTime
        if tag == Self.idleTag {
            let deadline = lastActivity &+ settings.idleNanoseconds
            if now >= deadline {
                idleTimer = nil
                finish(.idleTimeout)
            } else {
                idleTimer = reactor.scheduleTimer(at: deadline, for: token, tag: Self.idleTag)
            }
        } else if tag == Self.writeTag {
            writeTimer = nil
            guard let extras, !extras.output.isEmpty else { return }
            let deadline = extras.lastWriteProgress &+ settings.writeNanoseconds
            if now >= deadline {
                finish(.writeTimeout)
            } else {
                writeTimer = reactor.scheduleTimer(at: deadline, for: token, tag: Self.writeTag)
            }
        }
    }

    /// Closes the socket and tells the delegate (once).
    public func deregistered(reactor: Reactor<Backend>) {
        // Taken first: the delegate may end other connections, which pass theirs the same way.
        let reason = closeReason ?? context.closingReason.take() ?? .aborted
        if let extras {
            if let timer = extras.idleTimer { reactor.cancel(timer) }
            if let timer = extras.writeTimer { reactor.cancel(timer) }
            extras.idleTimer = nil
            extras.writeTimer = nil
            // A send in flight still reads the front chunk: the backend keeps `extras` alive
            // until it completes, and `extras` frees the chunks then.
            if !extras.output.sending { extras.output.removeAll() }
        }
        if completes { context.trimSpareExtras(toAtMost: context.handlers.count) }
        receiving = false
        outputPending = false
        state = .closed
        try? socket.close()
        extras?.input = []
        hasBufferedInput = false
        delegate.connectionDidClose(self, reason: reason)
    }

    // MARK: Internals

    private static var idleTag: Int { 1 }
    private static var writeTag: Int { 2 }

    private func finish(_ reason: CloseReason) {
        guard state != .closed else { return }
        if state == .idle {
            state = .closed
            try? socket.close()
            delegate.connectionDidClose(self, reason: reason)
            return
        }
        if closeReason != nil {
            reactor.deregister(token)
            return
        }
        // Handed to `deregistered`, which `deregister` calls before it returns, through the
        // loop rather than stored here: a connection ending by an error (a reset) or a timeout
        // allocates no side object just to say why.
        context.closingReason = reason
        reactor.deregister(token)
        context.closingReason = nil
    }

    /// Reads until the socket would block (or reading stops). The first read is straight-line
    /// code; the loop for more is out of line, as with edge-triggered readiness one short read
    /// usually drains the socket.
    @inline(__always)
    private func readAvailable(sawReadClosed: Bool, in context: LoopContext) {
        guard canRead, readOnce(sawReadClosed: sawReadClosed, in: context) else { return }
        readMore(sawReadClosed: sawReadClosed)
    }

    @inline(never)
    private func readMore(sawReadClosed: Bool) {
        while canRead && readOnce(sawReadClosed: sawReadClosed, in: context) {}
    }

    @inline(__always)
    private var canRead: Bool { readStops == 0 }

    /// One recv, delivered; true when the socket may hold more.
    @inline(__always)
    private func readOnce(sawReadClosed: Bool, in context: LoopContext) -> Bool {
        let base = context.readBase
        let result: IOResult<Int>
        do {
            result = try Sys.recv(
                fd, into: UnsafeMutableRawBufferPointer(start: base, count: LoopContext.readSize))
        } catch {
            finish(.error(error))
            return false
        }
        switch result {
        case .wouldBlock:
            context.drained(fd, .readable)
            return false
        case .processed(0):
            peerClosed = true
            closeReason = .endOfFile
            if state == .open { delegate.connectionDidReadEOF(self) }
            return false
        case .processed(let count):
            noteActivity()
            deliver(UnsafeRawBufferPointer(start: base, count: count))
            if count == LoopContext.readSize || sawReadClosed { return true }
            // A short read drained the socket. Where the backend promises to report the next
            // arrival once told (its drain hook, if any), the would-block read is saved;
            // elsewhere it is made.
            if afterShortRead == .stop { return false }
            if afterShortRead == .readAgain { return true }
            context.drained(fd, .readable)
            return false
        }
    }

    @inline(__always)
    private func deliver(_ fresh: UnsafeRawBufferPointer) {
        if !hasBufferedInput {
            let consumed = delegate.connection(self, didRead: fresh)
            // The common case ends here: the delegate took everything, nothing is copied.
            guard consumed < fresh.count, state != .closed else { return }
            keepInput(UnsafeRawBufferPointer(rebasing: fresh[max(0, consumed)...]))
        } else {
            deliverBuffered(fresh)
        }
    }

    /// Keeps what the delegate left of fresh input (in `extras`: few connections need it).
    @inline(never)
    private func keepInput(_ rest: UnsafeRawBufferPointer) {
        let extras = extra
        extras.input.append(contentsOf: rest)
        hasBufferedInput = !extras.input.isEmpty
        if extras.input.count > settings.maxBufferedInput { finish(.inputLimitExceeded) }
    }

    /// Offers the buffered input followed by `fresh` to the delegate, keeping what it leaves.
    @inline(never)
    private func deliverBuffered(_ fresh: UnsafeRawBufferPointer) {
        let extras = extra
        extras.input.append(contentsOf: fresh)
        // Hand the delegate the buffered bytes without exposing `input` to mutation (and with
        // nothing buffered meanwhile, as far as the delegate's calls can tell).
        var held: [UInt8] = []
        swap(&held, &extras.input)
        hasBufferedInput = false
        let consumed = held.withUnsafeBytes { delegate.connection(self, didRead: $0) }
        if consumed < held.count {
            held.removeFirst(max(0, consumed))
            extras.input = held
        } else if held.capacity <= 4096 {
            held.removeAll(keepingCapacity: true)
            extras.input = held
        }
        hasBufferedInput = !extras.input.isEmpty
        if extras.input.count > settings.maxBufferedInput { finish(.inputLimitExceeded) }
    }

    /// Closes because I/O failed.
    private func fail(_ error: Errno) { finish(.error(error)) }

    /// Queues what the kernel did not take; writable interest follows.
    private func enqueue(_ bytes: UnsafeRawBufferPointer) {
        let extras = extra
        let wasEmpty = extras.output.isEmpty
        extras.output.append(bytes)
        outputPending = true
        if wasEmpty {
            extras.lastWriteProgress = context.currentTime
            armWriteTimer()
        }
        if !readingPaused && extras.output.bytes > settings.options.highWatermark {
            readingPaused = true
        }
        updateInterest()
    }

    private func flush() {
        let extras = extra
        while !extras.output.isEmpty {
            let result: IOResult<Int>
            do {
                result = try extras.output.withVectors(context.ioVectors) {
                    (vectors) throws(Errno) -> IOResult<Int> in try Sys.sendv(fd, vectors)
                }
            } catch {
                finish(.error(error))
                return
            }
            guard case .processed(let n) = result else {
                context.drained(fd, .writable)
                break
            }
            extras.output.consume(n)
            noteActivity()
            extras.lastWriteProgress = lastActivity
        }
        outputPending = !extras.output.isEmpty
        if extras.output.isEmpty {
            if extras.output.shutdownWhenDrained {
                extras.output.shutdownWhenDrained = false
                try? Sys.shutdownWrite(fd)
            }
            if state == .closing {
                finish(closeReason ?? .closed)
                return
            }
        }
        if readingPaused && extras.output.bytes <= settings.options.lowWatermark {
            readingPaused = false
            updateInterest()
            delegate.connectionDidDrain(self)
            // Data may have arrived while paused; re-adding readable interest reports it.
            return
        }
        updateInterest()
    }

    private func armWriteTimer() {
        guard settings.writeNanoseconds > 0, writeTimer == nil, state != .idle else { return }
        writeTimer = reactor.scheduleTimer(
            at: extra.lastWriteProgress &+ settings.writeNanoseconds, for: token,
            tag: Self.writeTag)
    }

    private func updateInterest() {
        guard state == .open || state == .closing else { return }
        if completes { return updateReceiving() }
        var wanted: Interest = []
        if state == .open && !readingPaused && !peerClosed { wanted.insert(.readable) }
        if hasOutput { wanted.insert(.writable) }
        // A registration cannot be empty; keep readable (no reads happen while paused/closed).
        if wanted.isEmpty { wanted = .readable }
        guard wanted != interest else { return }
        interest = wanted
        do {
            try reactor.setInterest(token, wanted)
        } catch {
            finish(.error(error))
        }
    }
}

// MARK: - Completions

extension Connection {
    /// A completion of this connection's receive or send (the reactor's dispatch inlines it).
    @inline(__always)
    func handleCompletion(_ completion: IOCompletion) {
        context.assertOnLoopThread()
        if completion.operation == .receive {
            if completion.result > 0, canRead, let bytes = completion.bytes {
                noteActivity()
                // Straight from the backend's buffer; only what the delegate leaves is copied.
                return deliver(UnsafeRawBufferPointer(start: bytes, count: Int(completion.result)))
            }
            return received(completion)
        }
        if completion.operation == .send { sent(completion.result) }
    }

    /// A receive completion other than bytes for an open connection that reads now.
    ///
    /// Bytes that come while reading is paused (the receive's cancellation is on its way) are
    /// held, as the socket would have held them, and offered once reading resumes, at most a
    /// read buffer's worth per delivery so that the high watermark bounds output as it does on
    /// readiness backends. The end of the stream waits behind held bytes.
    @inline(never)
    private func received(_ completion: IOCompletion) {
        if completion.result > 0, let bytes = completion.bytes {
            guard state == .open else { return }  // closing: reading has stopped
            extra.held.append(
                contentsOf: UnsafeRawBufferPointer(start: bytes, count: Int(completion.result)))
            readStops |= ReadStop.held
            if readStops == ReadStop.held { deliverHeld() }
            return
        }
        receiving = false
        if readStops & ReadStop.held != 0 {
            extra.heldEnd = completion.result
            return
        }
        receiveEnded(completion.result)
    }

    /// The receive ended: EOF (0) or -errno.
    private func receiveEnded(_ result: Int32) {
        guard state == .open || state == .closing else { return }
        if result == 0 {
            peerClosed = true
            closeReason = .endOfFile
            if state == .open { delegate.connectionDidReadEOF(self) }
        } else {
            finish(.error(Errno(-result, call: "recv")))
        }
    }

    /// Delivers held bytes while reading may go on, one read buffer's worth at a time, then
    /// the end of the stream if it came behind them.
    private func deliverHeld() {
        guard let extras else { return }
        while readStops == ReadStop.held {
            let count = min(extras.held.count, LoopContext.readSize)
            // Copied out first: the delegate may touch this connection while it reads.
            extras.held.withUnsafeBytes { held in
                context.readBase.copyMemory(from: held.baseAddress!, byteCount: count)
            }
            extras.held.removeFirst(count)
            if extras.held.isEmpty { readStops &= ~ReadStop.held }
            noteActivity()
            deliver(UnsafeRawBufferPointer(start: context.readBase, count: count))
        }
        if readStops & ReadStop.held == 0, let end = extras.heldEnd {
            extras.heldEnd = nil
            receiveEnded(end)
        }
    }

    /// Queues `bytes` and sends them through the backend unless a send is in flight (which
    /// sends them when it completes).
    @inline(never)
    fileprivate func submitWrite(_ bytes: UnsafeRawBufferPointer) {
        let extras = self.extras ?? adoptSpareExtras()
        if extras.output.isEmpty {
            if !extras.output.keepsLastChunk {
                extras.output.keepsLastChunk = true
                // Copied once: reading `token` (a class property) per send costs an
                // exclusivity check.
                extras.output.sendToken = token
                extras.output.pool = selector.receiveBufferPool
            }
            if settings.writeNanoseconds > 0 {
                extras.lastWriteProgress = context.currentTime
                armWriteTimer()
            }
        }
        // Bytes still in the backend's receive buffer (an echo) are sent from there: the
        // backend holds the buffer until the send completes. Anything else is copied.
        if extras.output.sending || !extras.output.lend(bytes) { extras.output.append(bytes) }
        lastActivity = context.now
        if !extras.output.sending { sendFront(extras) }
        if !readingPaused && extras.output.bytes > settings.options.highWatermark {
            readingPaused = true
            updateReceiving()
        }
    }

    /// The send state for a connection that has none: a spare one of the loop's (given back by
    /// a connection whose output drained), or a new one.
    @inline(__always)
    private func adoptSpareExtras() -> ConnectionExtras {
        guard let spare = context.takeSpareExtras() else { return extra }
        // Set up for sends by its last connection; only the token is this connection's.
        spare.output.sendToken = token
        extras = spare
        return spare
    }

    /// Hands the front of the queue to the backend.
    private func sendFront(_ extras: ConnectionExtras) {
        do {
            try selector.send(
                fd, token: extras.output.sendToken, bytes: extras.output.front,
                keepingAlive: extras, holdingBuffer: extras.output.loanBuffer)
            extras.output.sending = true
        } catch {
            fail(error)
        }
    }

    /// A send completed: `result` bytes went out (or -errno).
    private func sent(_ result: Int32) {
        guard let extras else { return }
        extras.output.sending = false
        guard state == .open || state == .closing else { return }
        if result < 0 { return fail(Errno(-result, call: "send")) }
        extras.output.consume(Int(result))
        noteActivity()
        extras.lastWriteProgress = lastActivity
        if !extras.output.isEmpty {
            sendFront(extras)
        } else {
            if extras.output.shutdownWhenDrained {
                extras.output.shutdownWhenDrained = false
                try? Sys.shutdownWrite(fd)
            }
            if state == .closing { return finish(closeReason ?? .closed) }
        }
        // As on readiness backends: reading resumes once the queue is down to the low
        // watermark, drained or not.
        if readingPaused && state == .open && extras.output.bytes <= settings.options.lowWatermark {
            readingPaused = false
            updateReceiving()
            delegate.connectionDidDrain(self)
        }
        // Drained and holding nothing else: the send state goes back to the loop, so an idle
        // connection keeps none. Reading on (`readStops` 0) means no close reason and no held
        // input; without timeouts no timer is set; `hasBufferedInput` says whether unconsumed
        // input waits: so the checks need no load of `extras`' own fields (each would cost an
        // exclusivity check).
        if readStops == 0, !hasBufferedInput, !settings.hasTimeouts, extras.output.isEmpty,
            !extras.output.sending, !extras.output.shutdownWhenDrained
        {
            self.extras = nil
            context.giveBack(extras)
        }
    }

    /// Starts or stops the backend's receive to match what reading wants now; on resuming,
    /// offers what arrived while paused.
    fileprivate func updateReceiving() {
        // Not once the receive has ended (its end waits behind held bytes).
        let wanted =
            state == .open && !readingPaused && !peerClosed && extras?.heldEnd == nil
        if wanted != receiving {
            receiving = wanted
            if !wanted { return selector.stopReceiving(fd) }
            do {
                try selector.receive(fd, token: token)
            } catch {
                return fail(error)
            }
        }
        if readStops == ReadStop.held { deliverHeld() }
    }
}

/// What a `Connection` does after a short read (outside the generic class, so testing it
/// costs a byte compare even in unspecialized code).
enum ShortRead: UInt8 {
    /// The backend may not report data that arrives later: read on to would-block.
    case readAgain
    /// The backend reports the next arrival: stop here.
    case stop
    /// The backend reports the next arrival once its drain hook hears of the stop.
    case noteAndStop
}

/// Where a `Connection` is in its life. Not nested in the generic class, so comparing two
/// costs a byte compare even in unspecialized code.
@usableFromInline
enum ConnectionState: UInt8 { case idle, open, closing, closed }

/// The parts of a `Connection` that only some connections need, allocated on first use.
final class ConnectionExtras {
    /// The queue lives outside the object and is reached through addressors: a connection on
    /// completions touches it several times per message, and a stored property of a class
    /// would cost a dynamic exclusivity check per access. Only the reactor's thread touches it,
    /// and no access overlaps another (nothing here calls out while it holds one).
    private let outputStorage: UnsafeMutablePointer<OutputQueue> = {
        let storage = UnsafeMutablePointer<OutputQueue>.allocate(capacity: 1)
        storage.initialize(to: OutputQueue())
        return storage
    }()
    var output: OutputQueue {
        unsafeAddress { UnsafePointer(outputStorage) }
        unsafeMutableAddress { outputStorage }
    }
    var lastWriteProgress: UInt64 = 0
    var idleTimer: TimerID?
    var writeTimer: TimerID?
    var closeReason: CloseReason?
    /// Completions: bytes received while reading was paused, not yet delivered.
    var held: [UInt8] = []
    /// Completions: how the receive ended (0: EOF, or -errno) behind `held`.
    var heldEnd: Int32?
    /// Bytes read but not yet consumed by the delegate (`Connection.hasBufferedInput`).
    var input: [UInt8] = []

    /// Holds nothing a connection needs later (no output, send, timer, close reason or held
    /// input), so it may serve another connection.
    var isSpare: Bool {
        output.isEmpty && !output.sending && !output.shutdownWhenDrained && idleTimer == nil
            && writeTimer == nil && closeReason == nil && held.isEmpty && heldEnd == nil
            && input.isEmpty
    }

    deinit {
        outputStorage.pointee.removeAll()
        outputStorage.deinitialize(count: 1)
        outputStorage.deallocate()
    }
}
