import Glibc
import Selector
import SysCalls
import Testing

// Helpers for the conformance suite: the backend list, a descriptor-leak check, loopback
// sockets, select loops with deadlines, threads and signals. Tests may call libc directly.

/// The selector backends the conformance suite runs against.
///
/// A new backend is one case here plus one line in `selectorType`.
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

    /// The concrete selector type; generic scenarios open it as `S.Type`.
    var selectorType: any EventSelector.Type {
        switch self {
        case .epoll: EpollSelector.self
        case .poll: PollSelector.self
        }
    }

    /// Runs `scenario` against this backend's selector type, then checks that every descriptor
    /// it opened has been closed.
    func run(_ scenario: (any EventSelector.Type) throws -> Void) throws {
        try checkingDescriptorLeaks { try scenario(selectorType) }
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

/// Runs `body` and records an issue if descriptors it opened are still open afterwards.
///
/// Other tests (other suites and targets share the process) run in parallel and hold
/// descriptors of their own, some for seconds, so the check looks for descriptors that are new
/// (by number and target) and gives them up to ten seconds to go. A real leak stays, and fails.
func checkingDescriptorLeaks(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) throws {
    let before = openDescriptors()
    try body()
    let deadline = ContinuousClock.now + .seconds(10)
    var leaked: [Int32: String] = [:]
    repeat {
        leaked = openDescriptors().filter { before[$0.key] != $0.value }
        if leaked.isEmpty { return }
        usleep(10_000)
    } while ContinuousClock.now < deadline
    let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
    Issue.record(
        "descriptors left open: \(list.joined(separator: ", "))", sourceLocation: sourceLocation)
}

/// Descriptors a test opened; `closeAll()` (deferred) closes what the test did not.
final class Descriptors {
    private var open: [FileDescriptor] = []

    /// Starts tracking `fd` and returns it.
    @discardableResult
    func track(_ fd: FileDescriptor) -> FileDescriptor {
        open.append(fd)
        return fd
    }

    /// Closes `fd` now.
    func close(_ fd: FileDescriptor) {
        open.removeAll { $0 == fd }
        try? Sys.close(fd)
    }

    /// Stops tracking `fd` without closing it (it was closed some other way).
    func forget(_ fd: FileDescriptor) { open.removeAll { $0 == fd } }

    /// Closes everything still tracked.
    func closeAll() {
        for fd in open { try? Sys.close(fd) }
        open.removeAll()
    }
}

// MARK: - Sockets

/// 127.0.0.1:`port`.
func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return address
}

/// The port a bound IPv4 socket got.
func localPort(_ fd: FileDescriptor) throws -> UInt16 {
    let (storage, _) = try Sys.getsockname(fd)
    return withUnsafeBytes(of: storage) {
        UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port)
    }
}

/// A socket of `type` bound to 127.0.0.1 on a free port.
func boundLoopbackSocket(_ fds: Descriptors, type: Int32) throws -> (FileDescriptor, UInt16) {
    let fd = fds.track(try Sys.socket(domain: AF_INET, type: type))
    try Sys.setsockopt(fd, level: SOL_SOCKET, option: SO_REUSEADDR, 1)
    try withUnsafeBytes(of: loopback(port: 0)) { (raw) throws(Errno) in try Sys.bind(fd, raw) }
    return (fd, try localPort(fd))
}

/// A listening TCP socket on 127.0.0.1 and its port.
func tcpListener(_ fds: Descriptors, backlog: Int32 = 128) throws -> (FileDescriptor, UInt16) {
    let (fd, port) = try boundLoopbackSocket(fds, type: streamType)
    try Sys.listen(fd, backlog: backlog)
    return (fd, port)
}

/// Starts a non-blocking connect to 127.0.0.1:`port`; returns the socket.
func tcpConnect(_ fds: Descriptors, port: UInt16) throws -> FileDescriptor {
    let fd = fds.track(try Sys.socket(domain: AF_INET, type: streamType))
    _ = try withUnsafeBytes(of: loopback(port: port)) { (raw) throws(Errno) in
        try Sys.connect(fd, raw)
    }
    return fd
}

/// Accepts one connection, waiting up to two seconds for it.
func acceptOne(_ fds: Descriptors, _ listener: FileDescriptor) throws -> FileDescriptor {
    let deadline = ContinuousClock.now + .seconds(2)
    while ContinuousClock.now < deadline {
        if case .processed(let fd) = try Sys.accept4(listener) { return fds.track(fd) }
        _ = waitReadable(listener, milliseconds: 100)
    }
    throw TestFailure("no connection to accept within 2 s")
}

/// A connected loopback TCP pair; the listener is closed again.
func tcpPair(_ fds: Descriptors) throws -> (client: FileDescriptor, server: FileDescriptor) {
    let (listener, port) = try tcpListener(fds)
    defer { fds.close(listener) }
    let client = try tcpConnect(fds, port: port)
    let server = try acceptOne(fds, listener)
    return (client, server)
}

/// A connected AF_UNIX socket pair of `type` (stream by default).
func unixPair(_ fds: Descriptors, type: Int32 = streamType) throws -> (
    FileDescriptor, FileDescriptor
) {
    let (a, b) = try Sys.socketpair(domain: AF_UNIX, type: type)
    return (fds.track(a), fds.track(b))
}

let streamType = Int32(SOCK_STREAM.rawValue)
let datagramType = Int32(SOCK_DGRAM.rawValue)

/// Writes `text` (must fit at once into an empty socket buffer or pipe).
func send(_ fd: FileDescriptor, _ text: String = "x") throws {
    let bytes = Array(text.utf8)
    let result = try bytes.withUnsafeBytes { (raw) throws(Errno) in try Sys.write(fd, from: raw) }
    guard result == .processed(bytes.count) else { throw TestFailure("short write: \(result)") }
}

/// Reads until the descriptor would block or reports end of file; returns the bytes read.
@discardableResult
func drain(_ fd: FileDescriptor) throws -> Int {
    var buffer = [UInt8](repeating: 0, count: 4096)
    var total = 0
    while true {
        let result = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
            try Sys.read(fd, into: raw)
        }
        switch result {
        case .wouldBlock, .processed(0): return total
        case .processed(let count): total += count
        }
    }
}

/// One read into a small buffer.
func readOnce(_ fd: FileDescriptor) throws -> IOResult<Int> {
    var buffer = [UInt8](repeating: 0, count: 512)
    return try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in try Sys.read(fd, into: raw) }
}

/// poll(2) on one descriptor for POLLIN, independent of any selector.
func waitReadable(_ fd: FileDescriptor, milliseconds: Int32) -> Bool {
    var entry = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
    let ready = withUnsafeMutablePointer(to: &entry) { pointer in
        (try? Sys.poll(
            UnsafeMutableBufferPointer(start: pointer, count: 1),
            timeoutMilliseconds: milliseconds)) ?? 0
    }
    return ready > 0 && entry.revents & Int16(POLLIN) != 0
}

/// A failure raised by a helper.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
