import Glibc
import SysCalls
import TestSupport
import Testing

/// `Sys.recv` and `Sys.send` issue raw system calls that return -errno (no errno read): every
/// outcome must still come back typed.
@Suite("Raw recv/send", .opensDescriptors)
struct RawSocketIOTests {
    @Test("data, would-block, end of file and errors all come back typed from raw recv/send")
    func outcomes() throws {
        try checkingDescriptorLeaks {
            let (a, b) = try Sys.socketpair(type: Int32(SOCK_STREAM.rawValue))
            var bClosed = false
            defer {
                try? Sys.close(a)
                if !bClosed { try? Sys.close(b) }
            }
            var buffer = [UInt8](repeating: 0, count: 16)
            let empty = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.recv(b, into: raw)
            }
            #expect(empty == .wouldBlock)

            let sent = try Array("hello".utf8).withUnsafeBytes { (raw) throws(Errno) in
                try Sys.send(a, raw)
            }
            #expect(sent == .processed(5))
            let got = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.recv(b, into: raw)
            }
            #expect(got == .processed(5))
            #expect(Array(buffer[..<5]) == Array("hello".utf8))

            try Sys.close(b)
            bClosed = true
            // The peer is gone: EPIPE as a typed error naming the call (and no SIGPIPE).
            let error = #expect(throws: Errno.self) {
                _ = try Array("x".utf8).withUnsafeBytes { (raw) throws(Errno) in
                    try Sys.send(a, raw)
                }
            }
            #expect(error?.code == EPIPE)
            #expect(error?.description.contains("send") == true)
            let eof = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.recv(a, into: raw)
            }
            #expect(eof == .processed(0))
        }
    }

    @Test("recv on a descriptor that is not open throws EBADF naming recv")
    func badDescriptor() throws {
        var buffer = [UInt8](repeating: 0, count: 4)
        let error = #expect(throws: Errno.self) {
            _ = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.recv(FileDescriptor(-1), into: raw)
            }
        }
        #expect(error?.code == EBADF)
        #expect(error?.description.contains("recv") == true)
    }
}
