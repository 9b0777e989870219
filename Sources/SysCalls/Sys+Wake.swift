#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Descriptors opened for what they are rather than for I/O: the one a waker makes readable
/// from another thread, and the spare an acceptor holds for EMFILE. Each platform's choice is
/// made here.
extension Sys {
    /// What a waker's descriptor is: another thread signals it to make it readable, which ends
    /// a blocked wait on it.
    ///
    /// ```swift
    /// let kind = Sys.WakeKind.native
    /// let (read, write) = try kind.open()   // watch `read` for readability
    /// _ = try kind.signal(write)            // from any thread
    /// try kind.drain(read)                  // after the wait saw it
    /// ```
    public enum WakeKind: Sendable, Hashable, CustomStringConvertible {
        #if os(Linux)
        /// eventfd(2): one descriptor, a counter that a signal adds 1 to.
        case eventfd
        #endif
        /// A pipe, both ends non-blocking: a signal writes one byte. Any POSIX system has it,
        /// Linux included, so it is tested there.
        case pipe

        /// This platform's choice: eventfd on Linux, a pipe elsewhere.
        public static var native: WakeKind {
            #if os(Linux)
            .eventfd
            #else
            .pipe
            #endif
        }

        /// `"eventfd"` or `"pipe"`.
        public var description: String {
            switch self {
            #if os(Linux)
            case .eventfd: "eventfd"
            #endif
            case .pipe: "pipe"
            }
        }

        /// Opens the descriptors, non-blocking and close-on-exec: the end to watch and the end
        /// to signal (for an eventfd, the same descriptor). The caller closes them (once, if
        /// they are the same).
        public func open() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
            switch self {
            #if os(Linux)
            case .eventfd:
                let fd = try Sys.eventfd()
                return (fd, fd)
            #endif
            case .pipe: return try Sys.pipe()
            }
        }

        /// Makes the read end readable. `.wouldBlock`: it can take no more (a full pipe, an
        /// eventfd counter at its maximum), so it is readable already; a waiter that reports
        /// only new arrivals (an edge-triggered one) needs a `drain` and a new signal then.
        public func signal(_ write: FileDescriptor) throws(Errno) -> IOResult<Int> {
            switch self {
            #if os(Linux)
            case .eventfd: return try Sys.eventfdWrite(write, 1)
            #endif
            case .pipe:
                var byte: UInt8 = 1
                return try withUnsafeBytes(of: &byte) { (raw) throws(Errno) in
                    try Sys.write(write, from: raw)
                }
            }
        }

        /// Empties the read end: it is not readable again until the next signal.
        public func drain(_ read: FileDescriptor) throws(Errno) {
            switch self {
            #if os(Linux)
            case .eventfd: _ = try Sys.eventfdRead(read)
            #endif
            case .pipe:
                // Reads until one comes back short: the pipe was empty at that point.
                var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
                    (0, 0, 0, 0, 0, 0, 0, 0)
                let size = MemoryLayout.size(ofValue: buffer)
                while true {
                    let result = try withUnsafeMutableBytes(of: &buffer) {
                        (raw) throws(Errno) in try Sys.read(read, into: raw)
                    }
                    guard case .processed(let count) = result, count == size else { return }
                }
            }
        }
    }

    /// A descriptor that holds a slot in the descriptor table and nothing else, so that closing
    /// it frees one when the process runs out (EMFILE): an eventfd on Linux (no file system
    /// needed), /dev/null elsewhere. Close-on-exec.
    public static func openSpareDescriptor() throws(Errno) -> FileDescriptor {
        #if os(Linux)
        try eventfd()
        #else
        try open("/dev/null", flags: O_RDONLY)
        #endif
    }

    /// open(2), always close-on-exec (O_CLOEXEC is added to `flags`).
    public static func open(_ path: String, flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(try retrying("open") { libcOpen(path, flags | O_CLOEXEC) })
    }
}
