#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// File status (the stat(2) family), reduced to what identifies a file: the poll backend uses
/// `fstat` to tell a reused descriptor number from the file it registered, and Unix listeners
/// use `lstat` to check that the path they are about to unlink is their own socket.
extension Sys {
    /// fstat(2), reduced to what identifies an open file: its device and inode numbers.
    ///
    /// Sockets and pipes get an inode each; anonymous-inode files (eventfd, timerfd, epoll)
    /// all share one, so they cannot be told apart this way.
    public static func fstat(_ fd: FileDescriptor) throws(Errno) -> (device: UInt64, inode: UInt64)
    {
        var info = stat()
        _ = try retrying("fstat") { libcFstat(fd.rawValue, &info) }
        return (UInt64(truncatingIfNeeded: info.st_dev), UInt64(info.st_ino))
    }

    /// The identity of the file at `path` as lstat(2) reports it, without following a
    /// symbolic link: device and inode numbers, and whether it is a socket.
    public static func lstat(_ path: String) throws(Errno) -> (
        device: UInt64, inode: UInt64, isSocket: Bool
    ) {
        var info = stat()
        _ = try retrying("lstat") { libcLstat(path, &info) }
        let isSocket = info.st_mode & S_IFMT == S_IFSOCK
        return (UInt64(truncatingIfNeeded: info.st_dev), UInt64(info.st_ino), isSocket)
    }
}
