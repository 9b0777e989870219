import Glibc
import SysCalls
import TestSupport

// Helpers for the SysCalls tests: descriptors on high numbers (so that tests running in
// parallel, which get the lowest free numbers, never reuse them) and the signal they
// interrupt calls with. The leak check, threads and signal handler are in TestSupport.

/// A pipe whose ends sit at or above a number reserved for `slot` (0…15), far above what
/// parallel tests get, so a closed end's number is not reused behind the test's back.
func highPipe(slot: Int32, flags: Int32 = O_NONBLOCK | O_CLOEXEC) throws -> (
    read: FileDescriptor, write: FileDescriptor
) {
    let soft = try Sys.openFileLimit().soft
    let base = Int32(clamping: min(soft, 16_384)) - 32 * (slot + 1)
    let (read, write) = try Sys.pipe2(flags: flags)
    defer {
        try? Sys.close(read)
        try? Sys.close(write)
    }
    let highRead = FileDescriptor(try Sys.fcntl(read, F_DUPFD_CLOEXEC, base))
    let highWrite = FileDescriptor(try Sys.fcntl(write, F_DUPFD_CLOEXEC, base))
    return (highRead, highWrite)
}

/// True if `fd` is an open descriptor.
func isOpen(_ fd: FileDescriptor) -> Bool {
    (try? Sys.fcntl(fd, F_GETFD)) != nil
}

/// The signal these tests interrupt calls with (the Selector tests use SIGUSR1: the two
/// targets may share a process, and a handler is per process).
let interruptSignal = SIGUSR2
