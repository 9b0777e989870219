#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Calls the Net layer needs beyond plain socket I/O: interface lookup, struct-valued socket
/// options, and the identity of a Unix socket's path.
extension Sys {
    /// if_nametoindex(3): the index of the network interface called `name` (e.g. `"lo"`).
    public static func ifNametoindex(_ name: String) throws(Errno) -> UInt32 {
        let index = libcIfNametoindex(name)
        if index != 0 { return index }
        let code = errno
        // glibc reports an unknown name as ENODEV; an empty errno would read as "Success".
        throw Errno(code == 0 ? ENODEV : code, call: "if_nametoindex")
    }

    /// getsockopt(2) for an option whose value is a struct (linger, …).
    public static func getsockopt<T: BitwiseCopyable>(
        _ fd: FileDescriptor, level: Int32, option: Int32, as type: T.Type, initial: T
    ) throws(Errno) -> T {
        var value = initial
        var length = socklen_t(MemoryLayout<T>.size)
        _ = try withUnsafeMutableBytes(of: &value) { (raw) throws(Errno) -> Int32 in
            try retrying("getsockopt") {
                libcGetsockopt(fd.rawValue, level, option, raw.baseAddress, &length)
            }
        }
        return value
    }

    /// setsockopt(2) with the option value given as raw bytes (structs Swift cannot prove
    /// bitwise-copyable, such as those holding C unions: ipv6_mreq).
    public static func setsockopt(
        _ fd: FileDescriptor, level: Int32, option: Int32, bytes: UnsafeRawBufferPointer
    ) throws(Errno) {
        _ = try retrying("setsockopt") {
            libcSetsockopt(fd.rawValue, level, option, bytes.baseAddress, socklen_t(bytes.count))
        }
    }
}
