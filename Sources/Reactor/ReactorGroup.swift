import Selector
import Synchronization
import SysCalls

/// N reactors on N threads, started and stopped together.
///
/// Each thread builds its own reactor and runs `setup` on it (e.g. bind a listener with
/// `reusePort: true` and start an `Acceptor`, so the kernel spreads connections across
/// threads), then runs it. `next()` hands out handles round-robin for accept-and-hand-off
/// designs.
///
/// ```swift
/// let group = try ReactorGroup<DefaultSelector>(threads: 2) { reactor, index in
///     let listener = try TCPListener(binding: address, reusePort: true)
///     try Acceptor(listener: listener, reactor: reactor) { … }.start()
/// }
/// group.stop()
/// ```
public final class ReactorGroup<Backend: EventSelector>: Sendable {
    /// Sets up one reactor on its own thread before it runs.
    public typealias Setup = @Sendable (Reactor<Backend>, Int) throws -> Void

    /// The reactors' handles, one per thread, in thread order.
    public let handles: [Reactor<Backend>.Handle]
    private let threads: [OSThread]
    private let cursor = Atomic<Int>(0)

    /// Starts `threads` reactors one after another, each set up by `setup` on its own thread;
    /// returns once all are running. If a setup fails, stops the others and throws its error.
    /// A `count` below 1 throws `ArgumentError` before any thread starts.
    public init(threads count: Int, setup: @escaping Setup) throws {
        guard count > 0 else {
            throw ArgumentError("ReactorGroup threads", count, "a group needs at least 1 reactor")
        }
        let ready = Lock()
        let startup = GroupStartup<Backend>(count)
        var started: [OSThread] = []
        for index in 0..<count {
            started.append(
                try OSThread(name: "reactor-\(index)") {
                    let reactor: Reactor<Backend>
                    do {
                        reactor = try Reactor<Backend>()
                        try setup(reactor, index)
                    } catch {
                        ready.withLock {
                            startup.errors[index] = error
                            startup.reported += 1
                            ready.broadcast()
                        }
                        return
                    }
                    ready.withLock {
                        startup.handles[index] = reactor.handle
                        startup.reported += 1
                        ready.broadcast()
                    }
                    try? reactor.run()
                })
            // One at a time: a later setup may rely on an earlier one (e.g. the port that
            // reactor 0 bound when asked for port 0).
            let failed = ready.withLock {
                while startup.reported <= index { _ = ready.wait(until: nil) }
                return startup.errors[index] != nil
            }
            if failed { break }
        }
        let handles = startup.handles.compactMap { $0 }
        if let failure = startup.errors.compactMap({ $0 }).first {
            handles.forEach { $0.stop() }
            started.forEach { $0.join() }
            throw failure
        }
        self.handles = handles
        self.threads = started
    }

    /// The next reactor's handle, round-robin.
    public func next() -> Reactor<Backend>.Handle {
        handles[cursor.wrappingAdd(1, ordering: .relaxed).oldValue % handles.count]
    }

    /// Stops every reactor (each shuts its handlers down) and waits for the threads.
    public func stop() {
        handles.forEach { $0.stop() }
        threads.forEach { $0.join() }
    }
}

/// What the group's threads report while starting.
// Invariant: every field is written by the reactor threads only with the group's startup
// lock held, and read by the starting thread with it held or after all threads reported.
final class GroupStartup<Backend: EventSelector>: @unchecked Sendable {
    var handles: [Reactor<Backend>.Handle?]
    var errors: [(any Error)?]
    var reported = 0

    init(_ count: Int) {
        handles = Array(repeating: nil, count: count)
        errors = Array(repeating: nil, count: count)
    }
}
