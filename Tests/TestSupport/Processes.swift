import Glibc

// The example binaries and other child processes: where they are built, what /proc says
// about them, and the "listening on" line they print first.

/// The path of product `name` built next to the test binary (`swift build` and `swift test`
/// put products in the same directory, outside any .xctest bundle); throws if it is missing.
public func siblingExecutable(_ name: String) throws -> String {
    var target = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &target, 4095)
    guard count > 0 else { throw TestFailure("cannot read /proc/self/exe") }
    var directory = String(
        decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    repeat {
        directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
    } while directory.contains(".xctest")
    let path = "\(directory)/\(name)"
    guard access(path, X_OK) == 0 else {
        throw TestFailure("\(path) not found: build the package's products first")
    }
    return path
}

/// Resident set size (VmRSS) of process `pid` in KiB; nil if unreadable.
public func residentKiB(pid: pid_t) -> Int? {
    guard let status = readProcFile("/proc/\(pid)/status"),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return nil }
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}

/// CPU time process `pid` has used, in clock ticks (utime + stime from /proc/PID/stat).
public func cpuTicks(pid: pid_t) throws -> Int {
    guard let stat = readProcFile("/proc/\(pid)/stat") else {
        throw TestFailure("cannot read /proc/\(pid)/stat")
    }
    // Fields after the ")" that closes the command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    guard let close = stat.lastIndex(of: ")") else { throw TestFailure("bad stat: \(stat)") }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else {
        throw TestFailure("bad stat: \(stat)")
    }
    return user + system
}

/// Clock ticks per second, the unit of `cpuTicks(pid:)`.
public var clockTicksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

/// The port in an example's first line, "<name> listening on <host>:<port> (…)"; nil if the
/// line is not that.
public func listeningPort(in line: String, name: String) -> UInt16? {
    guard line.hasPrefix("\(name) listening on "), let colon = line.lastIndex(of: ":"),
        let space = line[colon...].firstIndex(of: " ")
    else { return nil }
    return UInt16(line[line.index(after: colon)..<space])
}

/// A small file under /proc as text (nil if it cannot be read).
private func readProcFile(_ path: String) -> String? {
    let file = open(path, O_RDONLY | O_CLOEXEC)
    guard file >= 0 else { return nil }
    defer { _ = close(file) }
    var text: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        text += buffer[..<count]
    }
    return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
}

/// A deterministic byte generator (xorshift64*), so a failing hostile input can be replayed.
public struct TestRandom {
    private var state: UInt64

    /// Starts from `seed` (made non-zero).
    public init(seed: UInt64) { state = seed | 1 }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    /// A number in 0..<bound.
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next() >> 32) }
    }
}

/// A blocking TCP socket connected to 127.0.0.1:`port` whose sends and receives (and the
/// connect itself) time out after `timeout`; the caller closes it.
public func connectBlockingLoopback(port: UInt16, timeout: Duration) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    let (seconds, attoseconds) = timeout.components
    var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    var code = result == 0 ? 0 : errno
    if code == EINTR {
        // Interrupted (a closed io_uring ring's task work signals the threads that used it):
        // the connect goes on in the kernel; wait for it and take its outcome.
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while poll(&entry, 1, 5_000) < 0 && errno == EINTR {}
        var outcome: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &outcome, &length)
        code = entry.revents & Int16(POLLOUT) != 0 ? outcome : ETIMEDOUT
    }
    guard code == 0 else {
        close(fd)
        throw TestFailure("connect to port \(port): errno \(code)")
    }
    return fd
}
