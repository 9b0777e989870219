import Glibc
import Selector
import SysCalls
import Testing

// Helpers for the Reactor integration suite: the backend list and the descriptor-leak check.
// ServerSupport.swift and ClientSupport.swift hold the rest. Tests may call libc directly.

/// The real selector backends the integration suite runs against.
enum IntegrationBackend: CaseIterable, CustomStringConvertible, Sendable {
    case epoll
    case poll

    /// Every backend available on this platform.
    static var all: [IntegrationBackend] { allCases }

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
    func run(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ scenario: (any EventSelector.Type) throws -> Void
    ) throws {
        try Leaks.check(sourceLocation: sourceLocation) { try scenario(selectorType) }
    }
}

// MARK: - Descriptor leaks

enum Leaks {
    /// The process's open descriptors: number → what /proc says it points at.
    static func openDescriptors() -> [Int32: String] {
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

    /// Runs `body` and records an issue if a descriptor opened during it is still open after.
    ///
    /// Other suites run in parallel and open descriptors of their own, so only descriptors
    /// that are new (by number and target) count, and of those:
    /// - a socket counts only if its local or peer port is a server port of this test
    ///   (`own(port:)`; `ServerThread` registers its own), so another suite's long-lived
    ///   sockets are told apart at once;
    /// - a timerfd never counts: nothing here creates one, but Dispatch opens one lazily for
    ///   the process's lifetime;
    /// - anything else (eventfd, epoll, pipe) cannot be attributed, so it gets ten seconds to
    ///   go away (a parallel test may hold its own that long on a busy machine).
    static func check(
        sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) throws {
        portLock.withLock { ports = [] }
        let before = openDescriptors()
        // A failed test is checked too (its defers have run): a leak may be why it failed.
        var failure: (any Error)?
        do { try body() } catch { failure = error }
        defer { if let failure { Issue.record(failure, sourceLocation: sourceLocation) } }
        let deadline = ContinuousClock.now + .seconds(10)
        var leaked: [Int32: String] = [:]
        repeat {
            leaked = openDescriptors().filter {
                before[$0.key] != $0.value && isOurs($0.key, target: $0.value)
            }
            if leaked.isEmpty { return }
            usleep(10_000)
        } while ContinuousClock.now < deadline
        let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
        Issue.record(
            "descriptors left open: \(list.joined(separator: ", "))",
            sourceLocation: sourceLocation)
    }

    private static let portLock = Lock()
    // Invariant: only accessed with `portLock` held.
    nonisolated(unsafe) private static var ports: Set<UInt16> = []

    /// Notes a server port of the running test: sockets bound or connected to it are its own.
    static func own(port: UInt16) {
        guard port != 0 else { return }
        portLock.withLock { _ = ports.insert(port) }
    }

    /// Whether a descriptor left open may belong to the running test.
    private static func isOurs(_ fd: Int32, target: String) -> Bool {
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

    /// Raises the soft RLIMIT_NOFILE to the hard limit if it is below `needed`.
    static func ensureOpenFileLimit(_ needed: UInt64) throws {
        let (soft, hard) = try Sys.openFileLimit()
        guard soft < needed else { return }
        try Sys.setOpenFileLimit(soft: hard, hard: hard)
        guard hard >= needed else {
            throw TestFailure("RLIMIT_NOFILE hard limit \(hard) is below the \(needed) needed")
        }
    }
}
