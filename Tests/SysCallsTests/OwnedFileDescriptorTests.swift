import Glibc
import SysCalls
import TestSupport
import Testing

@Suite("OwnedFileDescriptor", .opensDescriptors)
struct OwnedFileDescriptorTests {
    @Test("dropping the owner closes the descriptor")
    func droppingCloses() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 0)
            defer { try? Sys.close(write) }
            do {
                let owned = OwnedFileDescriptor(read)
                #expect(isOpen(owned.raw))
            }
            #expect(!isOpen(read))
        }
    }

    @Test("consuming close closes once: a descriptor reusing the number stays open")
    func consumingCloseClosesOnce() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 1)
            defer { try? Sys.close(write) }
            let owned = OwnedFileDescriptor(read)
            try owned.close()
            #expect(!isOpen(read))
            // Put a new file on the same number; a second close (a deinit after close()) would
            // close it.
            let reused = FileDescriptor(try Sys.fcntl(write, F_DUPFD_CLOEXEC, read.rawValue))
            #expect(reused == read)
            #expect(isOpen(reused))
            try Sys.close(reused)
        }
    }

    @Test("consuming close reports the kernel's error, once")
    func consumingCloseReportsErrors() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 2)
            defer { try? Sys.close(write) }
            let owned = OwnedFileDescriptor(read)
            try Sys.close(read)  // behind the owner's back
            do {
                try owned.close()
                Issue.record("close of a closed descriptor succeeded")
            } catch {
                #expect(error as? Errno == .EBADF)
            }
        }
    }

    @Test("release gives up ownership without closing")
    func releaseKeepsTheDescriptorOpen() throws {
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 3)
            defer { try? Sys.close(write) }
            let released: FileDescriptor
            do {
                let owned = OwnedFileDescriptor(read)
                released = owned.release()
            }
            #expect(released == read)
            #expect(isOpen(read))
            try Sys.close(read)
        }
    }
}
