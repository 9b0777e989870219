import Glibc
import Reactor
import Selector
import Synchronization
import SysCalls
import Testing

/// Reactor.Handle used from other threads against a real selector.
enum HandleScenarios {
    /// Counts tasks and whether each ran on the reactor thread.
    final class Tally: Sendable {
        let onReactor = Atomic<Int>(0)
        let elsewhere = Atomic<Int>(0)
        let reactorThread = Atomic<UInt>(0)

        var onReactorCount: Int { onReactor.load(ordering: .relaxed) }
        var elsewhereCount: Int { elsewhere.load(ordering: .relaxed) }

        func record() {
            if UInt(pthread_self()) == reactorThread.load(ordering: .acquiring) {
                onReactor.add(1, ordering: .relaxed)
            } else {
                elsewhere.add(1, ordering: .relaxed)
            }
        }
    }

    /// A reactor with nothing to do blocks in select with no timeout. `execute` from the test
    /// thread and from four other threads, and `schedule(after:)`, all run on the reactor
    /// thread, promptly (the schedule not before its delay). After the reactor is gone,
    /// `execute` fails with EBADF.
    static func executeAndScheduleWakeABlockedReactor<S: EventSelector>(_: S.Type) throws {
        let server = try ServerThread<S> { _ in 0 }
        var stopped = false
        defer { if !stopped { server.stop() } }
        let tally = Tally()
        tally.reactorThread.store(server.threadID, ordering: .releasing)
        // Nothing registered, no timers: after this the loop sits in select(timeout: nil).
        let idle = try onReactor(server.handle) { reactor in
            (reactor.handlerCount, reactor.timerCount)
        }
        #expect(idle.0 == 0 && idle.1 == 0)
        usleep(100_000)

        let started = ContinuousClock.now
        let ran = try onReactor(server.handle) { _ in
            tally.record()
            return ContinuousClock.now
        }
        #expect(ran - started < .seconds(1))

        let delay = Duration.milliseconds(150)
        let fired = Completion<ContinuousClock.Instant>()
        usleep(50_000)
        let scheduled = ContinuousClock.now
        try server.handle.schedule(after: delay) { _ in
            tally.record()
            fired.complete(ContinuousClock.now)
        }
        let firedAt = try #require(fired.wait(timeout: .seconds(5)), "scheduled task never ran")
        #expect(firedAt - scheduled >= delay)
        #expect(firedAt - scheduled < delay + .seconds(1))

        let handle = server.handle
        let producers = try (0..<4).map { index in
            try OSThread(name: "producer-\(index)") {
                for _ in 0..<100 { try? handle.execute { _ in tally.record() } }
            }
        }
        producers.forEach { $0.join() }
        let deadline = ContinuousClock.now + .seconds(5)
        while tally.onReactorCount < 402 && ContinuousClock.now < deadline {
            usleep(1_000)
        }
        #expect(tally.onReactorCount == 402)
        #expect(tally.elsewhereCount == 0)

        #expect(server.stop() == nil)
        stopped = true
        #expect(throws: Errno.EBADF) { try handle.execute { _ in tally.record() } }
    }
}
