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
///     func handle(_ event: Event, reactor: Reactor<DefaultSelector>) { /* read until .wouldBlock */ }
///     func deregistered(reactor: Reactor<DefaultSelector>) { try? Sys.close(pipe) }
/// }
/// ```
public protocol EventHandler<Backend>: _ErasedEventHandler {
    /// The selector type of the reactor this handler runs on.
    associatedtype Backend: EventSelector

    /// Readiness arrived for this handler's registration.
    func handle(_ event: Event, reactor: Reactor<Backend>)

    /// A timer scheduled for this handler with `tag` expired.
    func timerFired(tag: Int, reactor: Reactor<Backend>)

    /// A request this handler made through a completion backend (`EventSelector.completesIO`:
    /// `receive`, `send`, `accept`, `awaitReadable` with this handler's token) completed.
    func handle(_ completion: IOCompletion, reactor: Reactor<Backend>)

    /// The registration ended; called exactly once. Close the descriptor here.
    func deregistered(reactor: Reactor<Backend>)
}

extension EventHandler {
    /// Default: ignore timers.
    public func timerFired(tag: Int, reactor: Reactor<Backend>) {}

    /// Default: ignore completions (a handler that makes no completion requests gets none).
    public func handle(_ completion: IOCompletion, reactor: Reactor<Backend>) {}
}

/// The reactor's way into a handler without generic metadata: its table holds these plain
/// existentials, whose element type does not depend on `Backend`, so looking a handler up costs
/// array indexing even where `Reactor<Backend>` runs unspecialized. Every `EventHandler` gets
/// them from the extension below; do not implement or call them yourself.
public protocol _ErasedEventHandler: AnyObject {
    /// Forwards to `EventHandler.handle(_:reactor:)` on `handler` (an instance of `Self`),
    /// borrowing it: the reactor keeps it alive, so no retain/release per event.
    static func _dispatch(_ handler: Unmanaged<AnyObject>, _ event: Event, reactor: AnyObject)
    /// Forwards to `EventHandler.handle(_:reactor:)` for a completion.
    func _complete(_ completion: IOCompletion, reactor: AnyObject)
    /// Forwards to `EventHandler.timerFired(tag:reactor:)`.
    func _timerFired(tag: Int, reactor: AnyObject)
    /// Forwards to `EventHandler.deregistered(reactor:)`.
    func _deregistered(reactor: AnyObject)
}

extension EventHandler {
    /// Forwards to `handle(_:reactor:)`; `handler` is always a `Self` and `reactor` this
    /// handler's `Reactor<Backend>`.
    @inline(__always)
    public static func _dispatch(
        _ handler: Unmanaged<AnyObject>, _ event: Event, reactor: AnyObject
    ) {
        // Unchecked downcasts (Benchmarks/UNSAFE.md: checked `as!` casts cost 35 instructions
        // per event): the table stores each handler with its own type and calls it with the
        // reactor it is registered on.
        handler._withUnsafeGuaranteedRef { object in
            assert(object is Self && reactor is Reactor<Backend>, "handler or reactor type")
            unsafeDowncast(object, to: Self.self).handle(
                event, reactor: unsafeDowncast(reactor, to: Reactor<Backend>.self))
        }
    }

    /// Forwards a completion to `handle(_:reactor:)`.
    public func _complete(_ completion: IOCompletion, reactor: AnyObject) {
        // Checked: completions reach generic handlers (acceptors) per connection, not per
        // message.
        handle(completion, reactor: reactor as! Reactor<Backend>)
    }

    /// Forwards to `timerFired(tag:reactor:)`.
    public func _timerFired(tag: Int, reactor: AnyObject) {
        // Checked: once per timer, not per event.
        timerFired(tag: tag, reactor: reactor as! Reactor<Backend>)
    }

    /// Forwards to `deregistered(reactor:)`.
    public func _deregistered(reactor: AnyObject) {
        deregistered(reactor: reactor as! Reactor<Backend>)
    }
}
