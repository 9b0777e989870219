import Net
import Selector
import Synchronization
import SysCalls

/// An event loop on one thread: a selector, handlers by token, timers and a task queue.
///
/// Generic over its selector, so production pays no dynamic cost per event and tests plug
/// in `MockSelector`. Everything but `handle` (a Sendable `Reactor.Handle`) must be used
/// on the reactor's own thread, which is the thread calling `run()`.
///
/// ```swift
/// let reactor = try Reactor<DefaultSelector>()
/// reactor.schedule(after: .seconds(1)) { reactor in reactor.stop() }
/// try reactor.run()
/// ```
public final class Reactor<Backend: EventSelector> {
    /// What a timer does when it fires.
    enum TimerAction {
        case closure((Reactor<Backend>) -> Void)
        case handler(Token, tag: Int)
    }

    /// The selector this reactor waits on.
    public let selector: Backend
    /// The Sendable handle other threads use to reach this reactor.
    public let handle: Handle

    // Touched only on the reactor's thread; a timer's action is popped before it runs.
    private var timers = TimerQueue<TimerAction>()
    /// The batch of queued closures being run (its storage reused from turn to turn).
    private var taskBatch: [Task] = []
    /// True while `shutdown()` runs: a handler's `deregistered` that calls `shutdown()` again
    /// (directly or by stopping the loop) returns at once instead of re-entering it.
    private var isShuttingDown = false
    /// The loop's non-generic state: events, handlers, clock, buffers. Reaching it needs no
    /// generic metadata, unlike a property of `Reactor<Backend>`, and the per-event dispatch
    /// runs there.
    let context: LoopContext

    /// Creates a reactor over a new selector; `eventCapacity` bounds events per `select`, and
    /// `clock` is where it reads the time (`.manual` for virtual time in tests).
    public convenience init(eventCapacity: Int = 1024, clock: LoopClock = .monotonic)
        throws(Errno)
    {
        try self.init(selector: try Backend(), eventCapacity: eventCapacity, clock: clock)
    }

    /// Creates a reactor over `selector` (e.g. a scripted `MockSelector`), reading the time
    /// from `clock`.
    public init(selector: Backend, eventCapacity: Int = 1024, clock: LoopClock = .monotonic)
        throws(Errno)
    {
        self.selector = selector
        // The waker's token is never a table slot, so dispatch skips it without a check.
        let waker = try selector.makeWaker(token: Token(rawValue: UInt64.max))
        let context = LoopContext(
            eventCapacity: eventCapacity, recordFormat: Backend.recordFormat,
            drainHook: selector.drainHook, clock: clock, completesIO: Backend.completesIO)
        self.handle = Handle(waker: waker, clock: clock, signals: context.signals)
        self.context = context
        // Made once: building them from the generic handle costs a witness-table lookup.
        context.executors = (
            handle.serialExecutor.asUnownedSerialExecutor(), handle.asUnownedTaskExecutor()
        )
        context.reactor = self
        handle.reactor = self
    }

    deinit {
        // Calls queued after the loop's last turn would otherwise never run: their callers
        // would wait forever, and what they hold would stay in the handle's queue (a queued
        // close holds its connection, which holds the handle: a cycle nothing frees). Refuse
        // new ones, run what is queued, then close what those registered.
        handle.markClosed()
        runQueuedWorkAfterClose()
        shutdown()
    }

    /// Live registrations.
    public var handlerCount: Int { context.handlers.count }

    /// Pending timers.
    public var timerCount: Int { timers.count }

    /// The earliest pending timer's deadline (nanoseconds on the loop's clock), nil if none.
    public var nextTimerDeadline: UInt64? {
        context.nextTimerDeadline == .max ? nil : context.nextTimerDeadline
    }

    /// How many events and completions the last `select` returned (the waker's included): 0
    /// after an iteration that found nothing ready.
    public var lastEventCount: Int {
        context.eventCount + (Backend.completesIO ? selector.completions.count : 0)
    }

    /// The loop's time in nanoseconds on its clock (`LoopClock`): read once per iteration,
    /// after the wait when a timer is pending, otherwise at the first use in the iteration.
    public var now: UInt64 { context.currentTime }

