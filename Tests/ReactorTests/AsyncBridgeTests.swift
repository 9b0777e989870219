import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// Runs a reactor on its own thread for the duration of `body`.
func withReactorThread<Backend: EventSelector, R>(
    _: Backend.Type, _ body: (Reactor<Backend>.Handle) async throws -> R
) async throws -> R {
    let handles = ReactorHandleBox<Backend>()
    let thread = try OSThread(name: "async-reactor") {
        guard let reactor = try? Reactor<Backend>() else { return handles.publish(nil) }
        handles.publish(reactor.handle)
        try? reactor.run()
    }
    defer { thread.join() }
    guard let handle = handles.wait() else { throw Errno.EBADF }
    defer { handle.stop() }
    return try await body(handle)
}

/// Hands a reactor's handle from its thread to the test.
final class ReactorHandleBox<Backend: EventSelector>: Sendable {
    private let lock = Lock()
    // Invariant: read and written only with `lock` held.
    nonisolated(unsafe) private var handle: Reactor<Backend>.Handle?
    nonisolated(unsafe) private var published = false

    func publish(_ handle: Reactor<Backend>.Handle?) {
        lock.withLock {
            self.handle = handle
            published = true
            lock.broadcast()
        }
    }

    func wait() -> Reactor<Backend>.Handle? {
        lock.withLock {
            while !published { _ = lock.wait(until: nil) }
            return handle
        }
    }
}

@Suite("async/await bridge", .opensDescriptors)
struct AsyncBridgeTests {
    @Test("async echo: 50 concurrent clients over one reactor thread get their bytes back")
    func asyncEcho() async throws {
        try await withReactorThread(EpollSelector.self) { handle in
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: handle)
            let address = listener.localAddress
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Server: accept 50, echo each until EOF.
                group.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { connections in
                        for _ in 0..<50 {
                            let connection = try await listener.accept()
                            connections.addTask {
                                while true {
                                    let bytes = try await connection.read()
                                    if bytes.isEmpty { break }
                                    try await connection.write(bytes)
                                }
                                await connection.close()
                            }
                        }
                        try await connections.waitForAll()
                    }
                    await listener.close()
                }
                for client in 0..<50 {
                    group.addTask {
                        let connection = try await AsyncConnection.connect(to: address, on: handle)
                        let message = (0..<(1000 + client * 97)).map {
                            UInt8(truncatingIfNeeded: $0 &* 31 &+ client)
                        }
                        try await connection.write(message)
                        try await connection.shutdownOutput()
                        var echoed: [UInt8] = []
                        while true {
                            let bytes = try await connection.read()
                            if bytes.isEmpty { break }
                            echoed += bytes
                        }
                        await connection.close()
                        #expect(echoed == message)
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("a refused async connect throws ECONNREFUSED, naming the address")
    func refusedConnect() async throws {
        try await withReactorThread(PollSelector.self) { handle in
            let probe = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"))
            let address = try probe.localAddress
            try probe.close()
            await #expect(throws: NetError(.ECONNREFUSED, address: address)) {
                _ = try await AsyncConnection.connect(to: address, on: handle)
            }
        }
    }

    @Test("cancelling a task blocked in read() ends it with CancellationError")
    func cancelledRead() async throws {
        try await withReactorThread(EpollSelector.self) { handle in
            let listener = try await AsyncListener.bind(
                SocketAddress(parsing: "127.0.0.1:0"), on: handle)
            let client = try await AsyncConnection.connect(to: listener.localAddress, on: handle)
            let server = try await listener.accept()
            let reader = Task { try await server.read() }
            try await Task.sleep(for: .milliseconds(50))
            reader.cancel()
            await #expect(throws: CancellationError.self) { _ = try await reader.value }
            await client.close()
            await server.close()
            await listener.close()
        }
    }
}
