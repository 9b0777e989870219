import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

// The public async API used by an actor living on a reactor's loop (its executor the loop's
// serial executor), called from tasks with no executor preference: only the actor puts the
// code on the loop. Each scenario checks what the calls return or throw, and that the actor's
// code after every await runs on the loop's thread.
//
// Where a call must be waiting, the actor announces it (`steps`) just before making it; the
// test then asks the actor for its log, a job that runs on the loop only once the actor's
// call has suspended (or returned, which the log would show). Every test has a time limit: a
// lost wake hangs. Ten minutes, as the limit also counts the wait for the descriptor gate,
// behind every other descriptor-opening test (minutes under a sanitizer).

@Suite("async I/O from an actor living on the loop", .opensDescriptors)
struct AsyncActorTests {
    @Test(
        "an actor on the loop waits in readLent for bytes, and waits for room to write them back",
        .timeLimit(.minutes(10)))
    func lentReadAndWrite() async throws {
        try await Backend.epoll.runAsync { _ in
            // The smallest send buffer the kernel allows (a few KiB): a 64 KiB write from
            // `right` cannot complete until `left` reads.
            try await withConnectedPair(
                EpollSelector.self, configure: { try $1.setSendBufferSize(1) }
            ) {
                handle, left, right in
                let actor = LoopActor(loop: handle)
                var steps = actor.steps.makeAsyncIterator()
                let loopThread = await loopThreadID(handle)

                // Nothing to read: readLent waits; the bytes come later and are written back.
                let small = Task { try await actor.echoLent(right) }
                await expectStep(&steps, "readLent")
                #expect(await actor.log == [], "readLent returned with nothing sent")
                try await left.write(Array("late".utf8))
                #expect(try await small.value == 4)
                await expectStep(&steps, "write")
                #expect(try await left.read(maxBytes: 64) == Array("late".utf8))

                // 64 KiB are there at once (one lent buffer); writing them back waits for room.
                let sent = pattern(64 << 10, seed: 1)
                try await left.write(sent)
                let large = Task { try await actor.echoLent(right) }
                await expectStep(&steps, "readLent")
                await expectStep(&steps, "write")
                #expect(await actor.log == ["readLent 4", "wrote 4", "readLent 65536"])
                var echoed: [UInt8] = []
                while echoed.count < sent.count {
                    echoed += try await left.read(maxBytes: 64 << 10)
                }
                #expect(try await large.value == sent.count)
                #expect(echoed == sent)
                #expect(await actor.log.last == "wrote 65536")
                #expect(await actor.threads == Array(repeating: loopThread, count: 6))
            }
        }
    }

    @Test(
        "an actor on the loop iterates inbound while the peer writes later, until the peer closes",
        .timeLimit(.minutes(10)))
    func inboundSequence() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                let actor = LoopActor(loop: handle)
                var steps = actor.steps.makeAsyncIterator()
                let loopThread = await loopThreadID(handle)