    /// Where this reactor reads the time.
    public var clock: LoopClock { context.clock }

    /// Scratch space every handler on this reactor reads into (64 KiB, allocated once):
    /// one buffer per thread instead of one per connection.
    public var readBuffer: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: context.readBase, count: LoopContext.readSize)
    }

    // MARK: Registration

    /// Registers `fd` for `interest`; `handler` receives its events until deregistered.
    /// Returns the registration's token.
    @discardableResult
    public func register(
        _ fd: FileDescriptor, interest: Interest, handler: any EventHandler<Backend>
    ) throws(Errno) -> Token {
        try register(fd, interest: interest, handler: handler, kind: .handler)
    }

    /// Registers a `Connection`: its events are handled by code inlined into the loop.
    func register(_ connection: Connection<Backend>, interest: Interest) throws(Errno) -> Token {
        try register(
            connection.fd, interest: interest, handler: connection, kind: .connection)
    }

    /// Enters `handler` (a `Connection` if `kind` says so) in the table for `fd` without
    /// registering `fd` with the selector: for handlers whose I/O a completion backend runs
    /// (`EventSelector.completesIO`). `deregister` ends that I/O (`endIO`).
    func registerForCompletions(
        _ fd: FileDescriptor, handler: any _ErasedEventHandler, kind: HandlerTable.Kind
    ) -> Token {
        context.handlers.insert(handler, fd: fd, kind: kind)
    }

    private func register(
        _ fd: FileDescriptor, interest: Interest, handler: any _ErasedEventHandler,
        kind: HandlerTable.Kind
    ) throws(Errno) -> Token {
        let token = context.handlers.insert(handler, fd: fd, kind: kind)
        do {
            try selector.register(fd, token: token, interest: interest)
        } catch {
            _ = context.handlers.remove(token)
            throw error
        }
        return token
    }

    /// Changes the interest of a registration.
    public func setInterest(_ token: Token, _ interest: Interest) throws(Errno) {
        guard let fd = context.handlers.fd(for: token) else {
            throw Errno(Errno.ENOENT.code, call: "setInterest (unknown token)")
        }
        try selector.reregister(fd, token: token, interest: interest)
    }

    /// Ends a registration: removes it from the selector, then calls the handler's
    /// `deregistered` (once). Unknown or stale tokens are ignored; returns whether it acted.
    @discardableResult
    public func deregister(_ token: Token) -> Bool {
        guard let (handler, fd) = context.handlers.remove(token) else { return false }
        // The handler may already have closed the descriptor; the selector then forgot it.
        // A handler on completions has no registration, only requests to end.
        if !context.completesIO || !selector.endIO(fd) { try? selector.deregister(fd) }
        handler._deregistered(reactor: self)
        return true
    }

    /// Tells the selector that I/O on the registered `fd` ran dry in `direction`: call it when
    /// a handler's read, accept, write or connect returns would-block (see
    /// `EventSelector.drainHook`). Costs one nil check where the backend does not need it.
    @inline(__always)
    public func drained(_ fd: FileDescriptor, _ direction: Interest) {
        context.drained(fd, direction)
    }

    // MARK: Timers

    /// Runs `body` on this thread after `delay`, and then every `repeating` if given.
    @discardableResult
    public func schedule(
        after delay: Duration, repeating: Duration? = nil,
        _ body: @escaping (Reactor<Backend>) -> Void
    ) -> TimerID {
        let interval = repeating.map { max(1, Sys.nanoseconds($0)) } ?? 0
        let id = timers.schedule(
            at: context.currentTime &+ Sys.nanoseconds(delay), interval: interval,
            .closure(body))
        noteTimersChanged()
        return id
    }

    /// Runs `body` once at `deadline` (nanoseconds on the reactor's clock).
    func schedule(at deadline: UInt64, _ body: @escaping (Reactor<Backend>) -> Void) {
        _ = timers.schedule(at: deadline, .closure(body))
        noteTimersChanged()
    }

    /// Calls `timerFired(tag:)` on the handler of `token` after `delay`; allocation-free,
    /// for per-connection timeouts. Dropped silently if the registration has ended.
    @discardableResult
    public func scheduleTimer(after delay: Duration, for token: Token, tag: Int) -> TimerID {
        scheduleTimer(
            at: context.currentTime &+ Sys.nanoseconds(delay), for: token, tag: tag)
    }

    /// Like `scheduleTimer(after:for:tag:)` with an absolute deadline on `now`'s clock.
    @discardableResult
    public func scheduleTimer(at deadline: UInt64, for token: Token, tag: Int) -> TimerID {
        let id = timers.schedule(at: deadline, .handler(token, tag: tag))
        noteTimersChanged()
        return id
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    @discardableResult
    public func cancel(_ timer: TimerID) -> Bool {
        let cancelled = timers.cancel(timer)
        noteTimersChanged()
        return cancelled
    }

    /// Keeps the loop's copy of the earliest deadline current, so an iteration with no timer
    /// due never touches the (generic) timer queue.
    private func noteTimersChanged() {
        context.nextTimerDeadline = timers.nextDeadline ?? .max
    }

    // MARK: Running

    /// Runs until `stop()` (from this thread) or `handle.stop()` (from any), then shuts down:
    /// every handler is deregistered once. Throws EALREADY if called from one of this
    /// reactor's handlers (the loop is already running).
    ///
    /// A stop requested before `run()` is honoured: `run()` then shuts down and returns at
    /// once. Each request ends one `run()`, which consumes it on the way out, so a later
    /// `run()` runs again until the next request.
    @_specialize(where Backend == DefaultSelector)
    public func run() throws(Errno) {
        if context.inTurn { throw Errno(Errno.EALREADY.code, call: "run (called from a handler)") }
        context.signals.loopThread.store(OSThread.currentID, ordering: .relaxed)
        // Set for the whole run, not per turn: between turns no code of this thread runs.
        context.inTurn = true
        defer {
            context.inTurn = false
            shutdown()
            context.signals.lower(LoopSignals.stop)
        }
        // One load of the signals per turn: `turn` returns them for the next.
        var signals = context.signals.current
        while signals & LoopSignals.stop == 0 {
            signals = try turn(timeout: nil, signals: signals)
        }
    }

    /// One iteration: wait for events (at most `timeout`, shortened by the next timer),
    /// dispatch them, fire due timers, run queued tasks. Throws EALREADY if called from one of
    /// this reactor's handlers, timers or tasks (the iteration is already running).
    public func runOnce(timeout: Duration?) throws(Errno) {
        // A handler that ran the loop from inside the loop would have `select` refill the
        // events being dispatched.
        if context.inTurn {
            throw Errno(Errno.EALREADY.code, call: "runOnce (called from a handler)")
        }
        context.signals.loopThread.store(OSThread.currentID, ordering: .relaxed)
        context.inTurn = true
        defer { context.inTurn = false }
        _ = try turn(timeout: timeout, signals: context.signals.current)
    }

    /// `runOnce`'s body, run with `inTurn` set. `signals` are the loop's signals as they stood
    /// after the previous turn's work (or fresh); returns them as they stand after this one's,
    /// so that `run` tests for a stop request, and the next turn for queued work, without
    /// another load.
    @inline(__always)
    private func turn(timeout: Duration?, signals: UInt8) throws(Errno) -> UInt8 {
        context.noteLoopThread()
        var wait = timeout
        let deadline = context.nextTimerDeadline
        // No handler code runs during the wait, so whether a timer is pending holds after it.
        let timerPending = deadline != .max
        if timerPending {
            let now = context.clock.nanoseconds
            if deadline <= now {
                wait = .zero
            } else if context.manualClock == nil {
                let untilTimer = Duration.nanoseconds(Int64(clamping: deadline &- now))
                wait = wait.map { min($0, untilTimer) } ?? untilTimer
            }
            // Virtual time does not pass while the loop waits, so a timer that is not due
            // cannot shorten the wait: only `advanceTime(by:)` brings it due.
        }
        // Work queued from another thread wakes the selector; work queued on this thread (a
        // job resumed by a handler, a task queued by a task) does not, so it is checked here.
        if signals & LoopSignals.queued != 0 { wait = .zero }
        let eventCount: Int
        do {
            eventCount = try selector.select(
                records: context.records, capacity: context.eventCapacity, timeout: wait)
        } catch {
            // `lastEventCount` then reads 0, as after a wait that found nothing.
            context.eventCount = 0
            throw error
        }
        context.eventCount = eventCount
        // The clock is read here only if a timer is pending; otherwise `now` is stale until
        // something asks for the time (`currentTime`). Code that reads `context.now` raw
        // (a connection noting activity) needs it fresh only when an idle or write timer of
        // its own is pending, and then it is.
        if timerPending { context.now = context.clock.nanoseconds }
        context.nowIsFresh = timerPending
        context.dispatch(eventCount, reactor: self)
        if Backend.completesIO { dispatchCompletions() }
        if context.nextTimerDeadline <= context.now { fireTimers() }
        var signals = context.signals.current
        if signals & LoopSignals.queued != 0 {
            runTasks()
            signals = context.signals.current
        }
        // Releasing a handler may run its deinit, which may queue work.
        if context.handlers.releaseRetired() { signals = context.signals.current }
        return signals
    }

    /// Moves virtual time forward by `duration` and runs what falls due: each timer fires at
    /// its own deadline (the clock reads that deadline while it runs), in deadline order and,
    /// for equal deadlines, in scheduling order; timers those timers schedule inside the window
    /// fire too. Ends with one iteration at the new time, which also dispatches pending events
    /// and tasks. Waits for nothing in real time.
    ///
    /// Throws `ArgumentError` unless the reactor was built with `LoopClock.manual` or if
    /// `duration` is negative, and `Errno` EALREADY if called from one of this reactor's
    /// handlers (the loop is already running).
    public func advanceTime(by duration: Duration) throws {
        guard let clock = context.manualClock else {
            throw ArgumentError(
                "Reactor advanceTime", duration,
                "only a reactor built with clock: .manual(ManualClock()) has virtual time")
        }
        if duration < .zero {
            throw ArgumentError("Reactor advanceTime", duration, "time only moves forward")
        }
        if context.inTurn {
            throw Errno(Errno.EALREADY.code, call: "advanceTime (called from a handler)")
        }
        let target = clock.nanoseconds &+ Sys.nanoseconds(duration)
        while context.nextTimerDeadline <= target {
            clock.advance(to: context.nextTimerDeadline)
            try runOnce(timeout: .zero)
        }
        clock.advance(to: target)
        try runOnce(timeout: .zero)
    }

    /// Asks `run()` to return after the current iteration.
    public func stop() { context.signals.raise(LoopSignals.stop) }

    /// Deregisters every handler (each `deregistered` called once) and drops all timers.
    /// `run()` does this on its way out.
    public func shutdown() {
        if isShuttingDown { return }
        isShuttingDown = true
        // Handlers may register new ones while closing; loop until the table is empty.
        while context.handlers.count > 0 {
            for token in context.handlers.liveTokens() { deregister(token) }
        }
        timers.removeAll()
        noteTimersChanged()
        context.handlers.releaseRetired()
        isShuttingDown = false
    }

    /// Hands each completion of the last `select` to its handler. A completion whose handler
    /// has gone (ended earlier in this turn) is dropped; an accepted descriptor in it is closed.
    @inline(never)
    private func dispatchCompletions() {
        let handlers = context.handlers
        for completion in selector.completions
        where !handlers.dispatch(completion, reactor: self, context: context) {
            if completion.operation == .accept && completion.result >= 0 {
                try? Sys.close(FileDescriptor(completion.result))
            }
        }
    }

    private func fireTimers() {
        while let (_, action) = timers.popExpired(now: context.now) {
            switch action {
            case .closure(let body): body(self)
            case .handler(let token, let tag):
                context.handlers.handler(for: token)?._timerFired(tag: tag, reactor: self)
            }
        }
        noteTimersChanged()
    }

    /// Runs what was queued after the loop's last turn (once the handle is closed, nothing
    /// more can be queued): so no caller waits forever on work that would never run.
    func runQueuedWorkAfterClose() {
        runTasks()
    }

    @inline(never)
    private func runTasks() {
        handle.takeTasks(into: &taskBatch, jobs: &context.jobBatch)
        if !taskBatch.isEmpty {
            // Iterated from a local: a loop over the property would hold an access to it for
            // the whole batch, and every dynamic access the tasks make would be checked
            // against it.
            var batch: [Task] = []
            swap(&batch, &taskBatch)
            for task in batch { task(self) }
            batch.removeAll(keepingCapacity: batch.capacity <= 1024)
            swap(&batch, &taskBatch)
        }
        if !context.jobBatch.isEmpty { context.runJobs() }
    }

}

