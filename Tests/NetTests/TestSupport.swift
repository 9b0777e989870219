import Glibc
import Net
import Selector
import SysCalls
import Testing

// Helpers for the Net tests: the backend list, a descriptor-leak check, and a selector loop
// with a deadline. Tests may call libc directly.

/// The parent of every Net suite. Serialized (recursively), because each test compares the
/// process's open descriptors before and after.
@Suite("Net", .serialized)
struct NetTests {}

/// The selector backends the socket scenarios run on.
enum Backend: CaseIterable, CustomStringConvertible, Sendable {
    case epoll
    case poll

    /// Every backend available on this platform.
    static var all: [Backend] { allCases }

    var description: String {
        switch self {
        case .epoll: EpollSelector.backendName
        case .poll: PollSelector.backendName
        }
    }

    /// The concrete selector type; scenarios open it as `S.Type`.
    var selectorType: any EventSelector.Type {
        switch self {
        case .epoll: EpollSelector.self
        case .poll: PollSelector.self
        }
    }
}

// MARK: - Descriptor leaks

/// The process's open descriptors: number → what /proc says it points at.
func openDescriptors() -> [Int32: String] {
    guard let directory = opendir("/proc/self/fd") else { return [:] }
    let own = dirfd(directory)
    defer { closedir(directory) }
    var result: [Int32: String] = [:]
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let fd = Int32(name), fd != own else { continue }
        var target = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/self/fd/\(fd)", &target, 255)
        let bytes = target.prefix(max(0, count)).map { UInt8(bitPattern: $0) }
        result[fd] = String(decoding: bytes, as: UTF8.self)
    }
    return result
}

/// Runs `body` and records an issue if descriptors it opened are still open afterwards
/// (allowing a short grace period for anything the test framework itself is closing).
func checkingDescriptorLeaks(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) throws {
    let before = openDescriptors()
    try body()
    let deadline = ContinuousClock.now + .seconds(2)
    var leaked: [Int32: String] = [:]
    repeat {
        leaked = openDescriptors().filter { before[$0.key] != $0.value }
        if leaked.isEmpty { return }
        usleep(10_000)
    } while ContinuousClock.now < deadline
    let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
    Issue.record(
        "descriptors leaked: \(list.joined(separator: ", "))", sourceLocation: sourceLocation)
}

/// Runs `scenario` with a fresh selector of `backend`'s type, checking for leaked descriptors.
func run(
    _ backend: Backend, sourceLocation: SourceLocation = #_sourceLocation,
    _ scenario: (any EventSelector.Type) throws -> Void
) throws {
    try checkingDescriptorLeaks(sourceLocation: sourceLocation) {
        try scenario(backend.selectorType)
    }
}

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