                let collecting = Task { try await actor.collectInbound(right, maxChunk: 10_000) }
                await expectStep(&steps, "inbound")
                #expect(await actor.log == [], "the sequence yielded with nothing sent")
                // More than the pair's buffers hold: the writer and the sequence take turns.
                let sent = pattern(600_000, seed: 2)
                try await left.write(sent)
                await left.close()
                let received = try await collecting.value
                #expect(received.count == sent.count)
                #expect(received == sent)
                let log = await actor.log
                #expect(log.last == "ended 600000")
                #expect(log.dropLast().allSatisfy { $0.hasPrefix("chunk ") })
                #expect(log.count >= 61, "chunks of at most 10,000 bytes")
                let threads = await actor.threads
                #expect(Set(threads) == [loopThread])
                #expect(threads.count == log.count + 1)
                // The end of file stays: the actor's next read returns [] at once.
                #expect(try await Task { try await actor.read(from: right) }.value == [])
                await expectStep(&steps, "read")
            }
        }
    }

    @Test(
        "an actor on the loop accepts (accept and connections) and connects, with a timeout",
        .timeLimit(.minutes(10)))
    func listenAndConnect() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let handle = loop.handle
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: handle)
            let server = LoopActor(loop: handle)
            let client = LoopActor(loop: handle)
            var serverSteps = server.steps.makeAsyncIterator()
            let loopThread = await loopThreadID(handle)

            let serving = Task { try await server.serve(listener) }
            await expectStep(&serverSteps, "accept")
            #expect(await server.log == [], "accept returned with no client")
            let address = listener.localAddress
            let first = pattern(10_000, seed: 3)
            #expect(
                try await Task { try await client.exchange(with: address, first) }.value == first)
            await expectStep(&serverSteps, "connections")
            let second = pattern(12_345, seed: 4)
            #expect(
                try await Task { try await client.exchange(with: address, second) }.value == second)
            // Closing the listener ends the actor's iteration of `connections`.
            await listener.close()
            #expect(try await serving.value == 2)
            #expect(await server.log == ["accepted", "accepted", "connections ended"])
            #expect(await client.log == ["connected", "connected"])

            // A connect nobody answers ends with ETIMEDOUT, back on the loop's thread.
            let full = try FullBacklogListener()
            let target = try full.address
            await #expect(throws: NetError(.ETIMEDOUT, address: target)) {
                try await Task { try await client.connect(to: target, timeout: .milliseconds(200)) }
                    .value
            }
            #expect(await client.log.last == "connect threw")
            try full.close()

            let threads = await server.threads + client.threads
            #expect(Set(threads) == [loopThread])
            #expect(try await handle.query { $0.handlerCount } == 0)
            loop.stop()
            try loop.join()
        }
    }

    // Documents what a cancelled write leaves: the connection open and usable, the peer
    // reading a prefix of the bytes (neither none nor all of them: 219,264 bytes with a
    // socket pair's default buffers on Linux when this was written) and then what follows.
    // The cancellation may land while the waiter is installed or before it (when an actor's
    // wait switched executors between registering its cancellation handler and installing its
    // waiter, as it did until the wait added its handler itself). This hung before 5b59b2d.
    @Test(
        "an actor's write that waits, cancelled, throws CancellationError; a prefix was sent",
        .timeLimit(.minutes(10)))
    func cancelledWrite() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, left, right in
                let actor = LoopActor(loop: handle)
                var steps = actor.steps.makeAsyncIterator()
                let loopThread = await loopThreadID(handle)

                // 2 MiB: more than the pair's buffers, and nobody reads.
                let big = pattern(2 << 20, seed: 5)
                let writing = Task { try await actor.write(big, to: right) }
                await expectStep(&steps, "write")
                #expect(await actor.log == [], "2 MiB written with nobody reading")
                writing.cancel()
                await #expect(throws: CancellationError.self) { try await writing.value }
                #expect(await actor.log == ["write threw"])

                // Still open both ways: the actor writes on and reads.
                let draining = Task { try await readAll(left) }
                try await Task { try await actor.write(Array("after".utf8), to: right) }.value
                await expectStep(&steps, "write")
                try await right.shutdownOutput()
                let received = try await draining.value
                let prefix = received.count - 5
                #expect(prefix > 0 && prefix < big.count, "\(prefix) bytes of 2 MiB sent")
                #expect(received.prefix(max(0, prefix)).elementsEqual(big.prefix(max(0, prefix))))
                #expect(received.suffix(5).elementsEqual("after".utf8))
                try await left.write(Array("ping".utf8))
                #expect(
                    try await Task { try await actor.read(from: right) }.value == Array("ping".utf8)
                )
                await expectStep(&steps, "read")
                #expect(await actor.log == ["write threw", "wrote 5", "read 4"])
                #expect(await actor.threads == Array(repeating: loopThread, count: 6))
            }
        }
    }

    @Test(
        "closing the connection while an actor's read and write wait ends both with EBADF",
        .timeLimit(.minutes(10)))
    func closeWhileWaiting() async throws {
        try await Backend.epoll.runAsync { _ in
            try await withConnectedPair(EpollSelector.self) { handle, _, right in
                let actor = LoopActor(loop: handle)
                var steps = actor.steps.makeAsyncIterator()
                let loopThread = await loopThreadID(handle)

                let reading = Task { try await actor.read(from: right) }
                await expectStep(&steps, "read")
                let writing = Task { try await actor.write(pattern(2 << 20, seed: 6), to: right) }
                await expectStep(&steps, "write")
                #expect(await actor.log == [], "a call returned that should wait")
                // This task has no executor preference: the close hops to the loop.
                await right.close()
                await #expect(throws: Errno.EBADF) { _ = try await reading.value }
                await #expect(throws: Errno.EBADF) { try await writing.value }
                // In either order: a call still on its way to installing its waiter when the
                // close ran sees the close when it installs.
                let log = await actor.log
                #expect(log.count == 2 && Set(log) == ["read threw", "write threw"])
                // Later calls throw it at once.
                await #expect(throws: Errno.EBADF) {
                    _ = try await Task { try await actor.read(from: right) }.value
                }
                await expectStep(&steps, "read")
                #expect(await actor.threads == Array(repeating: loopThread, count: 6))
            }
        }
    }

    @Test(
        "an actor on the loop waits to read, to write and in readLent, on every backend",
        .timeLimit(.minutes(10)), arguments: Backend.all)
    func waitsOnEveryBackend(backend: Backend) async throws {
        try await backend.runAsync { type in try await Self.readWriteWait(type) }
    }

    static func readWriteWait<S: EventSelector>(_: S.Type) async throws {
        try await withConnectedPair(S.self) { handle, left, right in
            let actor = LoopActor(loop: handle)
            var steps = actor.steps.makeAsyncIterator()
            let loopThread = await loopThreadID(handle)

            let reading = Task { try await actor.read(from: right) }
            await expectStep(&steps, "read")
            #expect(await actor.log == [])
            try await left.write(Array("late".utf8))
            #expect(try await reading.value == Array("late".utf8))

            let big = pattern(2 << 20, seed: 7)
            let writing = Task { try await actor.write(big, to: right) }
            await expectStep(&steps, "write")
            #expect(await actor.log == ["read 4"])
            var received: [UInt8] = []
            while received.count < big.count { received += try await left.read(maxBytes: 64 << 10) }
            try await writing.value
            #expect(received == big)

            let lending = Task { try await actor.echoLent(right) }
            await expectStep(&steps, "readLent")
            #expect(await actor.log == ["read 4", "wrote \(2 << 20)"])
            try await left.write(Array("lent".utf8))
            #expect(try await lending.value == 4)
            await expectStep(&steps, "write")
            #expect(try await left.read(maxBytes: 64) == Array("lent".utf8))
            #expect(await actor.log == ["read 4", "wrote \(2 << 20)", "readLent 4", "wrote 4"])
            #expect(await actor.threads == Array(repeating: loopThread, count: 7))
            await left.close()
            await right.close()
            #expect(try await handle.query { $0.handlerCount } == 0)
        }
    }
}