/// The loop's state that the per-event path touches, kept out of the generic `Reactor<Backend>`
/// so that reaching it costs a plain field load and dispatch runs as specialized code.
@usableFromInline final class LoopContext {
    /// Where `select` writes its records (in `recordFormat`): owned by the loop, so no
    /// copy-on-write check per turn. `runOnce` refuses re-entry, so nothing refills them while
    /// dispatch reads them.
    let records: UnsafeMutableRawPointer
    /// Room in `records`, in records.
    let eventCapacity: Int
    /// How many records the last `select` wrote.
    var eventCount = 0
    /// The backend's record layout (`EventSelector.recordFormat`).
    let recordFormat: EventRecordFormat
    /// The registrations.
    let handlers = HandlerTable()
    /// Where the loop reads the time.
    let clock: LoopClock
    /// `clock`'s manual clock, if it is one.
    let manualClock: ManualClock?
    /// The loop's time (nanoseconds on `clock`) as last read: fresh in an iteration that began
    /// with a timer pending, possibly stale otherwise (see `currentTime`).
    // Unchecked exclusivity (Benchmarks/UNSAFE.md: 267 instructions per echo): written once
    // per turn and read per event on the reactor's thread only (checked in debug builds).
    @usableFromInline @exclusivity(unchecked) var now: UInt64
    /// Whether `now` was read in this iteration (or outside any iteration: never stale there).
    var nowIsFresh = false

