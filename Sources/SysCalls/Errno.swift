import Glibc

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
    public static let EPERM = Errno(Glibc.EPERM)
    /// No such file or directory.
    public static let ENOENT = Errno(Glibc.ENOENT)
    /// Interrupted system call.
    public static let EINTR = Errno(Glibc.EINTR)
    /// Input/output error.
    public static let EIO = Errno(Glibc.EIO)
    /// Bad file descriptor.
    public static let EBADF = Errno(Glibc.EBADF)
    /// Resource temporarily unavailable (would block).
    public static let EAGAIN = Errno(Glibc.EAGAIN)
    /// Cannot allocate memory.
    public static let ENOMEM = Errno(Glibc.ENOMEM)
    /// Permission denied.
    public static let EACCES = Errno(Glibc.EACCES)
    /// Bad address.
    public static let EFAULT = Errno(Glibc.EFAULT)
    /// File exists (e.g. a descriptor registered twice).
    public static let EEXIST = Errno(Glibc.EEXIST)
    /// Invalid argument.
    public static let EINVAL = Errno(Glibc.EINVAL)
    /// Too many open files in the system.
    public static let ENFILE = Errno(Glibc.ENFILE)
    /// Too many open files in this process.
    public static let EMFILE = Errno(Glibc.EMFILE)
    /// Broken pipe.
    public static let EPIPE = Errno(Glibc.EPIPE)
    /// Function not implemented.
    public static let ENOSYS = Errno(Glibc.ENOSYS)
    /// Address family not supported.
    public static let EAFNOSUPPORT = Errno(Glibc.EAFNOSUPPORT)
    /// Address already in use.
    public static let EADDRINUSE = Errno(Glibc.EADDRINUSE)
    /// Cannot assign requested address.
    public static let EADDRNOTAVAIL = Errno(Glibc.EADDRNOTAVAIL)
    /// Network is unreachable.
    public static let ENETUNREACH = Errno(Glibc.ENETUNREACH)
    /// Software caused connection abort.
    public static let ECONNABORTED = Errno(Glibc.ECONNABORTED)
    /// Connection reset by peer.
    public static let ECONNRESET = Errno(Glibc.ECONNRESET)
    /// No buffer space available.
    public static let ENOBUFS = Errno(Glibc.ENOBUFS)
    /// Transport endpoint is already connected.
    public static let EISCONN = Errno(Glibc.EISCONN)
    /// Transport endpoint is not connected.
    public static let ENOTCONN = Errno(Glibc.ENOTCONN)
    /// Connection timed out.
    public static let ETIMEDOUT = Errno(Glibc.ETIMEDOUT)
    /// Connection refused.
    public static let ECONNREFUSED = Errno(Glibc.ECONNREFUSED)
    /// Host is unreachable.
    public static let EHOSTUNREACH = Errno(Glibc.EHOSTUNREACH)
    /// Operation already in progress.
    public static let EALREADY = Errno(Glibc.EALREADY)
    /// Operation now in progress (non-blocking connect started).
    public static let EINPROGRESS = Errno(Glibc.EINPROGRESS)
    /// Message too long.
    public static let EMSGSIZE = Errno(Glibc.EMSGSIZE)
    /// Socket operation on non-socket.
    public static let ENOTSOCK = Errno(Glibc.ENOTSOCK)
    /// Protocol not available.
    public static let ENOPROTOOPT = Errno(Glibc.ENOPROTOOPT)
    /// Operation not supported.
    public static let EOPNOTSUPP = Errno(Glibc.EOPNOTSUPP)
    /// Protocol error (a connection that failed during accept).
    public static let EPROTO = Errno(Glibc.EPROTO)
    /// File name too long (e.g. a Unix socket path over 107 bytes).
    public static let ENAMETOOLONG = Errno(Glibc.ENAMETOOLONG)

    static let names: [Int32: String] = [
        Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.EINTR: "EINTR", Glibc.EIO: "EIO",
        Glibc.EBADF: "EBADF", Glibc.EAGAIN: "EAGAIN", Glibc.ENOMEM: "ENOMEM",
        Glibc.EACCES: "EACCES", Glibc.EFAULT: "EFAULT", Glibc.EEXIST: "EEXIST",
        Glibc.EINVAL: "EINVAL", Glibc.ENFILE: "ENFILE", Glibc.EMFILE: "EMFILE",
        Glibc.EPIPE: "EPIPE", Glibc.ENOSYS: "ENOSYS", Glibc.EAFNOSUPPORT: "EAFNOSUPPORT",
        Glibc.EADDRINUSE: "EADDRINUSE", Glibc.EADDRNOTAVAIL: "EADDRNOTAVAIL",
        Glibc.ENETUNREACH: "ENETUNREACH", Glibc.ECONNABORTED: "ECONNABORTED",
        Glibc.ECONNRESET: "ECONNRESET", Glibc.ENOBUFS: "ENOBUFS", Glibc.EISCONN: "EISCONN",
        Glibc.ENOTCONN: "ENOTCONN", Glibc.ETIMEDOUT: "ETIMEDOUT",
        Glibc.ECONNREFUSED: "ECONNREFUSED", Glibc.EHOSTUNREACH: "EHOSTUNREACH",
        Glibc.EALREADY: "EALREADY", Glibc.EINPROGRESS: "EINPROGRESS",
        Glibc.EMSGSIZE: "EMSGSIZE", Glibc.ENOTSOCK: "ENOTSOCK",
        Glibc.ENOPROTOOPT: "ENOPROTOOPT", Glibc.EOPNOTSUPP: "EOPNOTSUPP",
        Glibc.ENAMETOOLONG: "ENAMETOOLONG", Glibc.ENOTDIR: "ENOTDIR",
        Glibc.ESPIPE: "ESPIPE", Glibc.EPROTO: "EPROTO", Glibc.ENOSPC: "ENOSPC",
    ]
}
