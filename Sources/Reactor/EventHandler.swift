import Selector

/// The plug-in point of a `Reactor`: an object that owns a descriptor and reacts to its events.
///
/// The reactor calls `handle(_:reactor:)` on its own thread for every event of the
/// handler's registration, `timerFired(tag:reactor:)` for timers scheduled with
/// `Reactor.scheduleTimer(after:for:tag:)`, and `deregistered(reactor:)` exactly once when
/// the registration ends (by `Reactor.deregister` or reactor shutdown) — the place to close
/// the descriptor. Events are edge-triggered: do I/O until it would block.
///
/// ```swift
/// final class Printer: EventHandler {
///     let pipe: FileDescriptor
///     func handle(_ event: Event, reactor: Reactor<EpollSelector>) { /* read until .wouldBlock */ }
///     func deregistered(reactor: Reactor<EpollSelector>) { try? Sys.close(pipe) }
/// }
/// ```
public protocol EventHandler<Backend>: AnyObject {
    /// The selector type of the reactor this handler runs on.
    associatedtype Backend: EventSelector

    /// Readiness arrived for this handler's registration.
    func handle(_ event: Event, reactor: Reactor<Backend>)

    /// A timer scheduled for this handler with `tag` expired.
    func timerFired(tag: Int, reactor: Reactor<Backend>)

    /// The registration ended; called exactly once. Close the descriptor here.
    func deregistered(reactor: Reactor<Backend>)
}

extension EventHandler {
    /// Default: ignore timers.
    public func timerFired(tag: Int, reactor: Reactor<Backend>) {}
}