    /// The loop's time, read from the clock if this iteration has not read it yet.
    var currentTime: UInt64 {
        if !nowIsFresh || !inTurn {
            now = clock.nanoseconds
            nowIsFresh = inTurn
        }
        return now
    }
    /// The earliest pending timer's deadline, `.max` when none is pending.
    var nextTimerDeadline: UInt64 = .max
    /// True while `runOnce` runs (it may not be re-entered from a handler).
    var inTurn = false
    /// Why the connection being deregistered now ends, while its `finish` deregisters it
    /// (its `deregistered` takes it), so that the reason needs no storage in the connection.
    var closingReason: CloseReason?
    /// What other threads (and `stop()`) ask of the loop: tasks pending, stop requested.
    let signals = LoopSignals()
    /// The batch of queued jobs being run (its storage reused from turn to turn).
    var jobBatch: [LoopJob] = []
    /// The reactor's handle as the executors its jobs run on (set once by the reactor).
    var executors: (serial: UnownedSerialExecutor, task: UnownedTaskExecutor)?

    /// Runs `jobBatch`, then empties it keeping its storage.
    @inline(never)
    func runJobs() {
        // Set by `Reactor.init` before its handle exists, so before any job can be queued.
        guard let executors else { preconditionFailure("jobs queued before the reactor existed") }
        // Iterated from a local, as `runTasks` does, so no access to `jobBatch` is held open
        // while the jobs run.
        var batch: [LoopJob] = []
        swap(&batch, &jobBatch)
        for item in batch {
            // A task's job runs on the generic executor with this loop as its task executor
            // (so the task's nonisolated code continues here without another hop); an actor's
            // job runs isolated to the loop's serial executor.
            if item.isolated {
                item.job.runSynchronously(
                    isolatedTo: executors.serial, taskExecutor: executors.task)
            } else {
                item.job.runSynchronously(on: executors.task)
            }
        }
        batch.removeAll(keepingCapacity: batch.capacity <= 1024)
        swap(&batch, &jobBatch)
    }
    #if DEBUG
    /// The thread running the current turn (debug builds: the invariant behind the
    /// unchecked-exclusivity fields is that only it touches them during a turn).
    private var loopThread: UInt = 0
    #endif

