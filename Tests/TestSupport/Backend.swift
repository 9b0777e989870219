import Selector
import SysCalls
import Testing

/// The real selector backends the suites run against; a new one is a case plus a line in each
/// switch.
public enum Backend: CaseIterable, CustomStringConvertible, Sendable {
    case epoll
    case poll
    #if canImport(Darwin) || Kqueue
    /// kqueue: the system's on Darwin and the BSDs; libkqueue on Linux (the Kqueue trait).
    case kqueue
    #endif
    #if os(Linux)
    /// io_uring in readiness mode (multishot poll). Where the kernel or a seccomp policy
    /// refuses io_uring, its test cases are cancelled with "io_uring unavailable: <errno>".
    case uring
    #endif

    /// Every backend available on this platform.
    public static var all: [Backend] { allCases }

    /// The backend's name, as `EventSelector.backendName` gives it.
    public var description: String {
        switch self {
        case .epoll: EpollSelector.backendName
        case .poll: PollSelector.backendName
        #if canImport(Darwin) || Kqueue
        case .kqueue: KqueueSelector.backendName
        #endif
        #if os(Linux)
        case .uring: URingSelector.backendName
        #endif
        }
    }

    /// The concrete selector type; generic scenarios open it as `S.Type`.
    public var selectorType: any EventSelector.Type {
        switch self {
        case .epoll: EpollSelector.self
        case .poll: PollSelector.self
        #if canImport(Darwin) || Kqueue
        case .kqueue: KqueueSelector.self
        #endif
        #if os(Linux)
        case .uring: URingSelector.self
        #endif
        }
    }

    /// Runs `scenario` against this backend's selector type inside `checkingDescriptorLeaks`
    /// (with that function's `grace` and `scope`). Cancels the test case, saying why, where
    /// the backend is refused at run time (`unavailability`).
    public func run(
        grace: Duration = .seconds(10), scope: LeakScope = .all,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ scenario: (any EventSelector.Type) throws -> Void
    ) throws {
        prepareForLeakCheck()
        if let unavailability { try Test.cancel(Comment(rawValue: unavailability)) }
        #if os(Linux)
        defer { if self == .uring { Self.absorbRingExitWork() } }
        #endif
        try checkingDescriptorLeaks(grace: grace, scope: scope, sourceLocation: sourceLocation) {
            try scenario(selectorType)
        }
    }

    /// Opens what the backend keeps for the process's lifetime (libkqueue's two descriptors)
    /// before a leak check snapshots the descriptors, so they do not count as a leak.
    public func prepareForLeakCheck() {
        #if Kqueue && !canImport(Darwin)
        if self == .kqueue { _ = Self.libkqueueStarted }
        #endif
    }

    #if os(Linux)
    /// A closed io_uring ring sends task work (TWA_SIGNAL) to every thread that submitted to it,
    /// a few milliseconds later (`URingSelector.close()`), which cuts that thread's next
    /// blocking call short with EINTR. Swift Testing runs the next test on the same worker
    /// thread, so a timing test of another backend would see it: sleep here (at most 50 ms)
    /// until it has been taken.
    private static func absorbRingExitWork() {
        // Returns early (EINTR, reported as 0 ready) once the task work has run.
        _ = try? Sys.poll(UnsafeMutableBufferPointer(start: nil, count: 0), timeoutMilliseconds: 50)
    }
    #endif

    /// Why this backend cannot run here (e.g. "io_uring unavailable: io_uring_setup: Operation
    /// not permitted (EPERM)"), or nil when it can.
    public var unavailability: String? {
        #if os(Linux)
        if self == .uring, let refusal = Self.uringRefusal {
            return "io_uring unavailable: \(refusal)"
        }
        #endif
        return nil
    }

    /// Cancels the test case, saying why, when `arguments` (an example server's command line)
    /// ask for a backend that is refused here (`--backend uring` where io_uring is not).
    public static func cancelIfUnavailable(arguments: [String]) throws {
        guard let flag = arguments.firstIndex(of: "--backend"), flag + 1 < arguments.count,
            let backend = all.first(where: { $0.description == arguments[flag + 1] }),
            let unavailability = backend.unavailability
        else { return }
        try Test.cancel(Comment(rawValue: unavailability))
    }

    #if os(Linux)
    /// What the kernel answered to a first `URingSelector()`, or nil if it made one. Asked once,
    /// before any leak check (the probe's descriptors are closed again at once).
    private static let uringRefusal: Errno? = {
        do throws(Errno) {
            _ = try URingSelector()
            return nil
        } catch {
            return error
        }
    }()
    #endif

    #if Kqueue && !canImport(Darwin)
    /// libkqueue opens two descriptors for the process's lifetime with its first kqueue (the
    /// thread that notices closed kqueues: an epoll set and an eventfd). Opened once, before
    /// any leak check, so that they are not counted as the first kqueue test's leak.
    private static let libkqueueStarted: Bool = {
        _ = try? KqueueSelector()
        return true
    }()
    #endif
}
