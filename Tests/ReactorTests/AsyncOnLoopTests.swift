import Net
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

@testable import Reactor

/// What tasks on a reactor's executor did, in the order they did it.
final class EventLog: Sendable {
    private let lock = Lock()
    // Invariant: read and written only with `lock` held.
    nonisolated(unsafe) private var entries: [String] = []

    func note(_ entry: String) { lock.withLock { entries.append(entry) } }

    var all: [String] { lock.withLock { entries } }
}

@Suite("async I/O on the reactor's executor", .opensDescriptors)
struct AsyncOnLoopTests {
    @Test("a read on the reactor's executor that finds data returns without suspending")
    func readyReadDoesNotSuspend() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                try await left.write(Array("ready".utf8))
                let log = EventLog()
                // Both tasks are queued on the loop, A first. A read that hopped (or suspended)
                // would let B run before A's read returns.
                try await Task(executorPreference: handle) {
                    let first = Task(executorPreference: handle) {
                        var buffer = [UInt8](repeating: 0, count: 16)
                        let count = try await right.read(into: &buffer)
                        log.note("A read \(String(decoding: buffer[..<count], as: UTF8.self))")
                    }
                    let second = Task(executorPreference: handle) { log.note("B ran") }
                    try await first.value
                    await second.value
                }.value
                #expect(log.all == ["A read ready", "B ran"])
            }
        }
    }

    @Test("read(maxBytes:) returns arrays sized to what was read, at most maxBytes, [] at EOF")
    func readReturnsExactArrays() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                let sent = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                try await Task(executorPreference: handle) {
                    let writer = Task(executorPreference: handle) {
                        try await left.write(sent)
                        try await left.shutdownOutput()
                    }
                    var received: [UInt8] = []
                    // On the loop and off it: both go through the loop's shared buffer.
                    while true {
                        let chunk = try await right.read(maxBytes: 3000)
                        #expect(chunk.count <= 3000)
                        #expect(chunk.capacity < chunk.count + 64, "sized to what was read")
                        if chunk.isEmpty { break }
                        received += chunk
                    }
                    try await writer.value
                    #expect(received == sent)
                }.value
                let offLoop = try await right.read()
                #expect(offLoop.isEmpty, "the end of file stays readable")
            }
        }
    }

    @Test("an actor on the loop's serial executor reads and writes inline, without a hop")
    func actorOnLoopDoesNotHop() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                try await left.write(Array("ping".utf8))
                let session = LoopSession(loop: handle)
                let (reply, otherJobsRan) = try await session.echoOnce(right)
                #expect(reply == Array("ping".utf8))
                #expect(otherJobsRan == 0, "the actor's read or write suspended")
                var buffer = [UInt8](repeating: 0, count: 8)
                let count = try await left.read(into: &buffer)
                #expect(Array(buffer[..<count]) == Array("ping".utf8))
            }
        }
    }

    @Test("an actor on the loop takes ready inbound bytes inline, without a hop")
    func actorSequencesDoNotHop() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let handle = loop.handle
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: handle)
            let client = try await AsyncConnection.connect(
                to: listener.localAddress, on: handle, timeout: .seconds(5))
            try await client.write(Array("ping".utf8))
            try await client.shutdownOutput()
            let session = LoopSession(loop: handle)
            // The connection's bytes and end of file are in the kernel: `next` has nothing to wait for, so it
            // reads inline, and no call of the accepted connection hops to the loop.
            let (chunk, otherJobsRan, hops) = try await Task {
                try await session.acceptAndReadOnce(listener)
            }.value
            #expect(chunk == Array("ping".utf8))
            #expect(otherJobsRan == 0, "the actor's next() suspended")
            #expect(hops == 0, "the actor's next() ran off the loop and hopped back")
            await client.close()
            await listener.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("an actor on the loop whose read and write wait resumes on the loop's thread")
    func actorWaitsOnTheLoop() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                let session = LoopSession(loop: handle)
                let loopThread = await Task(executorPreference: handle) { OSThread.currentID }.value
                // A task with no executor preference: only the actor puts the code on the loop.
                let waiting = Task { try await session.exchangeWaiting(right, reply: 1 << 21) }
                // The read found nothing and is waiting; then the bytes come. The reply is larger
                // than the socket pair's buffers, so its write waits until this side reads.
                await Task(executorPreference: handle) {}.value
                try await left.write(Array("late".utf8))
                var received = 0
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while received < 1 << 21 { received += try await left.read(into: &buffer) }
                let (bytes, threads) = try await waiting.value
                #expect(bytes == Array("late".utf8))
                #expect(threads == [loopThread, loopThread, loopThread])
            }
        }
    }

    // A wait its cancellation misses would hang: the limit makes that a failure (ten minutes: it
    // also counts the wait for the descriptor gate, minutes under a sanitizer).
    @Test(
        "an actor on the loop whose read is cancelled gets CancellationError, then reads on",
        .timeLimit(.minutes(10)))
    func actorWaitCancelled() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                let session = LoopSession(loop: handle)
                // Cancelled before the read: its wait ends at once (the cancellation handler runs
                // before the waiter is installed).
                await #expect(throws: CancellationError.self) {
                    _ = try await Task { try await session.readCancelledFirst(right) }.value
                }
                // Cancelled while it starts or waits.
                let waiting = Task { try await session.readWaiting(right) }
                await Task(executorPreference: handle) {}.value
                waiting.cancel()
                await #expect(throws: CancellationError.self) { _ = try await waiting.value }
                // Nothing was consumed and the connection reads on, on the loop's thread.
                let loopThread = await Task(executorPreference: handle) { OSThread.currentID }.value
                try await left.write(Array("after".utf8))
                let (bytes, threads) = try await Task { try await session.readWaiting(right) }.value
                #expect(bytes == Array("after".utf8))
                #expect(threads == [loopThread, loopThread])
            }
        }
    }

    @Test("after end of file, every read on the reactor's executor returns 0 at once")
    func endOfFileIsSticky() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let handle = loop.handle
            let (a, b) = try UnixStream.pair()
            let right = try await AsyncConnection(wrapping: b, on: handle)
            _ = try a.write(Array("abc".utf8))
            try a.close()
            let reads = try await Task(executorPreference: handle) {
                // A full read, a short one (which, before the peer's shutdown is reported,
                // makes the next read wait for that event), then end of file, for good.
                var buffer = [UInt8](repeating: 0, count: 2)
                var counts: [Int] = []
                for _ in 0..<5 { counts.append(try await right.read(into: &buffer)) }
                return counts
            }.value
            #expect(reads == [2, 1, 0, 0, 0])
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("a second read while one waits throws EALREADY; closing ends the waiting one with EBADF")
    func concurrentReadAndClose() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, _, right in
                let waiting = Task(executorPreference: handle) { try await right.read() }
                await Task(executorPreference: handle) {
                    // Runs after `waiting` has started (the loop runs its jobs in order) and
                    // suspended in its read: nothing was sent.
                    await #expect(throws: Errno.EALREADY) { _ = try await right.read() }
                    await right.close()
                }.value
                await #expect(throws: Errno.EBADF) { _ = try await waiting.value }
                await #expect(throws: Errno.EBADF) { _ = try await right.read() }
            }
        }
    }

    #if DEBUG
    @Test("an accept on the reactor's executor starts on the loop at once, not through its queue")
    func acceptOnLoopSkipsTheQueue() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let handle = loop.handle
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: handle)
            let client = try await AsyncConnection.connect(to: listener.localAddress, on: handle)
            let (takes, accepted) = try await Task(executorPreference: handle) {
                let before = handle.lockedTakes
                let connection = try await listener.accept()
                let takes = handle.lockedTakes - before
                try await connection.write(Array("hi".utf8))
                await connection.close()
                return (takes, true)
            }.value
            // Before, the accept went through the handle's queue (its lock, a closure, a turn).
            #expect(takes == 0, "an accept on the loop took the handle's lock \(takes) times")
            #expect(accepted)
            #expect(try await client.read() == Array("hi".utf8))
            await client.close()
            await listener.close()
            loop.stop()
            try loop.join()
        }
    }
    #endif
}