    /// Debug builds: records the thread running this turn.
    @inline(__always)
    func noteLoopThread() {
        #if DEBUG
        loopThread = OSThread.currentID
        #endif
    }

    /// Debug builds: traps if a turn is running on another thread. The unchecked-exclusivity
    /// fields of the loop and its connections are sound because only the loop's thread touches
    /// them while it runs; this checks it where they are used.
    @inline(__always)
    func assertOnLoopThread() {
        #if DEBUG
        precondition(
            !inTurn || loopThread == OSThread.currentID,
            "a reactor's loop state was touched from another thread while it ran")
        #endif
    }
    /// The shared read buffer's size.
    static var readSize: Int { 64 << 10 }
    /// The shared read buffer's owner: also handed to async streams (`AsyncStreamIO`), whose
    /// reads on this thread use the same memory, so it lives as long as the last of them.
    let readScratch = ReadScratch(byteCount: LoopContext.readSize)
    /// The shared read buffer (`readSize` bytes, `readScratch`'s memory).
    let readBase: UnsafeMutableRawPointer
    /// The selector's drain hook (nil for backends with native edge semantics): told when a
    /// registered descriptor's I/O runs dry.
    let drainHook: (any SelectorDrainHook)?
    /// Scratch iovecs for gathered writes.
    let ioVectors: UnsafeMutableBufferPointer<IOVector> = .allocate(capacity: 64)

