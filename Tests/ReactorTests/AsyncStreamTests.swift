import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

@Suite("async streams on every backend", .opensDescriptors)
struct AsyncStreamTests {
    @Test(
        "async echo server (connections + inbound) and 20 clients, no byte lost",
        arguments: Backend.all)
    func echo(backend: Backend) async throws {
        try await backend.runAsync { type in try await Self.echo(type, clients: 20, size: 40_000) }
    }

    @Test(
        "async echo with the server's tasks on the reactor's executor (no hop), no byte lost",
        arguments: Backend.all)
    func echoOnLoop(backend: Backend) async throws {
        try await backend.runAsync { type in
            try await Self.echo(type, clients: 20, size: 40_000, serverOnLoop: true)
        }
    }

    @Test(
        "1000 concurrent async echo connections on one reactor thread lose no byte",
        arguments: [false, true])
    func thousandConnections(serverOnLoop: Bool) async throws {
        try ensureOpenFileLimit(4096)
        try await Backend.epoll.runAsync { type in
            try await Self.echo(type, clients: 1000, size: 2_000, serverOnLoop: serverOnLoop)
        }
    }

    /// `clients` clients each send a message and read it back; the server's accept loop and
    /// connection tasks run on the reactor's executor when `serverOnLoop`, on the global
    /// executor otherwise.
    static func echo<S: EventSelector>(
        _: S.Type, clients: Int, size: Int, serverOnLoop: Bool = false
    ) async throws {
        let loop = try ReactorThread<S>()
        let listener = try await AsyncListener.bind(
            SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)
        let address = listener.localAddress
        let serverExecutor: (any TaskExecutor)? = serverOnLoop ? loop.handle : nil
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: serverExecutor) {
                try await withThrowingTaskGroup(of: Void.self) { connections in
                    var accepted = 0
                    for try await connection in listener.connections {
                        connections.addTask(executorPreference: serverExecutor) {
                            for try await chunk in connection.inbound {
                                try await connection.write(chunk)
                            }
                            await connection.close()
                        }
                        accepted += 1
                        if accepted == clients { break }
                    }
                    try await connections.waitForAll()
                }
            }
            for client in 0..<clients {
                group.addTask {
                    let connection = try await AsyncConnection.connect(
                        to: address, on: loop.handle, timeout: .seconds(10))
                    let message = pattern(size + client * 97, seed: client)
                    async let echoed = readAll(connection)
                    try await connection.write(message)
                    try await connection.shutdownOutput()
                    #expect(try await echoed == message)
                    await connection.close()
                }
            }
            try await group.waitForAll()
        }
        await listener.close()
        #expect(try await loop.handle.query { $0.handlerCount } == 0)
        loop.stop()
        try loop.join()
    }

    @Test(
        "cancelling read, write, accept and connect ends each with CancellationError",
        arguments: Backend.all, [false, true])
    func cancellation(backend: Backend, onLoop: Bool) async throws {
        try await backend.runAsync { type in try await Self.cancellation(type, onLoop: onLoop) }
    }

    /// Each call is made by a task on the reactor's executor when `onLoop` (the calls run
    /// inline there), on the global executor otherwise (they hop).
    static func cancellation<S: EventSelector>(_: S.Type, onLoop: Bool) async throws {
        let loop = try ReactorThread<S>()
        let handle = loop.handle
        let executor: (any TaskExecutor)? = onLoop ? handle : nil
        let listener = try await AsyncListener.bind(
            SocketAddress(parsing: "127.0.0.1:0"), on: handle)

        // accept: cancelled while waiting; the listener stays open and the next connection
        // is not lost.
        let accepting = Task(executorPreference: executor) { try await listener.accept() }
        try await Task.sleep(for: .milliseconds(30))
        accepting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await accepting.value }
        let client = try await AsyncConnection.connect(to: listener.localAddress, on: handle)
        let server = try await listener.accept()

        // read: cancelled while waiting; nothing was consumed, the next read gets the bytes.
        let reading = Task(executorPreference: executor) { try await server.read() }
        try await Task.sleep(for: .milliseconds(30))
        reading.cancel()
        await #expect(throws: CancellationError.self) { _ = try await reading.value }
        try await client.write(Array("after".utf8))
        #expect(try await server.read() == Array("after".utf8))

        // write: cancelled while the peer does not read and the kernel's buffers are full;
        // the connection stays open.
        let big = [UInt8](repeating: 7, count: 64 << 20)
        let writing = Task(executorPreference: executor) { try await server.write(big) }
        try await Task.sleep(for: .milliseconds(100))
        writing.cancel()
        await #expect(throws: CancellationError.self) { try await writing.value }
        try await server.shutdownOutput()  // still open: the socket accepts calls

        // connect: cancelled while the SYN goes unanswered; the socket is closed and nothing
        // stays registered.
        let full = try FullBacklogListener()
        let target = try full.address
        let before = try await handle.query { $0.handlerCount }
        let connecting = Task(executorPreference: executor) {
            try await AsyncConnection.connect(to: target, on: handle)
        }
        try await Task.sleep(for: .milliseconds(100))
        connecting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await connecting.value }
        #expect(try await handle.query { $0.handlerCount } == before)
        try full.close()

        // A call started in an already-cancelled task never waits.
        let late = Task(executorPreference: executor) {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await server.read()
        }
        await #expect(throws: CancellationError.self) { _ = try await late.value }

        await client.close()
        await server.close()
        await listener.close()
        loop.stop()
        try loop.join()
    }

    @Test(
        "a connect that is not answered within its timeout throws ETIMEDOUT and registers nothing",
        arguments: Backend.all)
    func connectTimeout(backend: Backend) async throws {
        try await backend.runAsync { type in try await Self.connectTimeout(type) }
    }

    static func connectTimeout<S: EventSelector>(_: S.Type) async throws {
        let loop = try ReactorThread<S>()
        let full = try FullBacklogListener()
        let address = try full.address
        let start = ContinuousClock.now
        await #expect(throws: NetError(.ETIMEDOUT, address: address)) {
            _ = try await AsyncConnection.connect(
                to: address, on: loop.handle, timeout: .milliseconds(200))
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(5))
        #expect(try await loop.handle.query { $0.handlerCount } == 0)
        try full.close()
        loop.stop()
        try loop.join()
    }
}

