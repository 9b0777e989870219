import CSysCalls
import SysCalls

/// One `iovec`: a buffer for `readv`/`writev`. Build it with `IOVector(buffer)`.
public typealias IOVector = iovec

extension IOVector {
    /// Points at `buffer` (which must outlive the I/O call).
    @inlinable
    public init(_ buffer: UnsafeRawBufferPointer) {
        self.init(
            iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress), iov_len: buffer.count)
    }

    /// Points at `buffer` (which must outlive the I/O call).
    @inlinable
    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.init(iov_base: buffer.baseAddress, iov_len: buffer.count)
    }
}

// The gathered send is declared here, beside `IOVector`, rather than in SysCalls: a
// SysCalls signature naming `iovec` makes a whole-module (release) build of a client that
// also uses `IOVector`'s initializers lose sight of them (Swift 6.3.1).
extension Sys {
    /// One gathered send from `vectors` (sendmsg(2), so it never raises SIGPIPE, unlike
    /// writev(2)); may send fewer bytes than given.
    @inlinable
    public static func sendv(
        _ fd: FileDescriptor, _ vectors: UnsafeBufferPointer<IOVector>
    ) throws(Errno) -> IOResult<Int> {
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: vectors.baseAddress)
        message.msg_iovlen = vectors.count
        return try Sys.sendmsg(fd, &message)
    }
}

/// Which direction `shutdown` closes.
public enum ShutdownDirection: Sendable {
    /// No more reads (SHUT_RD).
    case read
    /// No more writes: the peer reads end of file (SHUT_WR).
    case write
    /// Both (SHUT_RDWR).
    case both
}

/// A connected byte stream (TCP or Unix): non-blocking reads and writes that return
/// `.wouldBlock` as a value, vectored I/O, half-close. Writes never raise SIGPIPE: a write to
/// a closed or reset peer throws EPIPE or ECONNRESET.
///
/// ```swift
/// var buffer = [UInt8](repeating: 0, count: 4096)
/// switch try stream.read(into: &buffer) {
/// case .processed(0): stream.close()             // end of file
/// case .processed(let n): _ = try stream.write(Array(buffer[..<n]))
/// case .wouldBlock: break                        // wait for the next readable event
/// }
/// ```
public protocol StreamSocket: Socket {}

extension StreamSocket {
    /// Reads into `buffer`; `.processed(0)` is end of file (the peer shut down writing).
    @inlinable
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try Sys.recv(fileDescriptor, into: buffer)
    }

    /// Reads into the start of `bytes` (up to `bytes.count`); `.processed(0)` is end of file.
    public func read(into bytes: inout [UInt8]) throws(Errno) -> IOResult<Int> {
        try bytes.withMutableBytes { (raw) throws(Errno) -> IOResult<Int> in
            try Sys.recv(fileDescriptor, into: raw)
        }
    }

    /// Writes from `buffer` (send with MSG_NOSIGNAL); may write fewer bytes than given.
    @inlinable
    public func write(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try Sys.send(fileDescriptor, buffer)
    }

    /// Writes `bytes`; may write fewer than given.
    public func write(_ bytes: [UInt8]) throws(Errno) -> IOResult<Int> {
        try bytes.withBytes { (raw) throws(Errno) -> IOResult<Int> in
            try Sys.send(fileDescriptor, raw)
        }
    }

    /// Scatters one read across `vectors` (readv).
    @inlinable
    public func readv(_ vectors: UnsafeBufferPointer<IOVector>) throws(Errno) -> IOResult<Int> {
        try Sys.readv(fileDescriptor, vectors)
    }

    /// Gathers one write from `vectors`; may write fewer bytes than given.
    ///
    /// Uses sendmsg with MSG_NOSIGNAL, not writev(2), which would raise SIGPIPE.
    @inlinable
    public func writev(_ vectors: UnsafeBufferPointer<IOVector>) throws(Errno) -> IOResult<Int> {
        try Sys.sendv(fileDescriptor, vectors)
    }

    /// Gathers one write from `buffers` (at most IOV_MAX = 1024 of them).
    public func writev(_ buffers: [UnsafeRawBufferPointer]) throws(Errno) -> IOResult<Int> {
        try withUnsafeTemporaryAllocation(of: IOVector.self, capacity: buffers.count) {
            (vectors) throws(Errno) -> IOResult<Int> in
            for (index, buffer) in buffers.enumerated() {
                vectors.initializeElement(at: index, to: IOVector(buffer))
            }
            return try self.writev(UnsafeBufferPointer(vectors))
        }
    }

    /// Scatters one read across `buffers` (at most IOV_MAX = 1024 of them).
    public func readv(_ buffers: [UnsafeMutableRawBufferPointer]) throws(Errno) -> IOResult<Int> {
        try withUnsafeTemporaryAllocation(of: IOVector.self, capacity: buffers.count) {
            (vectors) throws(Errno) -> IOResult<Int> in
            for (index, buffer) in buffers.enumerated() {
                vectors.initializeElement(at: index, to: IOVector(buffer))
            }
            return try self.readv(UnsafeBufferPointer(vectors))
        }
    }

    /// Closes one or both directions; after `.write` the peer reads end of file but can
    /// still send to us.
    public func shutdown(_ direction: ShutdownDirection) throws(Errno) {
        let how: Int32
        switch direction {
        case .read: how = Int32(SHUT_RD)
        case .write: how = Int32(SHUT_WR)
        case .both: how = Int32(SHUT_RDWR)
        }
        try Sys.shutdown(fileDescriptor, how)
    }

    /// The connected peer's address (ENOTCONN while a connect is still in progress).
    public var peerAddress: SocketAddress {
        get throws(Errno) { try SocketSetup.peerAddress(fileDescriptor) }
    }
}
