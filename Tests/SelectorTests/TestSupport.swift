import Glibc
import Selector
import SysCalls
import TestSupport

// Helpers for the conformance suite: tracked descriptors and loopback sockets. The backend
// list, the leak check, threads and signals are in TestSupport. Tests may call libc directly.

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
/// At would-block it tells `selector`'s drain hook, as the edge contract asks.
@discardableResult
func drain(_ fd: FileDescriptor, for selector: (some EventSelector)? = MockSelector?.none)
    throws -> Int
{
    var buffer = [UInt8](repeating: 0, count: 4096)
    var total = 0
    while true {
        let result = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
            try Sys.read(fd, into: raw)
        }
        switch result {
        case .wouldBlock:
            selector?.drainHook?.drained(fd, .readable)
            return total
        case .processed(0): return total
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
    waitFor(Int16(POLLIN), on: fd, milliseconds: milliseconds)
}

/// poll(2) on one descriptor until one of `events` is reported, independent of any selector.
func waitFor(_ events: Int16, on fd: FileDescriptor, milliseconds: Int32) -> Bool {
    var entry = pollfd(fd: fd.rawValue, events: events, revents: 0)
    let ready = withUnsafeMutablePointer(to: &entry) { pointer in
        (try? Sys.poll(
            UnsafeMutableBufferPointer(start: pointer, count: 1),
            timeoutMilliseconds: milliseconds)) ?? 0
    }
    return ready > 0 && entry.revents & events != 0
}