@Suite("async streams: wrapping, Unix sockets, buffers, backpressure", .opensDescriptors)
struct AsyncStreamFeatureTests {
    @Test(
        "a wrapped UnixStream pair talks both ways; read(into:) fills the caller's array in place")
    func wrappedUnixPair() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let (a, b) = try UnixStream.pair()
            let left = try await AsyncConnection(wrapping: a, on: loop.handle)
            let right = try await AsyncConnection(wrapping: b, on: loop.handle)
            var buffer = [UInt8](repeating: 0, count: 256)
            let storage = buffer.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            try await left.write(Array("ping".utf8))
            let n = try await right.read(into: &buffer)
            #expect(Array(buffer[..<n]) == Array("ping".utf8))
            #expect(buffer.count == 256)
            #expect(buffer.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == storage)
            try await right.write(Array("pong".utf8))
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
            defer { raw.deallocate() }
            let m = try await left.read(into: raw)
            #expect(Array(raw[..<m]) == Array("pong".utf8))
            await left.close()
            #expect(try await right.read(into: &buffer) == 0)  // end of file
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("async Unix listener and connect echo over a socket path")
    func unixListener() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let path = "/tmp/swift-reactor-async-\(getpid()).sock"
            unlink(path)
            defer { unlink(path) }
            let listener = try await AsyncListener.bind(.unix(path), on: loop.handle)
            async let served: Void = {
                let connection = try await listener.accept()
                for try await chunk in connection.inbound { try await connection.write(chunk) }
                await connection.close()
            }()
            let client = try await AsyncConnection.connect(to: .unix(path), on: loop.handle)
            try await client.write(pattern(100_000, seed: 3))
            try await client.shutdownOutput()
            #expect(try await readAll(client) == pattern(100_000, seed: 3))
            try await served
            await client.close()
            await listener.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("closing a listener ends its connections sequence")
    func connectionsEndOnClose() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)
            let iterating = Task {
                var count = 0
                for try await connection in listener.connections {
                    count += 1
                    await connection.close()
                }
                return count
            }
            let client = try await AsyncConnection.connect(
                to: listener.localAddress, on: loop.handle)
            try await Task.sleep(for: .milliseconds(50))
            await listener.close()
            #expect(try await iterating.value == 1)
            await #expect(throws: Errno.EBADF) { _ = try await listener.accept() }
            await client.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("stopping the reactor ends a listener's connections sequence, also for a later next()")
    func connectionsEndOnReactorStop() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)
            let started = AsyncStream<Void>.makeStream()
            let iterating = Task {
                var count = 0
                started.continuation.yield()
                for try await connection in listener.connections {
                    count += 1
                    await connection.close()
                }
                return count
            }
            for await _ in started.stream { break }
            try await Task.sleep(for: .milliseconds(20))
            loop.stop()
            try loop.join()
            // Waiting when the reactor stopped: the sequence ends, as on close().
            #expect(try await iterating.value == 0)
            // Iterated once the reactor is gone: it ends at once too.
            var iterator = listener.connections.makeAsyncIterator()
            #expect(try await iterator.next() == nil)
            await #expect(throws: Errno.EBADF) { _ = try await listener.accept() }
        }
    }

    @Test("inbound bytes are read only on demand: a slow consumer makes the writer block")
    func inboundBackpressure() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)
            let writer = try TCPStream.connect(to: listener.localAddress)
            let server = try await listener.accept()
            var iterator = server.inbound(maxChunk: 4096).makeAsyncIterator()
            // One chunk consumed; then the consumer stalls.
            _ = try writer.write(Array("first".utf8))
            #expect(try await iterator.next() == Array("first".utf8))
            // The writer fills the kernel's buffers until its writes would block: nothing
            // reads on the server's side meanwhile.
            let chunk = [UInt8](repeating: 1, count: 64 << 10)
            var written = 0
            var blocked = false
            let start = ContinuousClock.now
            while !blocked && written < 256 << 20 && ContinuousClock.now - start < .seconds(10) {
                switch try writer.write(chunk) {
                case .processed(let n): written += n
                case .wouldBlock:
                    // The reactor might still drain the buffer: give it the chance, then retry.
                    try await Task.sleep(for: .milliseconds(50))
                    if case .processed(let n) = try writer.write(chunk) {
                        written += n
                    } else {
                        blocked = true
                    }
                }
            }
            #expect(blocked, "the writer never blocked: \(written) bytes went in")
            #expect(written < 64 << 20)
            try writer.shutdown(.write)
            // The consumer catches up and gets every byte.
            var received = 0
            while let bytes = try await iterator.next() { received += bytes.count }
            #expect(received == written)
            try writer.close()
            await server.close()
            await listener.close()
            loop.stop()
            try loop.join()
        }
    }
}