    /// The selector runs socket I/O itself (`EventSelector.completesIO`).
    let completesIO: Bool
    /// The `Reactor` this loop belongs to (set once by its `init`), for its connections' calls
    /// that are not per message: held here so that each connection need not hold it. Unowned
    /// (checked): the reactor owns this context.
    unowned(safe) var reactor: AnyObject?

    /// Completions: the send state (`ConnectionExtras`) that connections gave back when their
    /// output drained, for the next connection that writes. A connection on completions queues
    /// every message, so it needs that state while a send is in flight; sharing it keeps an
    /// idle connection as small as on readiness backends, and costs no allocation per message
    /// (the list holds what the busiest moment needed, up to `spareExtrasLimit`). Behind a
    /// pointer, as `Connection`'s output queue is: as a stored property of this class every
    /// access would cost a dynamic exclusivity check, though only the loop's thread touches it.
    private let spares: UnsafeMutablePointer<SpareExtras> = {
        let spares = UnsafeMutablePointer<SpareExtras>.allocate(capacity: 1)
        spares.initialize(to: SpareExtras())
        return spares
    }()
    /// At most this many spares are kept (about 230 bytes each).
    static var spareExtrasLimit: Int { 4096 }

    /// How many spares the loop keeps now.
    var spareExtrasCount: Int { spares.pointee.count }

    /// A spare `ConnectionExtras` (no output, timers or held input), or nil.
    @inline(__always)
    func takeSpareExtras() -> ConnectionExtras? {
        let count = spares.pointee.count
        if count == 0 { return nil }
        spares.pointee.count = count - 1
        return (spares.pointee.items + count - 1).move()
    }

    /// Keeps `extras` (which `isSpare`) for another connection, unless enough are kept.
    @inline(__always)
    func giveBack(_ extras: ConnectionExtras) {
        assert(extras.isSpare, "a ConnectionExtras given back still holds state")
        let count = spares.pointee.count
        if count == spares.pointee.capacity {
            if count == Self.spareExtrasLimit { return }
            spares.pointee.grow()
        }
        (spares.pointee.items + count).initialize(to: extras)
        spares.pointee.count = count + 1
    }

    /// Frees the spares beyond `limit`. Called as connections end, with the number still
    /// registered: a burst's spares then shrink back to what the live connections could use
    /// at once, instead of staying at the burst's peak.
    func trimSpareExtras(toAtMost limit: Int) {
        var count = spares.pointee.count
        guard count > limit else { return }
        while count > max(0, limit) {
            count -= 1
            (spares.pointee.items + count).deinitialize(count: 1)
        }
        spares.pointee.count = count
    }

