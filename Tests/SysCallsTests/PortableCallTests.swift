import Glibc
import SysCalls
import TestSupport
import Testing

/// The calls other systems make differently, run on Linux too: creating descriptors with
/// fcntl after the call (`DescriptorSetup.afterCall`, what systems without SOCK_NONBLOCK,
/// accept4 and pipe2 do) as well as in it, the pipe wake descriptor as well as the eventfd,
/// and the spare descriptor's /dev/null as well as its eventfd.
@Suite("Portable calls, each way on Linux", .opensDescriptors)
struct PortableCallTests {
    static let setups: [Sys.DescriptorSetup] = [.inCall, .afterCall]
    static let wakeKinds: [Sys.WakeKind] = [.eventfd, .pipe]

    @Test(
        "accept gives a non-blocking, close-on-exec socket and the peer's address",
        arguments: setups)
    func acceptConfiguresAndDecodesThePeer(_ setup: Sys.DescriptorSetup) throws {
        try checkingDescriptorLeaks {
            let listener = try loopbackListener()
            defer { try? Sys.close(listener) }
            let client = try Sys.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
            defer { try? Sys.close(client) }
            let (bound, boundLength) = try Sys.getsockname(listener)
            try withUnsafeBytes(of: bound) { (raw) throws(Errno) in
                _ = try Sys.connect(
                    client, UnsafeRawBufferPointer(rebasing: raw[..<Int(boundLength)]))
            }
            try waitReadable(listener)

            var peer = sockaddr_storage()
            var length = socklen_t(0)
            let accepted = try Sys.accept(
                listener, peer: &peer, peerLength: &length, setup: setup)
            guard case .processed(let fd) = accepted else {
                Issue.record("accept: \(accepted)")
                return
            }
            defer { try? Sys.close(fd) }
            #expect(try isNonBlocking(fd), "O_NONBLOCK")
            #expect(try isCloseOnExec(fd), "FD_CLOEXEC")
            #expect(length == socklen_t(MemoryLayout<sockaddr_in>.size))
            let address = withUnsafeBytes(of: peer) { $0.load(as: sockaddr_in.self) }
            let clientAddress = withUnsafeBytes(of: try Sys.getsockname(client).0) {
                $0.load(as: sockaddr_in.self)
            }
            #expect(Int32(address.sin_family) == AF_INET)
            #expect(UInt32(bigEndian: address.sin_addr.s_addr) == 0x7f00_0001)
            #expect(address.sin_port == clientAddress.sin_port)
            #expect(try Sys.accept(listener, setup: setup) == .wouldBlock)
        }
    }

