import CSysCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A joinable POSIX thread running one Sendable closure. No Foundation needed.
///
/// ```swift
/// let thread = try OSThread(name: "reactor-0") { runLoop() }
/// thread.join()
/// ```
public final class OSThread: Sendable {
    // Invariant: written once in init before the thread can be joined; join is called at
    // most once (enforced by `joined`).
    nonisolated(unsafe) private var thread: ThreadID = noThread
    private let joined = Lock()
    nonisolated(unsafe) private var isJoined = false

    private final class Box: Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }

    /// Starts a thread running `body`; `name` (≤ 15 bytes shown) helps debuggers and `top -H`.
    public init(name: String = "swift-reactor", _ body: @escaping @Sendable () -> Void)
        throws(Errno)
    {
        let box = Unmanaged.passRetained(Box(body, name: name)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { raw in
                // Optional on Linux, not on Darwin: the binding makes one spelling serve both.
                let argument: UnsafeMutableRawPointer? = raw
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                csys_set_thread_name(String(decoding: box.name.utf8.prefix(15), as: UTF8.self))
                box.body()
                return nil
            }, box)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(result, call: "pthread_create")
        }
    }

    /// Waits for the thread to finish. Later calls return at once.
    public func join() {
        joined.withLock {
            if isJoined { return }
            isJoined = true
            pthread_join(handle(thread), nil)
        }
    }

    /// Whether the calling thread is this thread.
    public var isCurrent: Bool { pthread_equal(handle(thread), pthread_self()) != 0 }

    /// A number naming the calling thread, distinct among live threads (on Linux its thread
    /// pointer, equal to its `pthread_t` with glibc; elsewhere its `pthread_t`), for checks
    /// such as "still on the same thread". Inlinable and one instruction on Linux: async I/O
    /// asks it several times per call.
    @inlinable
    public static var currentID: UInt {
        UInt(csys_current_thread())
    }

    deinit { if !isJoined { pthread_detach(handle(thread)) } }
}

#if canImport(Glibc)
/// What pthread_create writes: glibc's `pthread_t` is an integer.
private typealias ThreadID = pthread_t
private var noThread: ThreadID { 0 }
@inline(__always) private func handle(_ id: ThreadID) -> pthread_t { id }
#else
/// What pthread_create writes: Darwin's and musl's `pthread_t` is a pointer, optional in Swift.
private typealias ThreadID = pthread_t?
private var noThread: ThreadID { nil }
@inline(__always) private func handle(_ id: ThreadID) -> pthread_t { id! }
#endif
