import Selector
import SysCalls

/// Handlers indexed by token: `index | generation << 32`.
///
/// A slot's generation changes every time it is freed, so an event still queued for a
/// handler that was removed (and whose descriptor number and slot were reused) carries a
/// token that no longer matches and is dropped instead of reaching the new handler.
struct HandlerTable<Backend: EventSelector> {
    struct Slot {
        var handler: (any EventHandler<Backend>)?
        var fd: FileDescriptor
        var generation: UInt32
        var nextFree: Int32
    }

    private(set) var slots: [Slot] = []
    private var freeHead: Int32 = -1
    private(set) var count = 0

    mutating func insert(_ handler: any EventHandler<Backend>, fd: FileDescriptor) -> Token {
        let index: Int
        if freeHead >= 0 {
            index = Int(freeHead)
            freeHead = slots[index].nextFree
            slots[index].handler = handler
            slots[index].fd = fd
        } else {
            index = slots.count
            slots.append(Slot(handler: handler, fd: fd, generation: 0, nextFree: -1))
        }
        count += 1
        return Self.token(index: index, generation: slots[index].generation)
    }

    @inline(__always)
    static func token(index: Int, generation: UInt32) -> Token {
        Token(rawValue: UInt64(generation) << 32 | UInt64(UInt32(index)))
    }

    @inline(__always)
    func slotIndex(_ token: Token) -> Int? {
        let index = Int(token.rawValue & 0xFFFF_FFFF)
        guard index < slots.count, slots[index].generation == UInt32(token.rawValue >> 32),
            slots[index].handler != nil
        else { return nil }
        return index
    }

    @inline(__always)
    func handler(for token: Token) -> (any EventHandler<Backend>)? {
        guard let index = slotIndex(token) else { return nil }
        return slots[index].handler
    }

    func fd(for token: Token) -> FileDescriptor? {
        slotIndex(token).map { slots[$0].fd }
    }

    mutating func remove(_ token: Token) -> (any EventHandler<Backend>, FileDescriptor)? {
        guard let index = slotIndex(token), let handler = slots[index].handler else { return nil }
        let fd = slots[index].fd
        slots[index].handler = nil
        slots[index].generation &+= 1
        slots[index].nextFree = freeHead
        freeHead = Int32(index)
        count -= 1
        return (handler, fd)
    }

    /// Every live token, for shutdown.
    func liveTokens() -> [Token] {
        slots.indices.compactMap { index in
            slots[index].handler == nil
                ? nil : Self.token(index: index, generation: slots[index].generation)
        }
    }
}
