import Glibc
import SysCalls
import Testing

// Descriptor-leak checks: the whole process's /proc/self/fd before and after a test, or the
// descriptors one test noted itself.

/// The process's open descriptors: number → what /proc says it points at.
public func openDescriptors() -> [Int32: String] {
    guard let directory = opendir("/proc/self/fd") else { return [:] }
    let own = dirfd(directory)
    defer { closedir(directory) }
    var result: [Int32: String] = [:]
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let fd = Int32(name), fd != own else { continue }
        result[fd] = descriptorTarget(fd)
    }
    return result
}

/// What /proc/self/fd/`fd` points at ("" if it is not open).
public func descriptorTarget(_ fd: Int32) -> String {
    var target = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/self/fd/\(fd)", &target, 255)
    let bytes = target.prefix(max(0, count)).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Which of the descriptors new after a test `checkingDescriptorLeaks` counts as leaked.
public enum LeakScope: Sendable {
    /// Every descriptor that is new (by number and target).
    case all
    /// For suites that share the process with other suites running in parallel: a new socket
    /// counts only if its local or peer port was registered with `DescriptorLeaks.own(port:)`
    /// during the check; a timerfd never counts (Dispatch opens one lazily for the process's
    /// lifetime); anything else (eventfd, epoll, pipe) cannot be attributed and counts.
    case ownedPorts
}

/// Runs `body` and records an issue if descriptors opened during it are still open after.
///
/// The test must hold the `DescriptorGate` (its suite has the `.opensDescriptors` trait), so
/// no other descriptor-opening test runs meanwhile. New descriptors (by number and target)
/// within `scope` get `grace` to go away (a child process or a peer may take a moment to let
/// go of its end). A real leak stays, and fails. A failed `body` is checked too (its
/// defers have run: a leak may be why it failed), then its error is rethrown.
public func checkingDescriptorLeaks(
    grace: Duration = .seconds(10), scope: LeakScope = .all,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) throws {
    DescriptorGate.expectHeld(sourceLocation: sourceLocation)
    if case .ownedPorts = scope { DescriptorLeaks.resetPorts() }
    let before = openDescriptors()
    var failure: (any Error)?
    do { try body() } catch { failure = error }
    defer { if let failure { Issue.record(failure, sourceLocation: sourceLocation) } }
    let deadline = ContinuousClock.now + grace
    var leaked: [Int32: String] = [:]
    repeat {
        leaked = openDescriptors().filter {
            guard before[$0.key] != $0.value else { return false }
            switch scope {
            case .all: return true
            case .ownedPorts: return DescriptorLeaks.mayBeOurs($0.key, target: $0.value)
            }
        }
        if leaked.isEmpty { return }
        usleep(10_000)
    } while ContinuousClock.now < deadline
    let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
    Issue.record(
        "descriptors left open: \(list.joined(separator: ", "))", sourceLocation: sourceLocation)
}

/// The server ports of the running test, for `LeakScope.ownedPorts`.
public enum DescriptorLeaks {
    private static let portLock = Lock()
    // Invariant: only accessed with `portLock` held.
    nonisolated(unsafe) private static var ports: Set<UInt16> = []

    /// Notes a server port of the running test: sockets bound or connected to it are its own.
    public static func own(port: UInt16) {
        guard port != 0 else { return }
        portLock.withLock { _ = ports.insert(port) }
    }

    /// Forgets the ports of earlier checks.
    static func resetPorts() { portLock.withLock { ports = [] } }

    /// Whether a new descriptor may belong to the running test.
    static func mayBeOurs(_ fd: Int32, target: String) -> Bool {
        if target == "anon_inode:[timerfd]" { return false }
        guard target.hasPrefix("socket:") else { return true }
        let owned = portLock.withLock { ports }
        let descriptor = FileDescriptor(fd)
        // The number may be closed (or reused) meanwhile: then it is not a leak of ours.
        let local = (try? Sys.getsockname(descriptor)).flatMap { port(of: $0.0) }
        let peer = (try? Sys.getpeername(descriptor)).flatMap { port(of: $0.0) }
        return [local, peer].contains { $0.map(owned.contains) ?? false }
    }

    /// The port of an IPv4 or IPv6 socket address.
    private static func port(of storage: sockaddr_storage) -> UInt16? {
        withUnsafeBytes(of: storage) { raw in
            switch Int32(storage.ss_family) {
            case AF_INET: UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
            case AF_INET6: UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            default: nil
            }
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit if it is below `needed`.
public func ensureOpenFileLimit(_ needed: UInt64) throws {
    let (soft, hard) = try Sys.openFileLimit()
    guard soft < needed else { return }
    try Sys.setOpenFileLimit(soft: hard, hard: hard)
    guard hard >= needed else {
        throw TestFailure("RLIMIT_NOFILE hard limit \(hard) is below the \(needed) needed")
    }
}

/// Descriptors a test opened, each remembered with what /proc says it points at, so the
/// check is not fooled when a parallel test reuses a number for another file.
public final class DescriptorTracker: @unchecked Sendable {
    // Invariant: `opened` is only touched with `lock` held.
    private var opened: [(fd: Int32, target: String)] = []
    private let lock = Lock()

    /// An empty tracker.
    public init() {}

    /// Remembers `fd` as opened by this test.
    public func note(_ fd: Int32) {
        let target = descriptorTarget(fd)
        lock.withLock { opened.append((fd, target)) }
    }

    /// Records an issue for every noted descriptor still open (after a grace of three seconds).
    public func expectAllClosed(sourceLocation: SourceLocation = #_sourceLocation) {
        DescriptorGate.expectHeld(sourceLocation: sourceLocation)
        let all = lock.withLock { opened }
        let deadline = ContinuousClock.now + .seconds(3)
        var open: [(fd: Int32, target: String)] = []
        repeat {
            open = all.filter { !$0.target.isEmpty && descriptorTarget($0.fd) == $0.target }
            if open.isEmpty { return }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        let list = open.prefix(10).map { "\($0.fd) → \($0.target)" }.joined(separator: ", ")
        Issue.record(
            "\(open.count) descriptors left open: \(list)", sourceLocation: sourceLocation)
    }
}

/// A failure raised by a helper.
public struct TestFailure: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    /// A failure saying `description`.
    public init(_ description: String) { self.description = description }
}
