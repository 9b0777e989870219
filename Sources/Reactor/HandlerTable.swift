import Selector
import SysCalls

/// Handlers indexed by token: `index | tag << 32`, where a slot's tag is
/// `generation << 8 | kind`.
///
/// A slot's generation (24 bits) changes every time it is freed, so an event still queued for
/// a handler that was removed (and whose descriptor number and slot were reused) carries a
/// token that no longer matches and is dropped instead of reaching the new handler.
///
/// Nothing here depends on the reactor's `Backend` (`dispatch` names it only to call the
/// reactor's `Connection`s and uses no metadata of it), so the per-event lookup runs at full
/// speed even where `Reactor<Backend>` itself runs unspecialized. Dispatch borrows (no
/// retain/release per event): a slot holds an unretained reference and the handler's dynamic
/// type, whose static `_dispatch` calls the handler at +0. `owners` holds the strong
/// references; `remove` moves a handler's into `retired`, which the reactor empties
/// (`releaseRetired`) only between iterations, so a handler that removes itself mid-event
/// stays alive until its call returns. Slots live in manually managed memory so that reading
/// one copies no reference-counted storage.
///
/// The kind in the tag (and so in every token) says how to call the handler: the reactor's
/// own `Connection`s directly (their event code inlined into the dispatch loop), any other
/// handler through its type. A free slot's kind is zero, which no token carries, so one
/// compare of the tag checks both that the slot is live and that the token is current.
final class HandlerTable {
    /// What a slot holds.
    enum Kind: UInt8 {
        /// Nothing: the slot is on the free list.
        case free
        /// A `Connection<Backend>` of this table's reactor.
        case connection
        /// A handler reached through its dynamic type (`_dispatch`).
        case handler
    }

    /// 32 bytes, so a slot's address is one shift away from its index.
    struct Slot {
        /// Borrowed; kept alive by `owners[index]` (or `retired`).
        var object: Unmanaged<AnyObject>
        /// The handler's dynamic type, through which it is called.
        var type: any _ErasedEventHandler.Type
        /// `generation << 8 | kind`.
        var tag: UInt32
        /// The descriptor while the slot is live; the free list's next index (-1 ends it)
        /// while it is free.
        var link: Int32

        var kind: Kind { Kind(rawValue: UInt8(truncatingIfNeeded: tag)) ?? .free }
    }

    // Used on the reactor's thread only, and no access overlaps another (dispatch copies a
    // slot out before calling its handler).
    private var slots: UnsafeMutablePointer<Slot>
    private var capacity = 0
    /// Slots ever used (live or free).
    private var used = 0
    private var owners: [(any _ErasedEventHandler)?] = []
    // Unchecked exclusivity (Benchmarks/UNSAFE.md: 84 instructions per echo at 1 connection):
    // tested once per loop turn.
    @exclusivity(unchecked) private var retired: [any _ErasedEventHandler] = []
    private var freeHead: Int32 = -1
    /// Live registrations.
    private(set) var count = 0

    init() {
        capacity = 64
        slots = .allocate(capacity: capacity)
    }

    deinit {
        slots.deinitialize(count: used)
        slots.deallocate()
    }

    /// Adds `handler` (of `kind`, which must not be `.free`) for `fd`; returns its token.
    func insert(
        _ handler: any _ErasedEventHandler, fd: FileDescriptor, kind: Kind = .handler
    ) -> Token {
        precondition(kind != .free, "HandlerTable.insert: a live slot needs a kind")
        let index: Int
        let object = Unmanaged<AnyObject>.passUnretained(handler)
        if freeHead >= 0 {
            index = Int(freeHead)
            freeHead = slots[index].link
            slots[index].object = object
            slots[index].type = type(of: handler)
            slots[index].tag = slots[index].tag & ~0xFF | UInt32(kind.rawValue)
            slots[index].link = fd.rawValue
            owners[index] = handler
        } else {
            if used == capacity { grow() }
            index = used
            (slots + index).initialize(
                to: Slot(
                    object: object, type: type(of: handler), tag: UInt32(kind.rawValue),
                    link: fd.rawValue))
            used += 1
            owners.append(handler)
        }
        count += 1
        return Self.token(index: index, tag: slots[index].tag)
    }

