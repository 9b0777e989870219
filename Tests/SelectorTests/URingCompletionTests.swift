#if os(Linux)
import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

/// URingSelector's completion I/O, below the reactor: multishot receives into provided
/// buffers (one completion per 16 KiB message, recovery when the buffers run out, resuming
/// after a stop), sends that the kernel takes in part, and completions of requests that ended
/// with their descriptor (generations).
@Suite("URingSelector completion I/O", .serialized, .opensDescriptors)
struct URingCompletionTests {
    /// Runs `select` until `done` says so (at most `turns` times, 100 ms each); returns every
    /// completion seen, received bytes copied out.
    private static func collect(
        _ selector: URingSelector, turns: Int = 200,
        until done: ([(IOCompletion, [UInt8])]) -> Bool
    ) throws -> [(IOCompletion, [UInt8])] {
        var seen: [(IOCompletion, [UInt8])] = []
        var events = Events(capacity: 16)
        for _ in 0..<turns where !done(seen) {
            try selector.select(into: &events, timeout: .milliseconds(100))
            for completion in selector.completions {
                seen.append((completion, Array(completion.receivedBytes)))
            }
        }
        return seen
    }

    private static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
    }

    private static func write(_ fd: FileDescriptor, _ bytes: [UInt8]) throws {
        let result = try bytes.withUnsafeBytes { (raw) throws(Errno) in try Sys.write(fd, from: raw)
        }
        guard result == .processed(bytes.count) else { throw TestFailure("short write: \(result)") }
    }

    @Test("a 16 KiB message arrives in one receive completion")
    func sixteenKiBInOneCompletion() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.receive(a, token: 5)
            let message = Self.pattern(16 << 10)
            try Self.write(b, message)
            let seen = try Self.collect(selector) {
                $0.reduce(0) { $0 + $1.1.count } >= message.count
            }
            #expect(seen.count == 1, "\(seen.map { $0.0.result })")
            #expect(seen.first?.0.token == 5 && seen.first?.0.operation == .receive)
            #expect(seen.first?.1 == message)
            selector.endIO(a)
        }
    }

    @Test("a receive that runs out of provided buffers is armed again and loses no byte")
    func outOfBuffersRecovers() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            // Two 64-byte buffers for 10 KiB: the multishot receive ends with ENOBUFS after
            // every second completion.
            let selector = try URingSelector(receiveBufferCount: 2, receiveBufferSize: 64)
            let (a, b) = try unixPair(fds)
            try selector.receive(a, token: 1)
            let message = Self.pattern(10 << 10)
            try Self.write(b, message)
            let seen = try Self.collect(selector, turns: 2000) {
                $0.reduce(0) { $0 + $1.1.count } >= message.count
            }
            #expect(seen.allSatisfy { $0.0.result > 0 && $0.0.result <= 64 })
            #expect(seen.flatMap { $0.1 } == message)
            #expect(selector.outOfBuffersCount > 0)
            selector.endIO(a)
        }
    }

    @Test("a stopped receive reports nothing; receiving again delivers what came meanwhile")
    func stopAndResume() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.receive(a, token: 1)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .zero)  // arms it
            selector.stopReceiving(a)
            try selector.select(into: &events, timeout: .zero)  // cancels it
            try send(b, "later")
            let idle = try Self.collect(selector, turns: 2) { _ in false }
            #expect(idle.isEmpty, "\(idle.map { $0.0 })")
            try selector.receive(a, token: 2)
            let seen = try Self.collect(selector) { $0.reduce(0) { $0 + $1.1.count } >= 5 }
            #expect(seen.map { $0.0.token } == [2])
            #expect(seen.flatMap { $0.1 } == Array("later".utf8))
            selector.endIO(a)
        }
    }

    /// Whether some io_uring of this process holds `fd`'s socket (inode `inode`) in its
    /// registered-file table, at the slot of `fd`'s number (/proc/self/fdinfo of the ring lists
    /// each filled slot as "<slot>: socket:[<inode>]").
    private static func registeredFilesHold(_ inode: UInt64, at fd: FileDescriptor) -> Bool {
        let slot = "\(fd.rawValue): socket:[\(inode)]"
        for number in openDescriptors().keys {
            guard let file = fopen("/proc/self/fdinfo/\(number)", "r") else { continue }
            defer { fclose(file) }
            var text: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while case let count = fread(&chunk, 1, chunk.count, file), count > 0 {
                text += chunk[..<count]
            }
            let info = String(decoding: text, as: UTF8.self)
            if info.contains("UserFiles:")
                && info.split(separator: "\n").contains(where: { $0.hasSuffix(slot) })
            {
                return true
            }
        }
        return false
    }

    @Test(
        "sends go through the registered-file table; ending the I/O empties the slot, so the socket closes with its descriptor"
    )
    func sendsThroughRegisteredFiles() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            // The first receive makes the buffers and the table.
            try selector.receive(a, token: 1)
            #expect(selector.registeredFileSlots > Int(a.rawValue))
            let inode = try Sys.fstat(a).inode
            #expect(!Self.registeredFilesHold(inode, at: a))
            final class Owner {}
            let message = Array("through the table".utf8)
            try message.withUnsafeBytes { raw in
                try selector.send(a, token: 1, bytes: raw, keepingAlive: Owner())
                let seen = try Self.collect(selector) { $0.contains { $0.0.operation == .send } }
                #expect(seen.first { $0.0.operation == .send }?.0.result == Int32(message.count))
            }
            #expect(Self.registeredFilesHold(inode, at: a), "the send did not use the table")
            #expect(try drain(b) == message.count)
            selector.endIO(a)
            fds.close(a)
            // The next enter ends the receive and empties the slot: the socket closes there.
            var events = Events(capacity: 4)
            try selector.select(into: &events, timeout: .zero)
            #expect(!Self.registeredFilesHold(inode, at: a), "ending the I/O left the slot full")
            var byte: UInt8 = 0
            let result = try withUnsafeMutableBytes(of: &byte) { (raw) throws(Errno) in
                try Sys.read(b, into: raw)
            }
            #expect(result == .processed(0), "the socket outlived its descriptor: \(result)")
        }
    }

    @Test("a send the socket cannot take whole completes with the part it took")
    func partialSend() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            final class Bytes {
                let buffer = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: 8 << 20, alignment: 16)
                deinit { buffer.deallocate() }
            }
            let bytes = Bytes()
            bytes.buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
            try selector.send(
                a, token: 3, bytes: UnsafeRawBufferPointer(bytes.buffer), keepingAlive: bytes)
            // One send at a time per descriptor.
            #expect(throws: Errno.EBUSY) {
                try selector.send(
                    a, token: 3, bytes: UnsafeRawBufferPointer(bytes.buffer), keepingAlive: bytes)
            }
            let seen = try Self.collect(selector) { !$0.isEmpty }
            #expect(seen.count == 1)
            let sent = Int(seen.first?.0.result ?? -1)
            #expect(seen.first?.0.operation == .send)
            #expect(sent > 0 && sent < 8 << 20, "sent \(sent)")
            // The rest goes once the peer reads.
            var received = try drain(b)
            try selector.send(
                a, token: 3,
                bytes: UnsafeRawBufferPointer(rebasing: bytes.buffer[sent..<(sent + 1000)]),
                keepingAlive: bytes)
            let more = try Self.collect(selector) { !$0.isEmpty }
            #expect(more.first?.0.result == 1000)
            received += try drain(b)
            #expect(received == sent + 1000)
            selector.endIO(a)
        }
    }

    @Test("completions of an ended descriptor never reach the one that reuses its number")
    func lateCompletionsAfterEndAreDropped() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            // Two buffers: a stale completion that kept its buffer would starve the new one.
            let selector = try URingSelector(receiveBufferCount: 2, receiveBufferSize: 64)
            for round in 0..<8 {
                let (a, b) = try unixPair(fds)
                try selector.receive(a, token: Token(rawValue: UInt64(round) * 2 + 1))
                var events = Events(capacity: 8)
                try selector.select(into: &events, timeout: .zero)  // arms it
                try send(b, String(repeating: "o", count: 100))
                // The kernel has received into both buffers by now, or will before the cancel.
                #expect(waitReadable(a, milliseconds: 50) || true)
                #expect(selector.endIO(a))
                #expect(!selector.endIO(a))
                fds.close(a)
                fds.close(b)
                let (c, d) = try unixPair(fds)
                #expect(c == a, "the number is reused")
                let token = Token(rawValue: UInt64(round) * 2 + 2)
                try selector.receive(c, token: token)
                try send(d, "new")
                let seen = try Self.collect(selector) { $0.reduce(0) { $0 + $1.1.count } >= 3 }
                #expect(seen.allSatisfy { $0.0.token == token }, "\(seen.map { $0.0.token })")
                #expect(seen.flatMap { $0.1 } == Array("new".utf8))
                #expect(selector.endIO(c))
                fds.close(c)
                fds.close(d)
            }
        }
    }

    @Test("a send holding its receive buffer keeps that buffer from receives until it completes")
    func sendHoldsItsReceiveBuffer() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            // One buffer: while the echo of the first message holds it, the second must wait.
            let selector = try URingSelector(receiveBufferCount: 1, receiveBufferSize: 64)
            let (a, b) = try unixPair(fds)
            try selector.receive(a, token: 1)
            let first = [UInt8](repeating: 0x41, count: 64)
            let second = [UInt8](repeating: 0x42, count: 64)
            try Self.write(b, first)
            var received: [UInt8] = []
            var echoed = 0
            var events = Events(capacity: 8)
            final class Owner {}
            let owner = Owner()
            func turn() throws {
                try selector.select(into: &events, timeout: .milliseconds(20))
                for completion in selector.completions {
                    if completion.operation == .send {
                        echoed += Int(completion.result)
                    } else {
                        received += completion.receivedBytes
                    }
                }
            }
            // The first message, in buffer 0.
            var echo = UnsafeRawBufferPointer(start: nil, count: 0)
            var buffer: Int32 = -1
            for _ in 0..<100 where echo.isEmpty {
                try selector.select(into: &events, timeout: .milliseconds(100))
                for completion in selector.completions where completion.operation == .receive {
                    echo = completion.receivedBytes
                    buffer = completion.buffer
                }
            }
            #expect(buffer == 0 && echo.count == 64)
            #expect(selector.receiveBufferPool.start == echo.baseAddress)
            // Fill the peer's socket so that the echo waits in the kernel, holding buffer 0.
            let filler = [UInt8](repeating: 0x2E, count: 4096)
            var filled = 0
            while case .processed(let n) = try filler.withUnsafeBytes({ (raw) throws(Errno) in
                try Sys.write(a, from: raw)
            }) {
                filled += n
            }
            try selector.send(a, token: 1, bytes: echo, keepingAlive: owner, holdingBuffer: buffer)
            try Self.write(b, second)
            for _ in 0..<5 { try turn() }
            #expect(received.isEmpty, "a receive took the held buffer")
            #expect(echoed == 0, "the echo did not wait")
            // The peer reads: the echo goes out whole and intact, then the second message comes.
            var back: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            for _ in 0..<200 where back.count < filled + 64 || received.count < 64 {
                while case .processed(let n) = try chunk.withUnsafeMutableBytes({
                    (raw) throws(Errno) in try Sys.read(b, into: raw)
                }), n > 0 {
                    back += chunk[..<n]
                }
                try turn()
            }
            #expect(back.count == filled + 64)
            #expect(Array(back.suffix(64)) == first, "the echo was overwritten by a receive")
            #expect(echoed == 64)
            #expect(received == second)
            #expect(throws: Errno.EINVAL) {
                try selector.send(
                    a, token: 1, bytes: UnsafeRawBufferPointer(start: nil, count: 0),
                    keepingAlive: owner, holdingBuffer: 1)
            }
            selector.endIO(a)
        }
    }

    @Test("the first accept maps the provided buffers, every page resident before a connection")
    func firstAcceptMakesThePoolResident() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector(receiveBufferCount: 8, receiveBufferSize: 16 << 10)
            #expect(selector.receiveBufferPool.start == nil, "no pool before completion I/O")
            let (listener, _) = try tcpListener(fds)
            try selector.accept(listener, token: 1)
            let pool = selector.receiveBufferPool
            let start = try #require(pool.start, "the accept made no pool")
            #expect(pool.count == 8 && pool.bufferSize == 16 << 10)
            // mincore: one byte per page, bit 0 set where the page is resident. A pool faulted
            // in as receives first touch it would show no resident page here.
            let pages = pool.count * pool.bufferSize / 4096
            var residency = [UInt8](repeating: 0, count: pages)
            let result = residency.withUnsafeMutableBufferPointer {
                mincore(UnsafeMutableRawPointer(mutating: start), pages * 4096, $0.baseAddress)
            }
            #expect(result == 0)
            #expect(residency.allSatisfy { $0 & 1 == 1 }, "pages not resident: \(residency)")
            selector.endIO(listener)
        }
    }

    @Test("sends in flight, completed or orphaned by endIO, reuse their slots: the owners go")
    func sendSlotsAreReusedAndReleaseOwners() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector(receiveBufferCount: 2, receiveBufferSize: 64)
            final class Owner {}
            weak var lastOwner: Owner?
            var events = Events(capacity: 8)
            let message = [UInt8](repeating: 0x61, count: 16)
            for round in 0..<40 {
                let (a, b) = try unixPair(fds)
                // The owner alone keeps the bytes alive in real use; here they need only outlive
                // the turns below.
                let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
                defer { bytes.deallocate() }
                bytes.copyBytes(from: message)
                do {
                    let owner = Owner()
                    lastOwner = owner
                    try selector.send(
                        a, token: Token(rawValue: UInt64(round)),
                        bytes: UnsafeRawBufferPointer(bytes), keepingAlive: owner)
                }
                if round % 2 == 0 {
                    // Completed: the owner goes with the completion.
                    var sent: Int32 = -1
                    for _ in 0..<100 where sent < 0 {
                        try selector.select(into: &events, timeout: .milliseconds(100))
                        for completion in selector.completions where completion.operation == .send {
                            sent = completion.result
                        }
                    }
                    #expect(sent == 16)
                } else {
                    // Ended before its submission was reaped: the owner stays until the send's
                    // completion, which is dropped.
                    #expect(selector.endIO(a))
                    #expect(lastOwner != nil, "an orphaned send's owner went before its completion")
                    for _ in 0..<3 { try selector.select(into: &events, timeout: .milliseconds(5)) }
                    #expect(selector.completions.isEmpty)
                }
                #expect(lastOwner == nil, "round \(round): the send's owner is still held")
                selector.endIO(a)
                fds.close(a)
                fds.close(b)
            }
        }
    }

    @Test("readiness backends refuse completion I/O with EOPNOTSUPP")
    func readinessBackendsRefuse() throws {
        try Backend.epoll.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try EpollSelector()
            let (a, _) = try unixPair(fds)
            #expect(!EpollSelector.completesIO && URingSelector.completesIO)
            #expect(throws: Errno.EOPNOTSUPP) { try selector.receive(a, token: 1) }
            #expect(throws: Errno.EOPNOTSUPP) { try selector.accept(a, token: 1) }
            #expect(!selector.endIO(a))
            #expect(selector.completions.isEmpty)
        }
    }
}
#endif