/// An actor living on a reactor's loop.
actor LoopSession {
    let loop: Reactor<EpollSelector>.Handle
    /// Bumped by tasks on the loop: whether any ran while the actor was in a call.
    var bumps = 0

    init(loop: Reactor<EpollSelector>.Handle) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    func bump() { bumps += 1 }

    /// Reads from `connection`, waiting for bytes, then writes `reply` bytes (waiting while
    /// the peer is behind); returns what it read and the threads the actor ran on before the
    /// read, after it and after the write.
    func exchangeWaiting(_ connection: AsyncConnection<EpollSelector>, reply: Int) async throws
        -> ([UInt8], [UInt])
    {
        var threads = [OSThread.currentID]
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try await connection.read(into: &buffer)
        threads.append(OSThread.currentID)
        try await connection.write([UInt8](repeating: 7, count: reply))
        threads.append(OSThread.currentID)
        return (Array(buffer[..<count]), threads)
    }

    /// Reads from `connection`, waiting for bytes; returns them and the threads the actor ran
    /// on before and after the read.
    func readWaiting(_ connection: AsyncConnection<EpollSelector>) async throws -> (
        [UInt8], [UInt]
    ) {
        let before = OSThread.currentID
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try await connection.read(into: &buffer)
        return (Array(buffer[..<count]), [before, OSThread.currentID])
    }

    /// Cancels the calling task, then reads from `connection` (which has nothing to read).
    func readCancelledFirst(_ connection: AsyncConnection<EpollSelector>) async throws -> Int {
        withUnsafeCurrentTask { $0?.cancel() }
        var buffer = [UInt8](repeating: 0, count: 64)
        return try await connection.read(into: &buffer)
    }

    /// Accepts a connection from `listener.connections` (an accept goes through the loop's
    /// queue), then takes one chunk of its `inbound` with `next()` and the rest (the peer has
    /// shut down) with `for try await` (all must be ready); returns the chunk (nil if more
    /// followed it), how
    /// many other loop jobs ran while the actor took it, and how many of the accepted
    /// connection's calls hopped to the loop.
    func acceptAndReadOnce(_ listener: AsyncListener<EpollSelector>) async throws -> (
        [UInt8]?, Int, Int
    ) {
        var connections = listener.connections.makeAsyncIterator()
        guard let connection = try await connections.next() else { return (nil, 0, 0) }
        var inbound = connection.inbound.makeAsyncIterator()
        let before = bumps
        Task(executorPreference: loop) { await self.bump() }
        let chunk = try await inbound.next()
        let ran = bumps - before
        // The rest (nothing: the peer has shut down) through `for try await`.
        var rest: [UInt8] = []
        for try await more in connection.inbound { rest += more }
        let hops = connection.hoppedCalls
        await connection.close()
        return (rest.isEmpty ? chunk : nil, ran, hops)
    }

    /// Reads what `connection` has (it must have bytes waiting) and writes it back; returns
    /// the bytes and how many other loop jobs ran meanwhile (one is queued first, so any
    /// suspension lets it run).
    func echoOnce(_ connection: AsyncConnection<EpollSelector>) async throws -> ([UInt8], Int) {
        let before = bumps
        Task(executorPreference: loop) { await self.bump() }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try await connection.read(into: &buffer)
        try await connection.write(buffer[..<count])
        return (Array(buffer[..<count]), bumps - before)
    }
}