/// The loop's thread, as `OSThread.currentID` names it there.
private func loopThreadID<S: EventSelector>(_ handle: Reactor<S>.Handle) async -> UInt {
    await Task(executorPreference: handle) { OSThread.currentID }.value
}

/// Waits for the next step `steps` announces and expects it to be `expected`.
private func expectStep(
    _ steps: inout AsyncStream<String>.Iterator, _ expected: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    let step = await steps.next()
    #expect(step == expected, sourceLocation: sourceLocation)
}

/// An actor living on a reactor's loop (its executor the loop's serial executor), on any
/// backend. Its methods note what their calls did in `log`, and the thread they ran on at
/// their start and after each await in `threads`.
actor LoopActor<S: EventSelector> {
    let loop: Reactor<S>.Handle
    /// Each call that may wait, announced (on the loop's thread) just before it is made: once
    /// a test has it, a job the test queues on the loop runs only after that call has
    /// suspended or returned.
    nonisolated let steps: AsyncStream<String>
    private let announce: AsyncStream<String>.Continuation
    /// What the calls did, in order ("read 4", "write threw", …).
    private(set) var log: [String] = []
    /// The threads the actor ran on: at the start of each method and after each await.
    private(set) var threads: [UInt] = []

    init(loop: Reactor<S>.Handle) {
        self.loop = loop
        (steps, announce) = AsyncStream.makeStream(of: String.self)
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    /// Notes the thread the actor runs on at the start of a method.
    private func started() { threads.append(OSThread.currentID) }

    /// Notes the thread after an await, and `entry` in the log.
    private func resumed(_ entry: String) {
        threads.append(OSThread.currentID)
        log.append(entry)
    }

    /// Reads up to 64 KiB with `readLent(maxBytes:)` (waiting for bytes) and writes the lent
    /// bytes back with `write(_: borrowing LentBytes)` (waiting for room); the count read.
    func echoLent(_ connection: AsyncConnection<S>) async throws -> Int {
        started()
        announce.yield("readLent")
        let lent = try await connection.readLent(maxBytes: 64 << 10)
        resumed("readLent \(lent.count)")
        announce.yield("write")
        try await connection.write(lent)
        resumed("wrote \(lent.count)")
        return lent.count
    }

    /// Reads what `connection` has, waiting for bytes (`read(maxBytes:)`).
    func read(from connection: AsyncConnection<S>) async throws -> [UInt8] {
        started()
        announce.yield("read")
        do {
            let bytes = try await connection.read(maxBytes: 64 << 10)
            resumed("read \(bytes.count)")
            return bytes
        } catch {
            resumed("read threw")
            throw error
        }
    }

    /// Writes `bytes` to `connection`, waiting for room.
    func write(_ bytes: [UInt8], to connection: AsyncConnection<S>) async throws {
        started()
        announce.yield("write")
        do {
            try await connection.write(bytes)
        } catch {
            resumed("write threw")
            throw error
        }
        resumed("wrote \(bytes.count)")
    }

    /// Iterates `connection.inbound(maxChunk:)` to its end; the bytes.
    func collectInbound(_ connection: AsyncConnection<S>, maxChunk: Int) async throws -> [UInt8] {
        started()
        var received: [UInt8] = []
        announce.yield("inbound")
        for try await chunk in connection.inbound(maxChunk: maxChunk) {
            resumed("chunk \(chunk.count)")
            #expect(chunk.count <= maxChunk)
            received += chunk
        }
        resumed("ended \(received.count)")
        return received
    }

    /// Accepts one connection with `accept()`, then the others from `connections` until the
    /// listener is closed, echoing each one's bytes until its end of file; the number served.
    func serve(_ listener: AsyncListener<S>) async throws -> Int {
        started()
        announce.yield("accept")
        let first = try await listener.accept()
        resumed("accepted")
        try await echoToEnd(first)
        var served = 1
        announce.yield("connections")
        for try await connection in listener.connections {
            resumed("accepted")
            try await echoToEnd(connection)
            served += 1
        }
        resumed("connections ended")
        return served
    }

    /// Writes back what `connection` reads until its end of file, then closes it.
    private func echoToEnd(_ connection: AsyncConnection<S>) async throws {
        while true {
            let bytes = try await connection.read(maxBytes: 4096)
            threads.append(OSThread.currentID)
            if bytes.isEmpty { break }
            try await connection.write(bytes)
            threads.append(OSThread.currentID)
        }
        await connection.close()
        threads.append(OSThread.currentID)
    }

    /// Connects to `address` (10 s timeout), sends `message`, shuts its output down and reads
    /// the reply to end of file; closes and returns the reply.
    func exchange(with address: SocketAddress, _ message: [UInt8]) async throws -> [UInt8] {
        started()
        let connection = try await AsyncConnection<S>.connect(
            to: address, on: loop, timeout: .seconds(10))
        resumed("connected")
        try await connection.write(message)
        threads.append(OSThread.currentID)
        try await connection.shutdownOutput()
        threads.append(OSThread.currentID)
        var reply: [UInt8] = []
        while true {
            let bytes = try await connection.read(maxBytes: 4096)
            threads.append(OSThread.currentID)
            if bytes.isEmpty { break }
            reply += bytes
        }
        await connection.close()
        threads.append(OSThread.currentID)
        return reply
    }

    /// Connects to `address` with `timeout`; closes the connection if it is made.
    func connect(to address: SocketAddress, timeout: Duration) async throws {
        started()
        do {
            let connection = try await AsyncConnection<S>.connect(
                to: address, on: loop, timeout: timeout)
            resumed("connected")
            await connection.close()
            threads.append(OSThread.currentID)
        } catch {
            resumed("connect threw")
            throw error
        }
    }
}
