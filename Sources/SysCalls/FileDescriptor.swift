/// A raw, non-owning file descriptor number: what the kernel APIs take.
///
/// It does not close anything; `OwnedFileDescriptor` is the owning form.
public struct FileDescriptor: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The descriptor number.
    public let rawValue: Int32

    /// Wraps a descriptor number.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Wraps a descriptor number.
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// `"fd N"`.
    public var description: String { "fd \(rawValue)" }
}

/// A file descriptor this value owns: closed exactly once, by `close()` or when dropped.
///
/// ```swift
/// let fd = try OwnedFileDescriptor(Sys.openSpareDescriptor())
/// try Sys.fcntl(fd.raw, F_GETFD)   // borrows the number
/// ```                              // closed when `fd` goes out of scope
public struct OwnedFileDescriptor: ~Copyable, Sendable {
    /// The descriptor number, valid while this value lives.
    public let raw: FileDescriptor

    /// Takes ownership of `raw`.
    public init(_ raw: FileDescriptor) { self.raw = raw }

    /// Closes the descriptor now, reporting the kernel's answer.
    ///
    /// The number is released even when close fails, so there is no retry.
    public consuming func close() throws(Errno) {
        let fd = raw
        discard self
        try Sys.close(fd)
    }

    /// Gives up ownership without closing: the caller now owns the number.
    public consuming func release() -> FileDescriptor {
        let fd = raw
        discard self
        return fd
    }

    deinit { try? Sys.close(raw) }
}

/// The outcome of non-blocking I/O: done (with a count) or would block.
///
/// Would-block is the common case for non-blocking descriptors, so it is a value, not an error.
@frozen
public enum IOResult<Value> {
    /// The operation completed with this value (bytes transferred, a descriptor, …).
    case processed(Value)
    /// The kernel answered EAGAIN/EWOULDBLOCK: try again after the next readiness event.
    case wouldBlock

    /// The processed value, or `nil` if it would block.
    @inlinable
    public var value: Value? {
        if case .processed(let value) = self { return value }
        return nil
    }
}

extension IOResult: Equatable where Value: Equatable {}

extension IOResult: Sendable where Value: Sendable {}