@Suite("async I/O on MockSelector", .opensDescriptors)
struct AsyncMockSelectorTests {
    /// A reactor thread on a `MockSelector`, and an `AsyncConnection` on it over one end of a
    /// socket pair (the other end returned raw); its token is what events must carry.
    static func connection() async throws -> (
        loop: ReactorThread<MockSelector>, mock: MockSelector,
        connection: AsyncConnection<MockSelector>, peer: UnixStream, token: Token
    ) {
        let mock = MockSelector()
        let loop = try ReactorThread(selector: mock)
        let (a, b) = try UnixStream.pair()
        let fd = a.fileDescriptor
        let connection = try await AsyncConnection(wrapping: a, on: loop.handle)
        guard let token = mock.registrations[fd]?.token else {
            throw TestLoopFailure("the connection registered nothing")
        }
        return (loop, mock, connection, b, token)
    }

    @Test("a read on the loop waits for the readiness event, not for the bytes, and then reads")
    func readWaitsForEvent() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, mock, connection, peer, token) = try await Self.connection()
            let handle = loop.handle
            let done = Atomic<Bool>(false)
            let reading = Task(executorPreference: handle) {
                let bytes = try await connection.read()
                done.store(true, ordering: .releasing)
                return bytes
            }
            // The reader found nothing and waits. The bytes arrive, but no event says so (the
            // mock reports only what is injected): it keeps waiting through further turns.
            await Task(executorPreference: handle) {}.value
            _ = try peer.write(Array("hello".utf8))
            for _ in 0..<5 { await Task(executorPreference: handle) { await Task.yield() }.value }
            let finished = done.load(ordering: .acquiring)
            #expect(!finished)
            mock.inject(Event(token: token, readiness: .readable))
            #expect(try await reading.value == Array("hello".utf8))
            try peer.close()
            await connection.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("writes on the loop complete inline; a cancelled read on the loop consumes nothing")
    func writeAndCancelledRead() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, mock, connection, peer, token) = try await Self.connection()
            let handle = loop.handle
            // The kernel has room: the write needs no event.
            try await Task(executorPreference: handle) {
                try await connection.write(Array("out".utf8))
            }.value
            var received = [UInt8](repeating: 0, count: 8)
            guard case .processed(let count) = try peer.read(into: &received) else {
                throw TestLoopFailure("the write did not reach the peer")
            }
            #expect(Array(received[..<count]) == Array("out".utf8))
            let reading = Task(executorPreference: handle) { try await connection.read() }
            await Task(executorPreference: handle) {}.value
            reading.cancel()
            await #expect(throws: CancellationError.self) { _ = try await reading.value }
            _ = try peer.write(Array("kept".utf8))
            mock.inject(Event(token: token, readiness: .readable))
            let next = try await Task(executorPreference: handle) {
                try await connection.read()
            }.value
            #expect(next == Array("kept".utf8))
            try peer.close()
            await connection.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test(
        "in a task cancelled before it reads, data already there is read; a read that must wait throws CancellationError"
    )
    func readInCancelledTask() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, _, connection, peer, _) = try await Self.connection()
            let handle = loop.handle
            _ = try peer.write(Array("there".utf8))
            let (first, secondCancelled) = try await Task(executorPreference: handle) {
                withUnsafeCurrentTask { $0?.cancel() }
                let first = try await connection.read()
                do {
                    _ = try await connection.read()
                    return (first, false)
                } catch is CancellationError {
                    return (first, true)
                }
            }.value
            #expect(first == Array("there".utf8))
            #expect(secondCancelled)
            try peer.close()
            await connection.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("a read from another executor hops to the mock loop and waits for its event")
    func hopOnMock() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, mock, connection, peer, token) = try await Self.connection()
            async let bytes = connection.read()
            _ = try peer.write(Array("hop".utf8))
            // Whether the read has reached the loop yet or not, the event is injected
            // repeatedly until it returns: each one may find the reader waiting.
            let injector = Task {
                while !Task.isCancelled {
                    mock.inject(Event(token: token, readiness: .readable))
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            #expect(try await bytes == Array("hop".utf8))
            injector.cancel()
            _ = await injector.result
            try peer.close()
            await connection.close()
            loop.stop()
            try loop.join()
        }
    }
}

/// A scenario's setup failed.
struct TestLoopFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
