import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A descriptor shared across threads that one owner closes, safely against concurrent users.
///
/// Users run `withDescriptor`, which fails with EBADF once `close()` has begun; `close()` waits
/// for users already inside to leave before closing the number. So a late user never touches
/// whatever new file reused the number (the bug a plain `Int32` copy would have).
public final class SharedDescriptor: Sendable {
    /// The descriptor number. Valid only inside `withDescriptor` or on the owner's thread
    /// before `close()`.
    public let raw: FileDescriptor
    /// A second descriptor closed together with `raw` (a pipe's other end), or nil.
    public let companion: FileDescriptor?
    // Bit 0: closed. Bits 1…: number of users inside `withDescriptor`, times 2.
    @usableFromInline let state = Atomic<Int>(0)

    /// Takes ownership of `raw`, and of `companion` if given: `close()` closes both.
    public init(_ raw: FileDescriptor, companion: FileDescriptor? = nil) {
        self.raw = raw
        self.companion = companion
    }

    deinit {
        if state.load(ordering: .relaxed) & 1 == 0 {
            try? Sys.close(raw)
            if let companion { try? Sys.close(companion) }
        }
    }

    /// True once `close()` has been called.
    @inlinable
    public var isClosed: Bool { state.load(ordering: .acquiring) & 1 != 0 }

    /// Runs `body` with the descriptor, or throws EBADF (tagged `call`) if it is closed.
    @inline(__always)
    public func withDescriptor<R>(
        _ call: StaticString, _ body: (FileDescriptor) throws(Errno) -> R
    ) throws(Errno) -> R {
        let before = state.wrappingAdd(2, ordering: .acquiring).oldValue
        defer { state.wrappingSubtract(2, ordering: .releasing) }
        if before & 1 != 0 { throw Errno(EBADF, call: call) }
        return try body(raw)
    }

    /// Marks the descriptor closed, waits for current users to finish, then closes it.
    /// Returns false if it was already closed.
    @discardableResult
    public func close() -> Bool {
        let before = state.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        if before & 1 != 0 { return false }
        // Users hold the guard only for one non-blocking syscall, so this wait is short.
        while state.load(ordering: .acquiring) > 1 { sched_yield() }
        try? Sys.close(raw)
        if let companion { try? Sys.close(companion) }
        return true
    }
}
