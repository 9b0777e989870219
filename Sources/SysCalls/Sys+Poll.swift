#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// poll(2) support: event bits in `pollfd`'s `Int16` form.
extension Sys {
    /// One poll(2) entry (`struct pollfd`): descriptor, requested events, returned events.
    public typealias PollFD = pollfd

    /// poll(2) event bits as `pollfd.events` / `pollfd.revents` hold them.
    public enum PollEvent {
        /// POLLIN: data (or a connection, or EOF) to read.
        public static let input = Int16(POLLIN)
        /// POLLPRI: priority / out-of-band data.
        public static let priority = Int16(POLLPRI)
        /// POLLOUT: room to write.
        public static let output = Int16(POLLOUT)
        #if os(Linux)
        /// POLLRDHUP (Linux, 0x2000): the peer shut down its write side. Glibc hides it
        /// behind _GNU_SOURCE, so Swift does not import it.
        public static let readHangUp: Int16 = 0x2000
        #else
        /// POLLRDHUP exists on Linux only: elsewhere a peer's shutdown shows as readable (the
        /// read returns 0), so this is 0.
        public static let readHangUp: Int16 = 0
        #endif
        /// POLLERR: an error is pending (always reported, cannot be masked).
        public static let error = Int16(POLLERR)
        /// POLLHUP: hung up (always reported, cannot be masked).
        public static let hangUp = Int16(POLLHUP)
        /// POLLNVAL: the descriptor is not open (always reported, cannot be masked).
        public static let invalid = Int16(POLLNVAL)
    }
}

extension Sys {
    /// poll(2) over `fds`; `timeoutMilliseconds` -1 blocks. Returns how many have events.
    ///
    /// EINTR is returned as 0 ready (not retried): the caller recomputes its timeout.
    public static func poll(
        _ fds: UnsafeMutableBufferPointer<pollfd>, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        let n = libcPoll(fds.baseAddress, fds.count, timeoutMilliseconds)
        if n >= 0 { return Int(n) }
        let code = errno
        if code == EINTR { return 0 }
        throw Errno(code, call: "poll")
    }
}
