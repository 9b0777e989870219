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
        }
    }

    /// Runs `scenario` against this backend's selector type inside `checkingDescriptorLeaks`
    /// (with that function's `grace` and `scope`).
    public func run(
        grace: Duration = .seconds(10), scope: LeakScope = .all,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ scenario: (any EventSelector.Type) throws -> Void
    ) throws {
        #if Kqueue && !canImport(Darwin)
        if self == .kqueue { _ = Self.libkqueueStarted }
        #endif
        try checkingDescriptorLeaks(grace: grace, scope: scope, sourceLocation: sourceLocation) {
            try scenario(selectorType)
        }
    }

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
