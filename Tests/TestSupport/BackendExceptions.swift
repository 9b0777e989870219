import Selector

/// Where a backend cannot keep a conformance guarantee (CONFORMANCE.md, "Exceptions"): the
/// scenario still runs for it and asserts the behaviour named here instead. README's backend
/// table lists the same.
public enum BackendException: Sendable {
    /// libkqueue reports EPOLLERR on a socket by reading SO_ERROR into the event's `fflags`,
    /// which clears it: the event carries `.error`, but SO_ERROR then reads 0, and a reset
    /// socket reads end-of-file instead of ECONNRESET (scenarios 7 and 14; Net's refused
    /// connect and peer reset). BSD kernels leave SO_ERROR alone.
    case socketErrorConsumedByEvent
    /// kqueue has no out-of-band filter that every kqueue implements (libkqueue none):
    /// `.priority` interest is accepted and never reported (scenario 15).
    case noPriorityEvents
    /// libkqueue keeps one epoll registration per descriptor for both filters and, when the
    /// second filter joins, rebuilds its mask from EPOLLIN and EPOLLOUT alone: EPOLLRDHUP is
    /// lost. A peer's end of file that arrives with data is then reported as readable without
    /// EV_EOF, and no later event reports it; after a short read the end of file is still
    /// there to read (scenario 13, both directions watched). BSD kqueue sets EV_EOF. Hence
    /// `KqueueSelector.shortReadMeansDrained` is false on Linux: readers read on until the
    /// socket would block.
    case endOfFileUnreportedWithBothFilters
    /// io_uring's poll request holds a reference to its file: a descriptor closed without
    /// deregistering once its poll was armed stays open in the kernel (the peer sees no close)
    /// and keeps reporting events under its token, until it is deregistered by its old number
    /// (which releases the file) or the selector closes (scenario 3).
    case closedDescriptorStaysWatched

    /// Whether the backend `S` has this exception on this platform.
    public func applies<S: EventSelector>(to _: S.Type) -> Bool {
        if self == .closedDescriptorStaysWatched { return S.backendName == "uring" }
        guard S.backendName == "kqueue" else { return false }
        switch self {
        case .closedDescriptorStaysWatched:
            return false
        case .noPriorityEvents:
            return true
        case .socketErrorConsumedByEvent, .endOfFileUnreportedWithBothFilters:
            #if canImport(Darwin)
            return false
            #else
            return true
            #endif
        }
    }
}
