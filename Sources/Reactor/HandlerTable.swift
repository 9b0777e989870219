import Selector
import SysCalls

/// Handlers indexed by token: `index | generation << 32`.
///
/// A slot's generation changes every time it is freed, so an event still queued for a
/// handler that was removed (and whose descriptor number and slot were reused) carries a
/// token that no longer matches and is dropped instead of reaching the new handler.
///
/// Nothing here depends on the reactor's `Backend` (handlers are held as plain
/// `_ErasedEventHandler` existentials), so the per-event lookup is specialized array indexing
/// even where `Reactor<Backend>` itself runs unspecialized.
struct HandlerTable {
    private var handlers: [(any _ErasedEventHandler)?] = []
    private var generations: [UInt32] = []
    private var fds: [FileDescriptor] = []
    // The free list's links; -2 marks a live slot, -1 ends the list.
    private var nextFree: [Int32] = []
    private var freeHead: Int32 = -1
    private(set) var count = 0

    mutating func insert(_ handler: any _ErasedEventHandler, fd: FileDescriptor) -> Token {
        let index: Int
        if freeHead >= 0 {
            index = Int(freeHead)
            freeHead = nextFree[index]
            handlers[index] = handler
            fds[index] = fd
            nextFree[index] = -2
        } else {
            index = handlers.count
            handlers.append(handler)
            generations.append(0)
            fds.append(fd)
            nextFree.append(-2)
        }
        count += 1
        return Self.token(index: index, generation: generations[index])
    }

    @inline(__always)
    static func token(index: Int, generation: UInt32) -> Token {
        Token(rawValue: UInt64(generation) << 32 | UInt64(UInt32(index)))
    }

    /// The live slot of `token`, or nil if it is stale or unknown.
    @inline(__always)
    func slotIndex(_ token: Token) -> Int? {
        let index = Int(token.rawValue & 0xFFFF_FFFF)
        guard index < generations.count, generations[index] == UInt32(token.rawValue >> 32),
            nextFree[index] == -2
        else { return nil }
        return index
    }

    @inline(__always)
    func handler(for token: Token) -> (any _ErasedEventHandler)? {
        guard let index = slotIndex(token) else { return nil }
        return handlers[index]
    }

    func fd(for token: Token) -> FileDescriptor? {
        slotIndex(token).map { fds[$0] }
    }

    mutating func remove(_ token: Token) -> (any _ErasedEventHandler, FileDescriptor)? {
        guard let index = slotIndex(token), let handler = handlers[index] else { return nil }
        handlers[index] = nil
        generations[index] &+= 1
        nextFree[index] = freeHead
        freeHead = Int32(index)
        count -= 1
        return (handler, fds[index])
    }

    /// Every live token, for shutdown.
    func liveTokens() -> [Token] {
        generations.indices.compactMap { index in
            nextFree[index] == -2 ? Self.token(index: index, generation: generations[index]) : nil
        }
    }
}
