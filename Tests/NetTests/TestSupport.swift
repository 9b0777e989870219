import Glibc
import Net
import Selector
import SysCalls
import TestSupport
import Testing

// Helpers for the Net tests: a selector loop with a deadline and test data. The backend list
// and the leak check are in TestSupport. Tests may call libc directly.

/// The parent of every Net suite. Serialized (recursively), because each test compares the
/// process's open descriptors before and after.
@Suite("Net", .serialized, .opensDescriptors)
struct NetTests {}

/// How long descriptors a Net test opened get to close: the suite is serialized, so a short
/// grace suffices.
let netLeakGrace: Duration = .seconds(2)

// MARK: - Selector loop

/// A scenario ran past its deadline.
struct Timeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Selects until `handle` has returned true (done) or `limit` passes; `handle` is called
/// once per event.
func loop<S: EventSelector>(
    _ selector: S, limit: Duration = .seconds(10), _ what: String,
    _ handle: (Event) throws -> Bool
) throws {
    var events = Events(capacity: 64)
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        try selector.select(into: &events, timeout: .milliseconds(100))
        for event in events where try handle(event) { return }
    }
    throw Timeout(what: what)
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch points at an offset.
func pattern(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[index] = UInt8(truncatingIfNeeded: state)
    }
    return bytes
}

/// A unique path for a Unix socket in /tmp, short enough for sun_path.
func temporarySocketPath(_ name: String) -> String {
    "/tmp/net-test-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// A loopback TCP port nothing listens on (bound then closed; the kernel will not hand it
/// out again immediately).
func unusedTCPPort() throws -> UInt16 {
    let listener = try TCPListener(binding: .v4(.loopback, port: 0))
    defer { try? listener.close() }
    return try listener.localAddress.port!
}

/// Whether SIGPIPE still has its default action (kills the process) in this process.
func sigpipeIsDefault() -> Bool {
    var action = sigaction()
    sigaction(SIGPIPE, nil, &action)
    return action.__sigaction_handler.sa_handler == nil  // SIG_DFL is a null handler
}
