import SysCalls
import TestSupport
import Testing

@Suite("Typed-throws byte access: an Errno-throwing closure over an array", .opensDescriptors)
struct TypedThrowsBytesTests {
    /// The shapes a `throws(Errno)` caller needs: `Sys.write` from an array, `Sys.read` into one.
    func roundTrip(_ message: [UInt8], through pipe: (read: FileDescriptor, write: FileDescriptor))
        throws(Errno) -> (written: IOResult<Int>, read: IOResult<Int>, bytes: [UInt8])
    {
        let written = try message.withBytes { raw throws(Errno) in
            try Sys.write(pipe.write, from: raw)
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        let read = try buffer.withMutableBytes { raw throws(Errno) in
            try Sys.read(pipe.read, into: raw)
        }
        return (written, read, buffer)
    }

    @Test("withBytes and withMutableBytes carry Errno through a throws(Errno) function")
    func readAndWriteThroughTypedClosures() throws {
        try checkingDescriptorLeaks {
            let pipe = try highPipe(slot: 7)
            defer {
                try? Sys.close(pipe.read)
                try? Sys.close(pipe.write)
            }
            let result = try roundTrip(Array("hey".utf8), through: pipe)
            #expect(result.written == .processed(3))
            #expect(result.read == .processed(3))
            #expect(Array(result.bytes.prefix(3)) == Array("hey".utf8))
        }
    }

    @Test("the closure's typed error comes out as that type, not any Error")
    func typedErrorKeepsItsType() {
        var buffer = [UInt8](repeating: 0, count: 4)
        let closed = FileDescriptor(-1)
        do throws(Errno) {
            _ = try buffer.withMutableBytes { raw throws(Errno) in try Sys.read(closed, into: raw) }
            Issue.record("read from fd -1 succeeded")
        } catch {
            // `error` is statically an Errno: no cast needed.
            #expect(error == .EBADF)
            #expect(error.name == "EBADF")
        }
    }
}