    private func grow() {
        let bigger = UnsafeMutablePointer<Slot>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: slots, count: used)
        slots.deallocate()
        slots = bigger
        capacity *= 2
    }

    @inline(__always)
    static func token(index: Int, tag: UInt32) -> Token {
        Token(rawValue: UInt64(tag) << 32 | UInt64(UInt32(index)))
    }

    /// The live slot of `token`, or nil if it is stale or unknown.
    @inline(__always)
    func slotIndex(_ token: Token) -> Int? {
        guard let index = matchingIndex(token), slots[index].kind != .free else { return nil }
        return index
    }

    /// The slot whose tag `token` carries, or nil. The slot is live unless the token was not
    /// made by this table (a free slot's kind, zero, is in none of its tokens); dispatch tests
    /// the kind next anyway, so it skips `slotIndex`'s test.
    @inline(__always)
    private func matchingIndex(_ token: Token) -> Int? {
        let index = Int(truncatingIfNeeded: UInt32(truncatingIfNeeded: token.rawValue))
        guard index < used, slots[index].tag == UInt32(truncatingIfNeeded: token.rawValue >> 32)
        else { return nil }
        return index
    }

    /// Whether live slot `index` holds one of the reactor's `Connection`s (else a handler
    /// called through its type).
    @inline(__always)
    private func isConnection(_ index: Int) -> Bool {
        UInt8(truncatingIfNeeded: slots[index].tag) == Kind.connection.rawValue
    }

    /// Calls the live handler of `event.token` without retaining it: a `Connection` directly
    /// (inlined), any other handler through its type. Stale and unknown tokens are ignored.
    @inline(__always)
    func dispatch<Backend>(_ event: Event, reactor: Reactor<Backend>, context: LoopContext) {
        guard let index = matchingIndex(event.token) else { return }
        if isConnection(index) {
            withConnection(at: index, of: reactor) { $0.handleEvent(event, in: context) }
        } else {
            callHandler(at: index, event, reactor)
        }
    }

    /// `dispatch` for an event that reports readability alone (the common one): a
    /// `Connection` reads without testing the event's other bits.
    @inline(__always)
    func dispatchReadable<Backend>(_ token: Token, reactor: Reactor<Backend>, context: LoopContext)
    {
        guard let index = matchingIndex(token) else { return }
        guard isConnection(index) else {
            return callHandlerReadable(at: index, token, reactor)
        }
        withConnection(at: index, of: reactor) { $0.handleReadable(in: context) }
    }

    /// Calls `body` with the `Connection` of live `.connection` slot `index`, borrowed.
    @inline(__always)
    private func withConnection<Backend>(
        at index: Int, of reactor: Reactor<Backend>, _ body: (Connection<Backend>) -> Void
    ) {
        let slot = slots + index
        // Borrowed and downcast unchecked (Benchmarks/UNSAFE.md: a retained reference costs
        // 47 instructions per echo, a checked `as!` 371): the slot's object is owned by
        // `owners[index]` while the slot is live, and a `.connection` slot only ever holds
        // a `Connection<Backend>` of this reactor (`Reactor.register(_:interest:)`).
        assert(owners[index].map { $0 === slot.pointee.object.takeUnretainedValue() } == true)
        slot.pointee.object._withUnsafeGuaranteedRef {
            assert($0 is Connection<Backend>, "a .connection slot holds another type")
            body(unsafeDowncast($0, to: Connection<Backend>.self))
        }
    }

    /// `callHandler` with a readable-only event, out of line: the readable-only loop keeps its
    /// registers for connections.
    @inline(never)
    private func callHandlerReadable<Backend>(
        at index: Int, _ token: Token, _ reactor: Reactor<Backend>
    ) {
        callHandler(at: index, Event(token: token, readiness: .readable), reactor)
    }

    /// Calls the handler of slot `index` (`matchingIndex`, not a `Connection`'s) with `event`;
    /// nothing if the slot is free (a token this table did not make).
    @inline(__always)
    private func callHandler<Backend>(at index: Int, _ event: Event, _ reactor: Reactor<Backend>) {
        let slot = slots + index
        guard slot.pointee.kind == .handler else { return }
        assert(owners[index].map { $0 === slot.pointee.object.takeUnretainedValue() } == true)
        slot.pointee.type._dispatch(slot.pointee.object, event, reactor: reactor)
    }

    /// Calls the live handler of `completion.token` with it, as `dispatch` does events; false
    /// if the token is stale or unknown.
    @inline(__always)
    func dispatch<Backend>(
        _ completion: IOCompletion, reactor: Reactor<Backend>, context: LoopContext
    ) -> Bool {
        guard let index = matchingIndex(completion.token) else { return false }
        if isConnection(index) {
            withConnection(at: index, of: reactor) { $0.handleCompletion(completion) }
            return true
        }
        guard slots[index].kind == .handler, let handler = owners[index] else { return false }
        handler._complete(completion, reactor: reactor)
        return true
    }

    /// The live handler of `token` (retained), or nil.
    func handler(for token: Token) -> (any _ErasedEventHandler)? {
        guard let index = slotIndex(token) else { return nil }
        return owners[index]
    }

    func fd(for token: Token) -> FileDescriptor? {
        slotIndex(token).map { FileDescriptor(rawValue: slots[$0].link) }
    }

    /// Frees the slot of `token`; the handler stays alive until `releaseRetired()`.
    func remove(_ token: Token) -> (any _ErasedEventHandler, FileDescriptor)? {
        guard let index = slotIndex(token), let handler = owners[index] else { return nil }
        let fd = FileDescriptor(rawValue: slots[index].link)
        owners[index] = nil
        retired.append(handler)
        // Next generation (24 bits, wrapping), kind free.
        slots[index].tag = (slots[index].tag >> 8 &+ 1) << 8
        slots[index].link = freeHead
        freeHead = Int32(index)
        count -= 1
        return (handler, fd)
    }

    /// Drops the references of removed handlers (between loop iterations); returns whether
    /// there were any.
    @inline(__always) @discardableResult
    func releaseRetired() -> Bool {
        if retired.isEmpty { return false }
        retired.removeAll(keepingCapacity: retired.capacity <= 1024)
        return true
    }

    /// Every live token, for shutdown.
    func liveTokens() -> [Token] {
        (0..<used).compactMap { index in
            slots[index].kind != .free ? Self.token(index: index, tag: slots[index].tag) : nil
        }
    }
}