@Suite("ReactorThread", .opensDescriptors)
struct AsyncReactorThreadTests {
    @Test("runs tasks on its own thread; stop is idempotent; join returns after stop")
    func startStopJoin() async throws {
        let loop = try ReactorThread<MockSelector>(selector: MockSelector())
        let caller = OSThread.currentID
        let loopThread = try await loop.handle.query { _ in OSThread.currentID }
        #expect(loopThread != caller)
        #expect(try await loop.handle.query { _ in OSThread.currentID } == loopThread)
        #expect(!loop.hasFinished)
        loop.stop()
        loop.stop()
        try loop.join()
        try loop.join()
        #expect(loop.hasFinished)
        #expect(throws: Errno.EBADF) { try loop.handle.execute { _ in } }
    }

    @Test("join on the reactor's own thread throws EALREADY instead of hanging")
    func joinFromLoop() async throws {
        let loop = try ReactorThread<MockSelector>(selector: MockSelector())
        let result = try await loop.handle.query { [loop] _ in
            Result { () throws(Errno) in try loop.join() }
        }
        #expect(throws: Errno.EALREADY) { try result.get() }
        loop.stop()
        try loop.join()
    }

    @Test("an event capacity below 1 throws ArgumentError")
    func badCapacity() {
        #expect(throws: ArgumentError.self) {
            _ = try ReactorThread<MockSelector>(selector: MockSelector(), eventCapacity: 0)
        }
    }

    @Test("dropping the last reference stops and joins the thread")
    func deinitStops() async throws {
        var loop: ReactorThread<MockSelector>? = try ReactorThread(selector: MockSelector())
        let handle = loop!.handle
        _ = try await handle.query { _ in 0 }
        loop = nil
        #expect(throws: Errno.EBADF) { try handle.execute { _ in } }
    }

    @Test("calls waiting when the loop stops fail with EBADF rather than hang")
    func stopFailsWaiters() async throws {
        try await Backend.epoll.runAsync { _ in
            let loop = try ReactorThread<EpollSelector>()
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)
            let accepting = Task { try await listener.accept() }
            try await Task.sleep(for: .milliseconds(30))
            loop.stop()
            await #expect(throws: Errno.EBADF) { _ = try await accepting.value }
            try loop.join()
            await #expect(throws: Errno.EBADF) { _ = try await listener.accept() }
        }
    }
}
