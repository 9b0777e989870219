import Glibc
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

// Select loops with deadlines and expectations over the events they see.

// MARK: - Selecting

/// Selects until `duration` has passed; returns every event seen.
func gather<S: EventSelector>(_ selector: S, for duration: Duration, capacity: Int = 64) throws
    -> [Event]
{
    var events = Events(capacity: capacity)
    var seen: [Event] = []
    let deadline = ContinuousClock.now + duration
    while true {
        let remaining = deadline - ContinuousClock.now
        if remaining <= .zero { return seen }
        try selector.select(into: &events, timeout: remaining)
        seen.append(contentsOf: events)
    }
}

/// Selects until the readiness reported for `token` (accumulated over events) satisfies
/// `done`, or `timeout` passes. Returns that readiness and every event seen on the way.
func awaitReadiness<S: EventSelector>(
    _ selector: S, token: Token, timeout: Duration = .seconds(2),
    until done: (Event.Readiness) -> Bool
) throws -> (readiness: Event.Readiness, events: [Event]) {
    var events = Events(capacity: 64)
    var seen: [Event] = []
    var readiness: Event.Readiness = []
    let deadline = ContinuousClock.now + timeout
    while !done(readiness) {
        let remaining = deadline - ContinuousClock.now
        if remaining <= .zero { break }
        try selector.select(into: &events, timeout: remaining)
        for event in events {
            seen.append(event)
            if event.token == token { readiness.formUnion(event.readiness) }
        }
    }
    return (readiness, seen)
}

/// Selects until an event for `token` arrives (readiness containing `wanted`), or fails.
@discardableResult
func expectEvent<S: EventSelector>(
    _ selector: S, token: Token, _ wanted: Event.Readiness, timeout: Duration = .seconds(2),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [Event] {
    let (readiness, events) = try awaitReadiness(selector, token: token, timeout: timeout) {
        $0.isSuperset(of: wanted)
    }
    #expect(
        readiness.isSuperset(of: wanted),
        "\(token): wanted \(Event(token: token, readiness: wanted)), saw \(events)",
        sourceLocation: sourceLocation)
    return events
}

/// Selects for `duration` and expects no event for `token`.
func expectNoEvent<S: EventSelector>(
    _ selector: S, token: Token, for duration: Duration = .milliseconds(50),
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let events = try gather(selector, for: duration)
    #expect(
        !events.contains { $0.token == token }, "unexpected event for \(token): \(events)",
        sourceLocation: sourceLocation)
}

/// Runs `body` (which selects with no timeout) with a watchdog: a pipe registered under
/// `watchdogToken` becomes readable after five seconds, so a select that would hang forever
/// returns and the test fails instead.
func withWatchdog<S: EventSelector>(_ selector: S, _ body: () throws -> Void) throws {
    let (read, write) = try Sys.pipe2()
    defer {
        try? Sys.close(read)
        try? Sys.close(write)
    }
    try selector.register(read, token: watchdogToken, interest: .readable)
    let cancelled = Lock()
    let flag = Atomic<Bool>(false)
    let thread = try TestThread {
        let deadline = ContinuousClock.now + .seconds(5)
        cancelled.withLock {
            while !flag.load(ordering: .acquiring) {
                if !cancelled.wait(until: deadline) { break }
            }
        }
        if !flag.load(ordering: .acquiring) { try? send(write, "!") }
    }
    defer {
        cancelled.withLock {
            flag.store(true, ordering: .releasing)
            cancelled.broadcast()
        }
        thread.join()
        try? selector.deregister(read)
    }
    try body()
}

/// Selects until an event has arrived for each of `tokens`, or `timeout` passes; returns
/// every event seen.
func awaitTokens<S: EventSelector>(
    _ selector: S, _ tokens: Set<Token>, timeout: Duration = .seconds(2)
) throws -> [Event] {
    var events = Events(capacity: 64)
    var seen: [Event] = []
    var missing = tokens
    let deadline = ContinuousClock.now + timeout
    while !missing.isEmpty {
        let remaining = deadline - ContinuousClock.now
        if remaining <= .zero { break }
        try selector.select(into: &events, timeout: remaining)
        for event in events {
            seen.append(event)
            missing.remove(event.token)
        }
    }
    return seen
}

/// Expects `body` to fail with `expected`, as an `Errno` whose message names it.
func expectErrno<R>(
    _ expected: Errno, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) {
    do {
        let result = try body()
        Issue.record(
            "expected \(expected.name), got success: \(result)", sourceLocation: sourceLocation)
    } catch let error as Errno {
        #expect(error == expected, "got \(error)", sourceLocation: sourceLocation)
        #expect(
            error.description.contains(expected.name), "message \"\(error)\" does not name it",
            sourceLocation: sourceLocation)
    } catch {
        Issue.record(
            "expected Errno \(expected.name), got \(error)", sourceLocation: sourceLocation)
    }
}

/// The token of `withWatchdog`'s pipe: seeing it means a select waited five seconds.
let watchdogToken = Token(rawValue: UInt64.max - 1)
