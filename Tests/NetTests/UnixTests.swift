import Glibc
import Net
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Unix socket files: what a listener creates, refuses to clobber, and removes.
    @Suite("Unix socket files")
    struct UnixTests {
        static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

        @Test(
            "binding to an existing path fails with EADDRINUSE naming the path, and removes nothing"
        )
        func bindToExistingPath() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let path = temporarySocketPath("taken")
                let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                try #require(fd >= 0)
                close(fd)
                defer { unlink(path) }
                let error = #expect(throws: NetError.self) {
                    _ = try UnixListener(binding: .unix(path))
                }
                #expect(error?.code == Errno.EADDRINUSE.code)
                #expect(error?.description == "bind \(path): Address already in use (EADDRINUSE)")
                #expect(Self.exists(path), "a file the listener did not create must survive")

                // The same holds for another live listener's socket.
                let socketPath = temporarySocketPath("live")
                let first = try UnixListener(binding: .unix(socketPath))
                do {
                    _ = try UnixListener(binding: .unix(socketPath))
                    Issue.record("a second bind should fail")
                } catch Errno.EADDRINUSE {
                    // matched through NetError's ~=
                }
                #expect(Self.exists(socketPath))
                try first.close()
                #expect(!Self.exists(socketPath), "closing removes the file the listener created")
            }
        }

        @Test("closing a listener removes its socket file only if it is still its own")
        func closeLeavesReplacedFile() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let path = temporarySocketPath("replaced")
                let old = try UnixListener(binding: .unix(path))
                unlink(path)
                let new = try UnixListener(binding: .unix(path))
                try old.close()
                #expect(Self.exists(path), "the newer listener's file must survive")
                let client = try UnixStream.connect(to: .unix(path))
                #expect(try client.takeError() == nil)
                try client.close()
                try new.close()
                #expect(!Self.exists(path))
            }
        }

        @Test("dropping a listener without close() removes its file and closes its descriptor")
        func deinitCleansUp() throws {
            let path = temporarySocketPath("dropped")
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                _ = try UnixListener(binding: .unix(path))
            }
            #expect(!Self.exists(path))
        }

        @Test("a path longer than sun_path is a clear error at bind and at parse time")
        func pathTooLong() throws {
            let path = "/tmp/" + String(repeating: "x", count: 200)
            let error = #expect(throws: NetError.self) {
                _ = try UnixListener(binding: .unix(path))
            }
            #expect(error?.code == Errno.ENAMETOOLONG.code)
            #expect(error?.description == "bind \(path): File name too long (ENAMETOOLONG)")
            let parse = #expect(throws: SocketAddress.ParseError.self) {
                _ = try SocketAddress(parsing: path)
            }
            #expect(parse?.reason == "the Unix socket path is 205 bytes; the limit is 107")
            // 107 bytes is the most that fits.
            let longest = "/tmp/" + String(repeating: "y", count: 102)
            #expect(try SocketAddress(parsing: longest) == .unix(longest))
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try UnixListener(binding: .unix(longest))
                #expect(try listener.localAddress == .unix(longest))
                try listener.close()
            }
        }

        @Test("connecting to a path nobody listens on names the path")
        func connectToMissingPath() {
            let path = temporarySocketPath("nobody")
            let error = #expect(throws: NetError.self) {
                _ = try UnixStream.connect(to: .unix(path))
            }
            #expect(error?.description == "connect \(path): No such file or directory (ENOENT)")
        }
    }
}
