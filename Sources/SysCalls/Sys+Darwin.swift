#if !os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Darwin (and any other non-Linux system): the hot path's socket I/O through the C library.
// Linux issues these as raw system calls (Sys+Linux.swift); the signatures are the same, so
// callers do not know which they got. SIGPIPE is handled by `noSignalFlag` (Sys+Setup.swift).
extension Sys {
    /// send(2); a write to a reset peer returns EPIPE, never raises SIGPIPE.
    @inlinable @inline(__always)
    public static func send(
        _ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("send") {
            libcSend(fd.rawValue, buffer.baseAddress, buffer.count, flags | noSignalFlag)
        }
    }

    /// send(2), as one attempt: the bytes sent, or -errno (EINTR and EAGAIN included). For a
    /// hot path that handles everything but full success out of line; others use `send`.
    @inlinable @inline(__always)
    public static func sendAttempt(_ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer) -> Int {
        let sent = libcSend(fd.rawValue, buffer.baseAddress, buffer.count, noSignalFlag)
        return sent >= 0 ? sent : -Int(errno)
    }

    /// recv(2); `.processed(0)` is an orderly shutdown by the peer (for stream sockets).
    @inlinable @inline(__always)
    public static func recv(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("recv") {
            libcRecv(fd.rawValue, buffer.baseAddress, buffer.count, flags)
        }
    }
}
#endif
