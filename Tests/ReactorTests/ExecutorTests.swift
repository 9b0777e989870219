import Glibc
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

@testable import Reactor

/// A reactor running on a thread of its own, for the executor tests.
final class LoopOnThread: Sendable {
    let handle: Reactor<DefaultSelector>.Handle
    let threadID = Atomic<UInt>(0)
    private let thread: OSThread

    init() throws {
        let ready = Atomic<Bool>(false)
        nonisolated(unsafe) var made: Reactor<DefaultSelector>.Handle?
        let box = Lock()
        let id = Atomic<UInt>(0)
        thread = try OSThread(name: "executor-test") {
            guard let reactor = try? Reactor<DefaultSelector>() else { return }
            box.withLock { made = reactor.handle }
            id.store(OSThread.currentID, ordering: .releasing)
            ready.store(true, ordering: .releasing)
            try? reactor.run()
        }
        while !ready.load(ordering: .acquiring) { sched_yield() }
        handle = box.withLock { made! }
        threadID.store(id.load(ordering: .acquiring), ordering: .releasing)
    }

    func stop() {
        handle.stop()
        thread.join()
    }
}

/// Counts on the loop: an actor whose executor is a reactor's handle.
actor LoopCounter {
    let loop: Reactor<DefaultSelector>.Handle
    var count = 0
    var threads: Set<UInt> = []

    init(loop: Reactor<DefaultSelector>.Handle) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    func bump() {
        count += 1
        threads.insert(OSThread.currentID)
    }
}

@Suite("The reactor as an executor", .serialized, .opensDescriptors)
struct ExecutorTests {
    @Test("Task(executorPreference: handle) runs the task's code on the reactor's thread")
    func taskExecutorPreference() async throws {
        let loop = try LoopOnThread()
        defer { loop.stop() }
        let ran = await Task(executorPreference: loop.handle) {
            // Before and after a suspension: both on the loop thread.
            let first = OSThread.currentID
            await Task.yield()
            return (first, OSThread.currentID)
        }.value
        let loopThread = loop.threadID.load(ordering: .acquiring)
        #expect(ran.0 == loopThread)
        #expect(ran.1 == loopThread)
        #expect(OSThread.currentID != loopThread)
    }

    #if DEBUG
    @Test("jobs queued on the loop's own thread are collected without the handle's lock")
    func localJobsTakeNoLock() async throws {
        let loop = try LoopOnThread()
        defer { loop.stop() }
        let handle = loop.handle
        // Each yield queues the task's next job from the loop's own thread.
        let (before, after) = await Task(executorPreference: handle) {
            let before = handle.lockedTakes
            for _ in 0..<200 { await Task.yield() }
            return (before, handle.lockedTakes)
        }.value
        // Nothing else is queued from other threads meanwhile; a wake or a stray task may
        // cost a take, 200 yields must not cost 200.
        #expect(after - before < 5, "locked takes \(after - before) for 200 local jobs")
        // Work queued from another thread still goes through the lock and runs.
        let taken = try await withCheckedThrowingContinuation { continuation in
            do {
                try handle.execute { _ in continuation.resume(returning: handle.lockedTakes) }
            } catch { continuation.resume(throwing: error) }
        }
        #expect(taken > after)
    }
    #endif

    @Test("an actor whose executor is the handle runs every call on the reactor's thread, in order")
    func actorOnTheLoop() async throws {
        let loop = try LoopOnThread()
        defer { loop.stop() }
        let counter = LoopCounter(loop: loop.handle)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<100 { await counter.bump() } }
            }
            try await group.waitForAll()
        }
        #expect(await counter.count == 800)
        #expect(await counter.threads == [loop.threadID.load(ordering: .acquiring)])
    }

    @Test("once the reactor is gone, a job runs on the enqueuing thread instead of hanging")
    func closedHandleRunsInline() async throws {
        let loop = try LoopOnThread()
        loop.stop()
        // The reactor's thread has returned from run(); the reactor is released with it.
        let value = await Task(executorPreference: loop.handle) { 42 }.value
        #expect(value == 42)
    }
}
