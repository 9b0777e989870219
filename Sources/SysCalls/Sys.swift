import CSysCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Typed wrappers over the system calls swift-reactor uses.
///
/// Every wrapper retries EINTR, reads errno immediately after the call, and throws it as
/// an `Errno` tagged with the call's name. Calls that can answer "would block" return an
/// `IOResult` instead of throwing EAGAIN.
public enum Sys {
    /// Runs `body` (a raw libc call returning -1 on error) until it does not fail with EINTR.
    ///
    /// With `retryingIO` and `retryingRawIO`, the only places EINTR is retried and an error
    /// code is turned into a typed error.
    @inlinable @inline(__always)
    public static func retrying<T: FixedWidthInteger>(
        _ call: StaticString, _ body: () -> T
    ) throws(Errno) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code != EINTR { throw Errno(code, call: call) }
        }
    }

    /// Like `retrying`, but EAGAIN/EWOULDBLOCK becomes `.wouldBlock`.
    @inlinable @inline(__always)
    public static func retryingIO<T: FixedWidthInteger>(
        _ call: StaticString, _ body: () -> T
    ) throws(Errno) -> IOResult<T> {
        while true {
            let result = body()
            if result != -1 { return .processed(result) }
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            if code != EINTR { throw Errno(code, call: call) }
        }
    }

    /// Like `retryingIO`, for raw system calls that return `-errno` rather than setting errno
    /// (the `csys_recv` family): nothing thread-local is read on any path.
    @inlinable @inline(__always)
    public static func retryingRawIO(
        _ call: StaticString, _ body: () -> Int
    ) throws(Errno) -> IOResult<Int> {
        while true {
            if let result = try rawIOResult(body(), call: call) { return result }
        }
    }

    /// What one raw I/O attempt's result (bytes, or `-errno`) means: `.processed`,
    /// `.wouldBlock` (EAGAIN), nil when interrupted (EINTR: make the call again), or the error.
    /// The one place that reads a raw result, for `retryingRawIO` and for hot paths that made
    /// the attempt themselves (`sendAttempt`).
    @inlinable @inline(__always)
    public static func rawIOResult(_ result: Int, call: StaticString) throws(Errno)
        -> IOResult<Int>?
    {
        if result >= 0 { return .processed(result) }
        let code = Int32(truncatingIfNeeded: -result)
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        if code == EINTR { return nil }
        throw Errno(code, call: call)
    }

    /// close(2). Not retried on EINTR: Linux has already released the number (and on Darwin
    /// a retry could close a number another thread was just given).
    public static func close(_ fd: FileDescriptor) throws(Errno) {
        if libcClose(fd.rawValue) == -1 {
            let code = errno
            if code != EINTR { throw Errno(code, call: "close") }
        }
    }

    /// read(2) into `buffer`; `.processed(0)` is end of file.
    @inlinable
    public static func read(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("read") {
            libcRead(fd.rawValue, buffer.baseAddress, buffer.count)
        }
    }

    /// write(2) from `buffer`; may write fewer bytes than given.
    @inlinable
    public static func write(
        _ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("write") {
            libcWrite(fd.rawValue, buffer.baseAddress, buffer.count)
        }
    }

    /// readv(2) scattering into `vectors`.
    @inlinable
    public static func readv(
        _ fd: FileDescriptor, _ vectors: UnsafeBufferPointer<iovec>
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("readv") {
            libcReadv(fd.rawValue, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// writev(2) gathering from `vectors`; may write fewer bytes than given.
    @inlinable
    public static func writev(
        _ fd: FileDescriptor, _ vectors: UnsafeBufferPointer<iovec>
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("writev") {
            libcWritev(fd.rawValue, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// A pipe, both ends non-blocking and close-on-exec: (read end, write end).
    ///
    /// `setup` `.native`: pipe2(2) on Linux, pipe(2) then fcntl(2) elsewhere (`.afterCall`, which
    /// Linux runs too when asked).
    public static func pipe(setup: DescriptorSetup = .native) throws(Errno) -> (
        read: FileDescriptor, write: FileDescriptor
    ) {
        switch setup {
        #if os(Linux)
        case .inCall: return try pipe2()
        #endif
        case .afterCall:
            var fds: (Int32, Int32) = (-1, -1)
            _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
                let pointer = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                return try retrying("pipe") { libcPipe(pointer) }
            }
            let read = try finishNewDescriptor(FileDescriptor(fds.0), setup: .afterCall)
            let write: FileDescriptor
            do throws(Errno) {
                write = try finishNewDescriptor(FileDescriptor(fds.1), setup: .afterCall)
            } catch {
                try? close(read)
                throw error
            }
            return (read, write)
        }
    }

    /// fcntl(2) with no argument (F_GETFL, F_GETFD).
    public static func fcntl(_ fd: FileDescriptor, _ command: Int32) throws(Errno) -> Int32 {
        try retrying("fcntl") { csys_fcntl(fd.rawValue, command) }
    }

    /// fcntl(2) with an integer argument (F_SETFL, F_SETFD, F_DUPFD_CLOEXEC).
    @discardableResult
    public static func fcntl(
        _ fd: FileDescriptor, _ command: Int32, _ argument: Int32
    ) throws(Errno) -> Int32 {
        try retrying("fcntl") { csys_fcntl_int(fd.rawValue, command, argument) }
    }

    /// Sets or clears O_NONBLOCK.
    public static func setNonBlocking(_ fd: FileDescriptor, _ on: Bool = true) throws(Errno) {
        let flags = try fcntl(fd, F_GETFL)
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags { try fcntl(fd, F_SETFL, wanted) }
    }

    /// dup(2) with close-on-exec (F_DUPFD_CLOEXEC).
    public static func dup(_ fd: FileDescriptor) throws(Errno) -> FileDescriptor {
        FileDescriptor(try fcntl(fd, F_DUPFD_CLOEXEC, 0))
    }

    /// getrlimit(RLIMIT_NOFILE): (soft, hard).
    public static func openFileLimit() throws(Errno) -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        _ = try retrying("getrlimit") {
            libcGetOpenFileLimit(&limit)
        }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// setrlimit(RLIMIT_NOFILE).
    public static func setOpenFileLimit(soft: UInt64, hard: UInt64) throws(Errno) {
        var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
        _ = try retrying("setrlimit") {
            libcSetOpenFileLimit(&limit)
        }
    }

    /// Ignores SIGPIPE process-wide (belt and braces: socket writes never raise it anyway, see
    /// `DescriptorSetup`; this covers pipes).
    public static func ignoreSIGPIPE() {
        _ = signal(SIGPIPE, SIG_IGN)
    }
}