    init(
        eventCapacity: Int, recordFormat: EventRecordFormat, drainHook: (any SelectorDrainHook)?,
        clock: LoopClock, completesIO: Bool
    ) {
        self.eventCapacity = max(1, eventCapacity)
        self.recordFormat = recordFormat
        records = .allocate(
            byteCount: self.eventCapacity * recordFormat.stride, alignment: 16)
        readBase = readScratch.base
        self.completesIO = completesIO
        self.drainHook = drainHook
        self.clock = clock
        manualClock = clock.manualClock
        now = clock.nanoseconds
    }

    /// Tells the selector, if it asks to know, that `fd` ran dry in `direction`.
    @inline(__always)
    func drained(_ fd: FileDescriptor, _ direction: Interest) {
        if let drainHook { drainHook.drained(fd, direction) }
    }

    /// Hands the event of each of the first `count` records to its handler; stale and unknown
    /// tokens (and the waker's) find no live slot and are skipped. Generic only to name
    /// `reactor`'s connections: it needs no metadata of `Backend`, so it runs as fast
    /// unspecialized.
    @inline(__always)
    func dispatch<Backend>(_ count: Int, reactor: Reactor<Backend>) {
        // `runOnce` refuses to be re-entered, so nothing refills the records while they are
        // read.
        assert(inTurn, "dispatch outside runOnce")
        assertOnLoopThread()
        // For the compact record layout (the neutral one, and the kernel's on some platforms)
        // every offset, the stride and the readable-only value are constants, and the loop
        // keeps none of the format's other fields live across its calls; other layouts take
        // the general loop, out of line.
        if recordFormat.isCompact {
            dispatchCompact(count, reactor: reactor)
        } else {
            dispatchAnyLayout(count, reactor: reactor)
        }
    }

    @inline(__always)
    private func dispatchCompact<Backend>(_ count: Int, reactor: Reactor<Backend>) {
        let handlers = self.handlers
        // Steps a pointer through the records' tokens: no multiply per event.
        var token = UnsafeRawPointer(records) + EventReader.compactTokenOffset
        let end = token + count &* EventReader.compactStride
        while token < end {
            // The record's first word is 1 exactly when it reports readability alone.
            if token.loadUnaligned(fromByteOffset: -4, as: UInt32.self) == 1 {
                handlers.dispatchReadable(
                    Token(rawValue: token.loadUnaligned(as: UInt64.self)), reactor: reactor,
                    context: self)
            } else {
                dispatchUncommon(atToken: token, reactor: reactor)
            }
            token += EventReader.compactStride
        }
    }

    /// Dispatches the event of a compact record that reports more than readability.
    @inline(__always)
    private func dispatchUncommon<Backend>(
        atToken token: UnsafeRawPointer, reactor: Reactor<Backend>
    ) {
        let event = Event(
            token: Token(rawValue: token.loadUnaligned(as: UInt64.self)),
            readiness: Event.Readiness(
                rawValue: recordFormat.readiness(token - EventReader.compactTokenOffset)))
        handlers.dispatch(event, reactor: reactor, context: self)
    }

    /// `dispatch(_:reactor:)` for records that are not in the compact layout.
    @inline(never)
    private func dispatchAnyLayout<Backend>(_ count: Int, reactor: Reactor<Backend>) {
        let reader = EventReader(base: records, format: recordFormat)
        let handlers = self.handlers
        var token = reader.firstToken
        let end = token + count &* reader.stride
        while token < end {
            handlers.dispatch(reader.event(atToken: token), reactor: reactor, context: self)
            token += reader.stride
        }
    }

    deinit {
        records.deallocate()
        ioVectors.deallocate()
        spares.pointee.items.deinitialize(count: spares.pointee.count)
        spares.pointee.items.deallocate()
        spares.deinitialize(count: 1)
        spares.deallocate()
    }
}

/// `LoopContext`'s spare `ConnectionExtras`: a stack, `count` of `capacity` initialized.
struct SpareExtras {
    var items = UnsafeMutablePointer<ConnectionExtras>.allocate(capacity: 0)
    var count = 0
    var capacity = 0

