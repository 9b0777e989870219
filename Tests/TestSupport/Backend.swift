import Selector
import SysCalls
import Testing

/// The real selector backends the suites run against; a new one is a case plus a line in each
/// switch.
public enum Backend: CaseIterable, CustomStringConvertible, Sendable {
    case epoll
    case poll

    /// Every backend available on this platform.
    public static var all: [Backend] { allCases }

    /// The backend's name, as `EventSelector.backendName` gives it.
    public var description: String {
        switch self {
        case .epoll: EpollSelector.backendName
        case .poll: PollSelector.backendName
        }
    }

    /// The concrete selector type; generic scenarios open it as `S.Type`.
    public var selectorType: any EventSelector.Type {
        switch self {
        case .epoll: EpollSelector.self
        case .poll: PollSelector.self
        }
    }

    /// Runs `scenario` against this backend's selector type inside `checkingDescriptorLeaks`
    /// (with that function's `grace` and `scope`).
    public func run(
        grace: Duration = .seconds(10), scope: LeakScope = .all,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ scenario: (any EventSelector.Type) throws -> Void
    ) throws {
        try checkingDescriptorLeaks(grace: grace, scope: scope, sourceLocation: sourceLocation) {
            try scenario(selectorType)
        }
    }
}
