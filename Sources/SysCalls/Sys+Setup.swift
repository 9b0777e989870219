#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How new descriptors become non-blocking and close-on-exec, and how socket writes avoid
/// SIGPIPE: each decided here, once per platform.
extension Sys {
    /// How a descriptor that a call creates (socket, socketpair, accept, pipe) becomes
    /// non-blocking and close-on-exec.
    ///
    /// ```swift
    /// let (read, write) = try Sys.pipe()                    // .native: pipe2 on Linux
    /// let (r2, w2) = try Sys.pipe(setup: .afterCall)        // pipe, then fcntl
    /// ```
    public enum DescriptorSetup: Sendable, Hashable, CustomStringConvertible {
        #if os(Linux)
        /// In the creating call itself: SOCK_NONBLOCK | SOCK_CLOEXEC, accept4(2), pipe2(2).
        /// Atomic, so a fork + exec on another thread never inherits the descriptor.
        case inCall
        #endif
        /// With fcntl(2) right after the creating call: what systems without those flags do.
        /// Linux can run it too, so it is tested there.
        case afterCall

        /// This platform's way: `.inCall` on Linux, `.afterCall` elsewhere.
        public static var native: DescriptorSetup {
            #if os(Linux)
            .inCall
            #else
            .afterCall
            #endif
        }

        /// `"in-call"` or `"after-call"`.
        public var description: String {
            switch self {
            #if os(Linux)
            case .inCall: "in-call"
            #endif
            case .afterCall: "after-call"
            }
        }

        /// What to OR into socket(2) and socketpair(2)'s `type`.
        var socketTypeFlags: Int32 {
            switch self {
            #if os(Linux)
            case .inCall: Sys.linuxSocketTypeFlags
            #endif
            case .afterCall: 0
            }
        }
    }

    /// The flag every socket write adds so that writing to a reset peer fails with EPIPE
    /// instead of raising SIGPIPE: MSG_NOSIGNAL, or 0 on Darwin, which has no such send flag and
    /// sets SO_NOSIGPIPE on each new socket instead (`finishNewDescriptor`).
    @inlinable
    static var noSignalFlag: Int32 {
        #if canImport(Darwin)
        0
        #else
        Int32(MSG_NOSIGNAL)
        #endif
    }

    /// Gives a descriptor a call just created what that call could not: O_NONBLOCK and
    /// FD_CLOEXEC for `.afterCall`, and on Darwin SO_NOSIGPIPE for a socket. On failure the
    /// descriptor is closed and the error rethrown, so no caller holds a half-made one.
    static func finishNewDescriptor(
        _ fd: FileDescriptor, setup: DescriptorSetup, isSocket: Bool = false
    ) throws(Errno) -> FileDescriptor {
        do throws(Errno) {
            if case .afterCall = setup {
                try setNonBlocking(fd)
                try fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            #if canImport(Darwin)
            if isSocket { try setsockopt(fd, level: SOL_SOCKET, option: SO_NOSIGPIPE, 1) }
            #endif
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }
}
