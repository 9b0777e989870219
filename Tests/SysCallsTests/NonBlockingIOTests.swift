import Glibc
import SysCalls
import TestSupport
import Testing

@Suite("Non-blocking I/O: would-block is a value", .opensDescriptors)
struct NonBlockingIOTests {
    @Test("reading an empty non-blocking pipe is .wouldBlock, every time")
    func emptyReadWouldBlock() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 4)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            #expect(try readOnce(read) == .wouldBlock)
            #expect(try readOnce(read) == .wouldBlock)
        }
    }

    @Test("data and end of file are .processed")
    func dataAndEOFAreProcessed() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 5)
            defer { try? Sys.close(read) }
            let written = try Array("abc".utf8).withUnsafeBytes { (raw) throws(Errno) in
                try Sys.write(write, from: raw)
            }
            #expect(written == .processed(3))
            #expect(written.value == 3)
            #expect(try readOnce(read) == .processed(3))
            try Sys.close(write)
            #expect(try readOnce(read) == .processed(0))
        }
    }

    @Test("writing into a full pipe is .wouldBlock")
    func fullWriteWouldBlock() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 6)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
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
        }
    }

    @Test("accept with no pending connection is .wouldBlock")
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
            #expect(try Sys.accept4(listener) == .wouldBlock)
        }
    }

    @Test("retryingIO turns EAGAIN and EWOULDBLOCK into .wouldBlock, other errors into Errno")
    func retryingIOTurnsEAGAINIntoWouldBlock() throws {
        for code in [EAGAIN, EWOULDBLOCK] {
            let result = try Sys.retryingIO("test") { () -> Int in
                errno = code
                return -1
            }
            #expect(result == .wouldBlock)
        }
        #expect(throws: Errno.EPIPE) {
            try Sys.retryingIO("test") { () -> Int in
                errno = EPIPE
                return -1
            }
        }
    }
}

/// One read into a small buffer.
func readOnce(_ fd: FileDescriptor) throws -> IOResult<Int> {
    var buffer = [UInt8](repeating: 0, count: 512)
    return try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in try Sys.read(fd, into: raw) }
}
