import SysCalls

/// A spare descriptor kept for the moment the process runs out of them, so a server at the
/// descriptor limit can still turn clients away instead of leaving them hanging.
///
/// At EMFILE/ENFILE `accept` fails before it looks at the listen queue, so queued clients
/// would wait until they time out. `turnAwayOne(from:)` frees the spare, accepts one client
/// into the freed number, closes it (the client sees a clean EOF) and only then takes the
/// spare back: reopening first would find no number free and lose the reserve for good.
///
/// ```swift
/// var reserve = DescriptorReserve()
/// // accept() threw EMFILE:
/// while case .turnedAway = reserve.turnAwayOne(from: listener) {}
/// ```
public struct DescriptorReserve: ~Copyable {
    /// What one `turnAwayOne(from:)` did.
    public enum Outcome: Equatable, Sendable {
        /// A queued client was accepted and closed; the spare is held again.
        case turnedAway
        /// No client was queued; the spare is held again. Wait for the next readiness.
        case queueEmpty
        /// The spare was missing or could not be reopened, or the accept failed: retry later
        /// (on a timer: without a would-block, edge-triggered readiness will not fire again).
        case failed
    }

    private var spare: OwnedFileDescriptor?
    /// Clients accepted only to be closed, over this reserve's life.
    public private(set) var turnedAwayCount = 0

    /// Opens the spare descriptor (`Sys.openSpareDescriptor`). If even that fails, the reserve starts
    /// empty and `turnAwayOne(from:)` tries to open it again each time.
    public init() {
        spare = try? OwnedFileDescriptor(Sys.openSpareDescriptor())
    }

    /// Whether the spare descriptor is held.
    public var isHeld: Bool { spare != nil }

    /// Frees the spare, accepts one queued client from `listener` and closes it, then takes
    /// the spare back.
    public mutating func turnAwayOne<Listener: ListenerSocket>(from listener: Listener)
        -> Outcome
    {
        guard let freed = spare.take() else {
            spare = try? OwnedFileDescriptor(Sys.openSpareDescriptor())
            return .failed
        }
        try? freed.close()
        var outcome = Outcome.turnedAway
        switch try? listener.accept() {
        case .processed(let (stream, _))?:
            // Closed before the spare is reopened: that reopen needs this number.
            try? stream.close()
            turnedAwayCount += 1
        case .wouldBlock?:
            outcome = .queueEmpty
        case nil:
            outcome = .failed  // e.g. another thread took the freed number
        }
        spare = try? OwnedFileDescriptor(Sys.openSpareDescriptor())
        return spare == nil ? .failed : outcome
    }

    /// Closes the spare descriptor now (the reserve is no longer needed).
    public mutating func close() {
        spare = nil
    }
}
