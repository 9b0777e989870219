import Selector
import SysCalls

/// Handlers indexed by token: `index | generation << 32`.
///
/// A slot's generation changes every time it is freed, so an event still queued for a
/// handler that was removed (and whose descriptor number and slot were reused) carries a
/// token that no longer matches and is dropped instead of reaching the new handler.
///
/// Nothing here depends on the reactor's `Backend`, so the per-event lookup is specialized code
/// even where `Reactor<Backend>` itself runs unspecialized. Dispatch borrows (no
/// retain/release per event): a slot holds an unretained reference and the handler's dynamic
/// type, whose static `_dispatch` calls the handler at +0. `owners` holds the strong
/// references; `remove` moves a handler's into `retired`, which the reactor empties
/// (`releaseRetired`) only between iterations, so a handler that removes itself mid-event
/// stays alive until its call returns. Slots live in manually managed memory so that reading
/// one copies no reference-counted storage.
final class HandlerTable {
    struct Slot {
        /// Borrowed; kept alive by `owners[index]` (or `retired`).
        var object: Unmanaged<AnyObject>
        /// The handler's dynamic type, through which it is called.
        var type: any _ErasedEventHandler.Type
        var generation: UInt32
        /// The free list's link: -2 marks a live slot, -1 ends the list.
        var nextFree: Int32
        var fd: FileDescriptor
    }

    // Unchecked exclusivity: used on the reactor's thread only, and no access overlaps another
    // (dispatch copies a slot out before calling its handler).
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<Slot>
    @exclusivity(unchecked) private var capacity = 0
    /// Slots ever used (live or free).
    @exclusivity(unchecked) private var used = 0
    @exclusivity(unchecked) private var owners: [(any _ErasedEventHandler)?] = []
    @exclusivity(unchecked) private var retired: [any _ErasedEventHandler] = []
    @exclusivity(unchecked) private var freeHead: Int32 = -1
    /// Live registrations.
    @exclusivity(unchecked) private(set) var count = 0

    init() {
        capacity = 64
        slots = .allocate(capacity: capacity)
    }

    deinit {
        slots.deinitialize(count: used)
        slots.deallocate()
    }

    func insert(_ handler: any _ErasedEventHandler, fd: FileDescriptor) -> Token {
        let index: Int
        let object = Unmanaged<AnyObject>.passUnretained(handler)
        if freeHead >= 0 {
            index = Int(freeHead)
            freeHead = slots[index].nextFree
            slots[index].object = object
            slots[index].type = type(of: handler)
            slots[index].nextFree = -2
            slots[index].fd = fd
            owners[index] = handler
        } else {
            if used == capacity { grow() }
            index = used
            (slots + index).initialize(
                to: Slot(
                    object: object, type: type(of: handler), generation: 0, nextFree: -2, fd: fd))
            used += 1
            owners.append(handler)
        }
        count += 1
        return Self.token(index: index, generation: slots[index].generation)
    }

    private func grow() {
        let bigger = UnsafeMutablePointer<Slot>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: slots, count: used)
        slots.deallocate()
        slots = bigger
        capacity *= 2
    }

    @inline(__always)
    static func token(index: Int, generation: UInt32) -> Token {
        Token(rawValue: UInt64(generation) << 32 | UInt64(UInt32(index)))
    }

    /// The live slot of `token`, or nil if it is stale or unknown.
    @inline(__always)
    func slotIndex(_ token: Token) -> Int? {
        let index = Int(token.rawValue & 0xFFFF_FFFF)
        guard index < used, slots[index].generation == UInt32(token.rawValue >> 32),
            slots[index].nextFree == -2
        else { return nil }
        return index
    }

    /// Calls `handle` on the live handler of `event.token` without retaining it; stale and
    /// unknown tokens are ignored.
    @inline(__always)
    func dispatch(_ event: Event, reactor: AnyObject) {
        guard let index = slotIndex(event.token) else { return }
        let slot = slots[index]
        slot.type._dispatch(slot.object, event, reactor: reactor)
    }

    /// The live handler of `token` (retained), or nil.
    func handler(for token: Token) -> (any _ErasedEventHandler)? {
        guard let index = slotIndex(token) else { return nil }
        return owners[index]
    }

    func fd(for token: Token) -> FileDescriptor? {
        slotIndex(token).map { slots[$0].fd }
    }

    /// Frees the slot of `token`; the handler stays alive until `releaseRetired()`.
    func remove(_ token: Token) -> (any _ErasedEventHandler, FileDescriptor)? {
        guard let index = slotIndex(token), let handler = owners[index] else { return nil }
        owners[index] = nil
        retired.append(handler)
        slots[index].generation &+= 1
        slots[index].nextFree = freeHead
        freeHead = Int32(index)
        count -= 1
        return (handler, slots[index].fd)
    }

    /// Drops the references of removed handlers (between loop iterations).
    @inline(__always)
    func releaseRetired() {
        if !retired.isEmpty { retired.removeAll(keepingCapacity: retired.capacity <= 1024) }
    }

    /// Every live token, for shutdown.
    func liveTokens() -> [Token] {
        (0..<used).compactMap { index in
            slots[index].nextFree == -2
                ? Self.token(index: index, generation: slots[index].generation) : nil
        }
    }
}
