import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

extension Backend {
    /// `run`, for async scenarios: runs `scenario` against this backend's selector type and
    /// records an issue for descriptors it left open (after `grace`).
    func runAsync(
        grace: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation,
        _ scenario: (any EventSelector.Type) async throws -> Void
    ) async throws {
        if let unavailability { try Test.cancel(Comment(rawValue: unavailability)) }
        DescriptorGate.expectHeld(sourceLocation: sourceLocation)
        prepareForLeakCheck()
        let before = openDescriptors()
        var failure: (any Error)?
        do { try await scenario(selectorType) } catch { failure = error }
        if let failure { Issue.record(failure, sourceLocation: sourceLocation) }
        let deadline = ContinuousClock.now + grace
        var leaked: [Int32: String] = [:]
        repeat {
            // Dispatch opens a timerfd for `Task.sleep` lazily, for the process's lifetime.
            leaked = openDescriptors().filter {
                before[$0.key] != $0.value && $0.value != "anon_inode:[timerfd]"
            }
            if leaked.isEmpty { return }
            try await Task.sleep(for: .milliseconds(10))
        } while ContinuousClock.now < deadline
        let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
        Issue.record(
            "descriptors left open: \(list.joined(separator: ", "))", sourceLocation: sourceLocation
        )
    }
}

extension Reactor.Handle {
    /// Runs `body` on the reactor's thread and returns its result.
    func query<T: Sendable>(_ body: @escaping @Sendable (Reactor<Backend>) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try execute { reactor in continuation.resume(returning: body(reactor)) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// A loopback TCP listener whose accept queue is full and never drained, so a further
/// connect to it hangs (Linux drops the SYN): for connect timeouts and cancellations.
final class FullBacklogListener {
    let listener: TCPListener
    private var fillers: [TCPStream] = []

    init() throws {
        listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"), backlog: 0)
        let address = try listener.localAddress
        // Backlog 0 still queues one connection; a few more make sure the queue is full.
        for _ in 0..<4 { fillers.append(try TCPStream.connect(to: address)) }
        usleep(50_000)  // let the handshakes that can complete complete
    }

    var address: SocketAddress { get throws { try listener.localAddress } }

    func close() throws {
        for filler in fillers { try filler.close() }
        try listener.close()
    }
}

/// A message of `count` bytes whose content depends on `seed`.
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7) }
}

/// Reads `connection` to end of file.
func readAll<S: EventSelector>(_ connection: AsyncConnection<S>) async throws -> [UInt8] {
    var received: [UInt8] = []
    for try await chunk in connection.inbound { received += chunk }
    return received
}

/// Runs `body` with the handle of a reactor thread on `S` and two `AsyncConnection`s on it over
/// a connected Unix socket pair (set up first by `configure`, e.g. a smaller send buffer);
/// then closes both (again, if `body` did), stops the loop and joins it, whether or not `body`
/// threw.
func withConnectedPair<S: EventSelector>(
    _: S.Type,
    configure: (UnixStream, UnixStream) throws -> Void = { _, _ in },
    _ body: (Reactor<S>.Handle, AsyncConnection<S>, AsyncConnection<S>) async throws -> Void
) async throws {
    let loop = try ReactorThread<S>()
    let handle = loop.handle
    let (a, b) = try UnixStream.pair()
    try configure(a, b)
    let left = try await AsyncConnection(wrapping: a, on: handle)
    let right = try await AsyncConnection(wrapping: b, on: handle)
    var failure: (any Error)?
    do { try await body(handle, left, right) } catch { failure = error }
    await left.close()
    await right.close()
    loop.stop()
    try loop.join()
    if let failure { throw failure }
}
