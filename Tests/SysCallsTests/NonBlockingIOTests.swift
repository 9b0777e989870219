import Glibc
import SysCalls
import TestSupport
import Testing

@Suite("Non-blocking I/O and the would-block ledger", .opensDescriptors)
struct NonBlockingIOTests {
    @Test("reading an empty non-blocking pipe is .wouldBlock and bumps the read counter")
    func emptyReadWouldBlock() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 4)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            let before = try #require(WouldBlockLedger.count(read, .read))
            let writesBefore = WouldBlockLedger.count(read, .write)
            #expect(try readOnce(read) == .wouldBlock)
            #expect(WouldBlockLedger.count(read, .read) == before &+ 1)
            #expect(WouldBlockLedger.count(read, .write) == writesBefore)
            #expect(try readOnce(read) == .wouldBlock)
            #expect(WouldBlockLedger.count(read, .read) == before &+ 2)
        }
    }

    @Test("a held ledger table and the static accessors see the same counters")
    func heldTableSharesCounters() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 7)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            let table = WouldBlockLedger.shared
            let before = try #require(table.count(read, .read))
            #expect(WouldBlockLedger.count(read, .read) == before)
            table.note(read, .read)
            #expect(WouldBlockLedger.count(read, .read) == before &+ 1)
            #expect(try readOnce(read) == .wouldBlock)
            #expect(table.count(read, .read) == before &+ 2)
            // Outside the table: nothing to count, and noting is a no-op.
            let outside = FileDescriptor(Int32(truncatingIfNeeded: table.slots))
            #expect(table.count(outside, .read) == nil)
            table.note(outside, .read)
            #expect(table.count(FileDescriptor(-1), .write) == nil)
        }
    }

    @Test("data and end of file are .processed and leave the counter alone")
    func dataAndEOFAreProcessed() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 5)
            defer { try? Sys.close(read) }
            let before = WouldBlockLedger.count(read, .read)
            let written = try Array("abc".utf8).withUnsafeBytes { (raw) throws(Errno) in
                try Sys.write(write, from: raw)
            }
            #expect(written == .processed(3))
            #expect(written.value == 3)
            #expect(try readOnce(read) == .processed(3))
            try Sys.close(write)
            #expect(try readOnce(read) == .processed(0))
            #expect(WouldBlockLedger.count(read, .read) == before)
        }
    }

    @Test("writing into a full pipe is .wouldBlock and bumps the write counter")
    func fullWriteWouldBlock() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 6)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            let before = try #require(WouldBlockLedger.count(write, .write))
            let chunk = [UInt8](repeating: 7, count: 65_536)
            var total = 0
            var result = IOResult<Int>.processed(0)
            while case .processed(let count) = result, total < 64 << 20 {
                total += count
                result = try chunk.withUnsafeBytes { (raw) throws(Errno) in
                    try Sys.write(write, from: raw)
                }
            }
            #expect(result == .wouldBlock)
            #expect(result.value == nil)
            #expect(total > 0)
            #expect(WouldBlockLedger.count(write, .write) == before &+ 1)
        }
    }

    @Test("accept with no pending connection is .wouldBlock and bumps the read counter")
    func acceptWouldBlock() throws {
        try checkingDescriptorLeaks {
            let listener = try Sys.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
            defer { try? Sys.close(listener) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            try withUnsafeBytes(of: address) { (raw) throws(Errno) in
                try Sys.bind(listener, raw)
            }
            try Sys.listen(listener, backlog: 8)
            let before = WouldBlockLedger.count(listener, .read)
            #expect(try Sys.accept4(listener) == .wouldBlock)
            #expect(WouldBlockLedger.count(listener, .read) == before.map { $0 &+ 1 })
        }
    }

    @Test("descriptors outside the ledger's table have no counter")
    func outOfRangeDescriptorsHaveNoCounter() {
        #expect(WouldBlockLedger.count(FileDescriptor(-1), .read) == nil)
        #expect(WouldBlockLedger.count(FileDescriptor(Int32.max), .write) == nil)
        WouldBlockLedger.note(FileDescriptor(-1), .read)  // ignored, no crash
    }

    @Test("retryingIO turns EAGAIN into .wouldBlock and notes it for the descriptor")
    func retryingIOTurnsEAGAINIntoWouldBlock() throws {
        let fd = FileDescriptor(try highPipeNumber(slot: 7))
        let before = WouldBlockLedger.count(fd, .write)
        let result = try Sys.retryingIO("test", fd, .write) { () -> Int in
            errno = EAGAIN
            return -1
        }
        #expect(result == .wouldBlock)
        #expect(WouldBlockLedger.count(fd, .write) == before.map { $0 &+ 1 })
    }

    /// A number in this test's reserved range, not opened: the ledger only indexes by number.
    private func highPipeNumber(slot: Int32) throws -> Int32 {
        let soft = try Sys.openFileLimit().soft
        return Int32(clamping: min(soft, 16_384)) - 32 * (slot + 1)
    }
}

/// One read into a small buffer.
func readOnce(_ fd: FileDescriptor) throws -> IOResult<Int> {
    var buffer = [UInt8](repeating: 0, count: 512)
    return try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in try Sys.read(fd, into: raw) }
}
