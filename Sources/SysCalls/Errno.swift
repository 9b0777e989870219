#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: the errno value and the name of the call that produced it.
///
/// Two `Errno`s are equal when their codes are equal; the call name is context for messages.
///
/// ```swift
/// do { try Sys.close(fd) } catch { print(error) }  // "close: Bad file descriptor (EBADF)"
/// ```
public struct Errno: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The raw errno value.
    public let code: Int32
    /// The system call (or operation) that failed, for messages.
    public let call: StaticString

    /// Wraps an errno value with the name of the call that returned it.
    public init(_ code: Int32, call: StaticString = "") {
        self.code = code
        self.call = call
    }

    /// Compares codes only.
    public static func == (lhs: Errno, rhs: Errno) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// Matches an error against a code in `catch` and `switch` patterns; errors that wrap an
    /// `Errno` (`ErrnoWrapping`, e.g. Net's `NetError`) match by their inner code.
    public static func ~= (pattern: Errno, value: any Error) -> Bool {
        if let errno = value as? Errno { return errno.code == pattern.code }
        return (value as? any ErrnoWrapping)?.errno.code == pattern.code
    }

    /// The symbolic name, e.g. `"EAGAIN"`, or `"errno 1234"` for an unknown code.
    public var name: String { Errno.names[code] ?? "errno \(code)" }

    /// The C library's message for the code, e.g. `"Connection refused"`.
    public var message: String {
        var buffer = [CChar](repeating: 0, count: 256)
        // The XSI strerror_r: fills the buffer, returns 0 on success.
        let status = buffer.withUnsafeMutableBufferPointer {
            strerror_r(code, $0.baseAddress!, 256)
        }
        guard status == 0 else { return name }
        return String(
            decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `"call: message (NAME)"`.
    public var description: String {
        let prefix = call.utf8CodeUnitCount > 0 ? "\(call): " : ""
        return "\(prefix)\(message) (\(name))"
    }

    /// The calling thread's current errno, tagged with `call`.
    @inline(__always)
    public static func current(_ call: StaticString) -> Errno { Errno(errno, call: call) }
}

/// An error that adds context (an address, a path) to an `Errno`, so that
/// `catch Errno.EADDRINUSE` matches it as well.
public protocol ErrnoWrapping: Error {
    /// The system error inside.
    var errno: Errno { get }
}

extension Errno {
    /// Operation not permitted.
    public static let EPERM = Errno(libc.EPERM)
    /// No such file or directory.
    public static let ENOENT = Errno(libc.ENOENT)
    /// Interrupted system call.
    public static let EINTR = Errno(libc.EINTR)
    /// Input/output error.
    public static let EIO = Errno(libc.EIO)
    /// Bad file descriptor.
    public static let EBADF = Errno(libc.EBADF)
    /// Resource temporarily unavailable (would block).
    public static let EAGAIN = Errno(libc.EAGAIN)
    /// Cannot allocate memory.
    public static let ENOMEM = Errno(libc.ENOMEM)
    /// Permission denied.
    public static let EACCES = Errno(libc.EACCES)
    /// Bad address.
    public static let EFAULT = Errno(libc.EFAULT)
    /// File exists (e.g. a descriptor registered twice).
    public static let EEXIST = Errno(libc.EEXIST)
    /// Invalid argument.
    public static let EINVAL = Errno(libc.EINVAL)
    /// Too many open files in the system.
    public static let ENFILE = Errno(libc.ENFILE)
    /// Too many open files in this process.
    public static let EMFILE = Errno(libc.EMFILE)
    /// Broken pipe.
    public static let EPIPE = Errno(libc.EPIPE)
    /// Function not implemented.
    public static let ENOSYS = Errno(libc.ENOSYS)
    /// Address family not supported.
    public static let EAFNOSUPPORT = Errno(libc.EAFNOSUPPORT)
    /// Address already in use.
    public static let EADDRINUSE = Errno(libc.EADDRINUSE)
    /// Cannot assign requested address.
    public static let EADDRNOTAVAIL = Errno(libc.EADDRNOTAVAIL)
    /// Network is unreachable.
    public static let ENETUNREACH = Errno(libc.ENETUNREACH)
    /// Software caused connection abort.
    public static let ECONNABORTED = Errno(libc.ECONNABORTED)
    /// Connection reset by peer.
    public static let ECONNRESET = Errno(libc.ECONNRESET)
    /// No buffer space available.
    public static let ENOBUFS = Errno(libc.ENOBUFS)
    /// Transport endpoint is already connected.
    public static let EISCONN = Errno(libc.EISCONN)
    /// Transport endpoint is not connected.
    public static let ENOTCONN = Errno(libc.ENOTCONN)
    /// Connection timed out.
    public static let ETIMEDOUT = Errno(libc.ETIMEDOUT)
    /// Connection refused.
    public static let ECONNREFUSED = Errno(libc.ECONNREFUSED)
    /// Host is unreachable.
    public static let EHOSTUNREACH = Errno(libc.EHOSTUNREACH)
    /// Operation already in progress.
    public static let EALREADY = Errno(libc.EALREADY)
    /// Operation now in progress (non-blocking connect started).
    public static let EINPROGRESS = Errno(libc.EINPROGRESS)
    /// Message too long.
    public static let EMSGSIZE = Errno(libc.EMSGSIZE)
    /// Socket operation on non-socket.
    public static let ENOTSOCK = Errno(libc.ENOTSOCK)
    /// Protocol not available.
    public static let ENOPROTOOPT = Errno(libc.ENOPROTOOPT)
    /// Operation not supported.
    public static let EOPNOTSUPP = Errno(libc.EOPNOTSUPP)
    /// Protocol error (a connection that failed during accept).
    public static let EPROTO = Errno(libc.EPROTO)
    /// File name too long (e.g. a Unix socket path over 107 bytes).
    public static let ENAMETOOLONG = Errno(libc.ENAMETOOLONG)
    /// Operation cancelled (an io_uring request ended by a cancellation).
    public static let ECANCELED = Errno(libc.ECANCELED)
    /// Device or resource busy (a request of which one may be in flight already is).
    public static let EBUSY = Errno(libc.EBUSY)

    static let names: [Int32: String] = [
        libc.EPERM: "EPERM",
        libc.ENOENT: "ENOENT",
        libc.EINTR: "EINTR",
        libc.EIO: "EIO",
        libc.EBADF: "EBADF",
        libc.EAGAIN: "EAGAIN",
        libc.ENOMEM: "ENOMEM",
        libc.EACCES: "EACCES",
        libc.EFAULT: "EFAULT",
        libc.EEXIST: "EEXIST",
        libc.EINVAL: "EINVAL",
        libc.ENFILE: "ENFILE",
        libc.EMFILE: "EMFILE",
        libc.EPIPE: "EPIPE",
        libc.ENOSYS: "ENOSYS",
        libc.EAFNOSUPPORT: "EAFNOSUPPORT",
        libc.EADDRINUSE: "EADDRINUSE",
        libc.EADDRNOTAVAIL: "EADDRNOTAVAIL",
        libc.ENETUNREACH: "ENETUNREACH",
        libc.ECONNABORTED: "ECONNABORTED",
        libc.ECONNRESET: "ECONNRESET",
        libc.ENOBUFS: "ENOBUFS",
        libc.EISCONN: "EISCONN",
        libc.ENOTCONN: "ENOTCONN",
        libc.ETIMEDOUT: "ETIMEDOUT",
        libc.ECONNREFUSED: "ECONNREFUSED",
        libc.EHOSTUNREACH: "EHOSTUNREACH",
        libc.EALREADY: "EALREADY",
        libc.EINPROGRESS: "EINPROGRESS",
        libc.EMSGSIZE: "EMSGSIZE",
        libc.ENOTSOCK: "ENOTSOCK",
        libc.ENOPROTOOPT: "ENOPROTOOPT",
        libc.EOPNOTSUPP: "EOPNOTSUPP",
        libc.EPROTO: "EPROTO",
        libc.ENAMETOOLONG: "ENAMETOOLONG",
        libc.ENOTDIR: "ENOTDIR",
        libc.ESPIPE: "ESPIPE",
        libc.ENOSPC: "ENOSPC",
        libc.ECANCELED: "ECANCELED",
        libc.EBUSY: "EBUSY",
    ]
}

// Errno's statics share the C constants' names, so inside `extension Errno` a bare `EPERM` is
// Errno's own; at file scope it is the C library's, whichever module provides it.
private let libc = (
    EPERM: EPERM,
    ENOENT: ENOENT,
    EINTR: EINTR,
    EIO: EIO,
    EBADF: EBADF,
    EAGAIN: EAGAIN,
    ENOMEM: ENOMEM,
    EACCES: EACCES,
    EFAULT: EFAULT,
    EEXIST: EEXIST,
    EINVAL: EINVAL,
    ENFILE: ENFILE,
    EMFILE: EMFILE,
    EPIPE: EPIPE,
    ENOSYS: ENOSYS,
    EAFNOSUPPORT: EAFNOSUPPORT,
    EADDRINUSE: EADDRINUSE,
    EADDRNOTAVAIL: EADDRNOTAVAIL,
    ENETUNREACH: ENETUNREACH,
    ECONNABORTED: ECONNABORTED,
    ECONNRESET: ECONNRESET,
    ENOBUFS: ENOBUFS,
    EISCONN: EISCONN,
    ENOTCONN: ENOTCONN,
    ETIMEDOUT: ETIMEDOUT,
    ECONNREFUSED: ECONNREFUSED,
    EHOSTUNREACH: EHOSTUNREACH,
    EALREADY: EALREADY,
    EINPROGRESS: EINPROGRESS,
    EMSGSIZE: EMSGSIZE,
    ENOTSOCK: ENOTSOCK,
    ENOPROTOOPT: ENOPROTOOPT,
    EOPNOTSUPP: EOPNOTSUPP,
    EPROTO: EPROTO,
    ENAMETOOLONG: ENAMETOOLONG,
    ENOTDIR: ENOTDIR,
    ESPIPE: ESPIPE,
    ENOSPC: ENOSPC,
    ECANCELED: ECANCELED,
    EBUSY: EBUSY,
)