    @Test("accept with no pending connection is .wouldBlock, either way", arguments: setups)
    func acceptWithNothingPendingWouldBlock(_ setup: Sys.DescriptorSetup) throws {
        try checkingDescriptorLeaks {
            let listener = try loopbackListener()
            defer { try? Sys.close(listener) }
            var peer = sockaddr_storage()
            var length = socklen_t(0)
            #expect(
                try Sys.accept(listener, peer: &peer, peerLength: &length, setup: setup)
                    == .wouldBlock)
        }
    }

    @Test(
        "socket, socketpair and pipe give non-blocking, close-on-exec descriptors",
        arguments: setups)
    func creatingCallsConfigure(_ setup: Sys.DescriptorSetup) throws {
        try checkingDescriptorLeaks {
            let socket = try Sys.socket(
                domain: AF_INET, type: Int32(SOCK_DGRAM.rawValue), setup: setup)
            let (a, b) = try Sys.socketpair(type: Int32(SOCK_STREAM.rawValue), setup: setup)
            let (read, write) = try Sys.pipe(setup: setup)
            let all = [socket, a, b, read, write]
            defer { for fd in all { try? Sys.close(fd) } }
            for fd in all {
                #expect(try isNonBlocking(fd), "O_NONBLOCK on \(fd)")
                #expect(try isCloseOnExec(fd), "FD_CLOEXEC on \(fd)")
            }
            // Non-blocking in fact, not only in its flags.
            #expect(try readOnce(read) == .wouldBlock)
        }
    }

    @Test("a wake descriptor turns readable on a signal and quiet on a drain", arguments: wakeKinds)
    func wakeDescriptorSignalsAndDrains(_ kind: Sys.WakeKind) throws {
        try checkingDescriptorLeaks {
            let (read, write) = try kind.open()
            defer {
                try? Sys.close(read)
                if write != read { try? Sys.close(write) }
            }
            #expect(try isNonBlocking(read) && isNonBlocking(write))
            #expect(try isCloseOnExec(read) && isCloseOnExec(write))
            #expect(try !isReadable(read))
            for _ in 0..<3 { #expect(try kind.signal(write) == .processed(kind.signalSize)) }
            #expect(try isReadable(read))
            try kind.drain(read)
            #expect(try !isReadable(read))
            try kind.drain(read)  // draining an empty one is fine
            #expect(try kind.signal(write) == .processed(kind.signalSize))
            #expect(try isReadable(read))
        }
    }

    @Test(
        "a full wake descriptor signals .wouldBlock, is readable, and takes signals after a drain",
        arguments: wakeKinds)
    func fullWakeDescriptorWouldBlock(_ kind: Sys.WakeKind) throws {
        try checkingDescriptorLeaks {
            let (read, write) = try kind.open()
            defer {
                try? Sys.close(read)
                if write != read { try? Sys.close(write) }
            }
            switch kind {
            case .eventfd: _ = try Sys.eventfdWrite(write, UInt64.max - 1)
            case .pipe: while case .processed = try kind.signal(write) {}
            }
            #expect(try kind.signal(write) == .wouldBlock)
            #expect(try isReadable(read))
            try kind.drain(read)
            #expect(try !isReadable(read))
            #expect(try kind.signal(write) == .processed(kind.signalSize))
        }
    }

    @Test("the spare descriptor, and /dev/null as other systems open it, are close-on-exec")
    func spareDescriptorIsCloseOnExec() throws {
        try checkingDescriptorLeaks {
            let spare = try Sys.openSpareDescriptor()
            defer { try? Sys.close(spare) }
            #expect(try isCloseOnExec(spare))
            #expect(descriptorTarget(spare.rawValue).contains("eventfd"))

            let devNull = try Sys.open("/dev/null", flags: O_RDONLY)
            defer { try? Sys.close(devNull) }
            #expect(try isCloseOnExec(devNull))
            #expect(descriptorTarget(devNull.rawValue) == "/dev/null")
            #expect(try readOnce(devNull) == .processed(0))
            #expect(throws: Errno.ENOENT) { try Sys.open("/nonexistent/spare", flags: O_RDONLY) }
        }
    }
}

extension Sys.WakeKind {
    /// The bytes one signal writes.
    var signalSize: Int { self == .eventfd ? 8 : 1 }
}

/// A TCP listener on 127.0.0.1, on a port the kernel picks.
private func loopbackListener() throws -> FileDescriptor {
    let listener = try Sys.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    do {
        try withUnsafeBytes(of: address) { (raw) throws(Errno) in try Sys.bind(listener, raw) }
        try Sys.listen(listener, backlog: 8)
    } catch {
        try? Sys.close(listener)
        throw error
    }
    return listener
}

private func isNonBlocking(_ fd: FileDescriptor) throws -> Bool {
    try Sys.fcntl(fd, F_GETFL) & O_NONBLOCK != 0
}

private func isCloseOnExec(_ fd: FileDescriptor) throws -> Bool {
    try Sys.fcntl(fd, F_GETFD) & FD_CLOEXEC != 0
}

/// Whether poll(2) reports `fd` readable right now.
private func isReadable(_ fd: FileDescriptor) throws -> Bool {
    var entry = [Sys.PollFD(fd: fd.rawValue, events: Sys.PollEvent.input, revents: 0)]
    let ready = try entry.withUnsafeMutableBufferPointer { (set) throws(Errno) in
        try Sys.poll(set, timeoutMilliseconds: 0)
    }
    return ready == 1 && entry[0].revents & Sys.PollEvent.input != 0
}

/// Waits up to two seconds for `fd` to turn readable.
private func waitReadable(_ fd: FileDescriptor) throws {
    var entry = [Sys.PollFD(fd: fd.rawValue, events: Sys.PollEvent.input, revents: 0)]
    let ready = try entry.withUnsafeMutableBufferPointer { (set) throws(Errno) in
        try Sys.poll(set, timeoutMilliseconds: 2000)
    }
    if ready != 1 { throw TestFailure("\(fd) did not turn readable") }
}