    /// Doubles the capacity (at least 64).
    mutating func grow() {
        let bigger = UnsafeMutablePointer<ConnectionExtras>.allocate(
            capacity: max(64, capacity * 2))
        bigger.moveInitialize(from: items, count: count)
        items.deallocate()
        items = bigger
        capacity = max(64, capacity * 2)
    }
}

/// A read buffer that code on one loop's thread fills and consumes synchronously (never across
/// a suspension or a callback), so that one buffer serves every connection of the loop; and
/// the loop's buffers of the same size lent to async reads whose caller holds the bytes across
/// suspensions (`AsyncConnection.readLent(maxBytes:)`), kept for the next such read once
/// given back, so that in steady state lending allocates nothing.
// Invariant: `lend` and `giveBack` run only on the loop's thread (their callers check it), so
// the spare stack needs no lock.
final class ReadScratch {
    /// The memory (16-byte aligned).
    let base: UnsafeMutableRawPointer
    /// Its size in bytes.
    let byteCount: Int
    /// How many given-back buffers are kept for later reads; more are freed. A buffer is lent
    /// only from a read's arrival to the end of its caller's use of the bytes, so this bounds
    /// the memory kept, not the number of reads lending at once.
    static var maxSpares: Int { 8 }
    /// Buffers given back, `spareCount` of them, for the next reads.
    private let spares: UnsafeMutablePointer<UnsafeMutableRawPointer> = .allocate(
        capacity: ReadScratch.maxSpares)
    /// How many of `spares` hold a buffer.
    private(set) var spareCount = 0

    init(byteCount: Int) {
        self.byteCount = byteCount
        base = .allocate(byteCount: byteCount, alignment: 16)
    }

    /// A buffer of `byteCount` bytes for the caller to fill and hold until `giveBack`: a spare
    /// one, or a new one when none is.
    func lend() -> UnsafeMutableRawPointer {
        guard spareCount > 0 else { return .allocate(byteCount: byteCount, alignment: 16) }
        spareCount -= 1
        return spares[spareCount]
    }

    /// Takes back a buffer from `lend`: kept for the next one, or freed if enough are kept.
    func giveBack(_ buffer: UnsafeMutableRawPointer) {
        guard spareCount < Self.maxSpares else { return buffer.deallocate() }
        spares[spareCount] = buffer
        spareCount += 1
    }

    deinit {
        for index in 0..<spareCount { spares[index].deallocate() }
        spares.deallocate()
        base.deallocate()
    }
}

/// The requests a loop answers at the end of each turn, raised from any thread, in one word
/// so that the loop tests them all with one load. Non-generic, so that load needs no generic
/// metadata.
final class LoopSignals: Sendable {
    /// Tasks or jobs are queued in the handle from another thread (under its lock).
    static var tasks: UInt8 { 1 }
    /// `stop()` or `handle.stop()` was called; `run()` consumes it on its way out.
    static var stop: UInt8 { 2 }
    /// Jobs are queued from the loop's own thread (no lock: the loop takes them without one).
    static var localJobs: UInt8 { 4 }
    /// Either kind of queued work: what the loop tests once per turn.
    static var queued: UInt8 { tasks | localJobs }

    private let word = Atomic<UInt8>(0)
    /// The thread running the loop (`OSThread.currentID`), noted when `run` or `runOnce`
    /// starts: work queued from that thread needs no wake, since the loop checks the signals
    /// after each turn's dispatch and before it waits.
    let loopThread = Atomic<UInt>(0)

    /// The signals now raised.
    var current: UInt8 {
        @inline(__always) get { word.load(ordering: .acquiring) }
    }

    /// Raises `signal` (release: what was queued before it is visible to the loop).
    func raise(_ signal: UInt8) { word.bitwiseOr(signal, ordering: .acquiringAndReleasing) }

    /// Lowers `signal`; the signals raised before.
    @discardableResult
    func lower(_ signal: UInt8) -> UInt8 {
        word.bitwiseAnd(~signal, ordering: .acquiringAndReleasing).oldValue
    }
}
