import SysCalls

/// The result of one socket operation that a completion-based backend (io_uring) ran for the
/// reactor, as that backend's `select` reports it in `EventSelector.completions`.
///
/// Kernel-neutral: the backend translates its kernel's completion record into this in its own
/// file. A readiness backend (epoll, poll, kqueue) never produces one.
///
/// ```swift
/// try selector.receive(socket, token: 7)
/// try selector.select(into: &events, timeout: nil)
/// for completion in selector.completions where completion.operation == .receive {
///     let bytes = completion.receivedBytes  // valid until the next `select`
/// }
/// ```
public struct IOCompletion {
    /// Which request completed.
    public enum Operation: UInt8, Sendable {
        /// Bytes arrived (`result` of them at `bytes`), the peer closed (`result` 0), or the
        /// receive failed (-errno). Started by `EventSelector.receive(_:token:)`.
        case receive
        /// `result` bytes of a `send` went out, or it failed (-errno).
        case send
        /// A connection was accepted: `result` is its new descriptor (non-blocking,
        /// close-on-exec, owned by the receiver), or -errno (the accepting stopped; start it
        /// again). Started by `EventSelector.accept(_:token:)`.
        case accept
        /// The descriptor became readable (`EventSelector.awaitReadable(_:token:)`), or -errno.
        case readable
    }

    /// The token the request was made with.
    public var token: Token
    /// What completed.
    public var operation: Operation
    /// A count or descriptor (>= 0), or -errno.
    public var result: Int32
    /// For a receive with `result` > 0: where the bytes are. They stay valid until the next
    /// `select`, which takes the buffer back.
    public var bytes: UnsafeRawPointer?
    /// For a receive with bytes: the number of the backend's buffer that holds them (see
    /// `EventSelector.send(_:token:bytes:keepingAlive:holdingBuffer:)`), else -1.
    public var buffer: Int32

    /// A completion record (backends and tests).
    @inlinable
    public init(
        token: Token, operation: Operation, result: Int32, bytes: UnsafeRawPointer? = nil,
        buffer: Int32 = -1
    ) {
        self.token = token
        self.operation = operation
        self.result = result
        self.bytes = bytes
        self.buffer = buffer
    }

    /// The received bytes (empty unless a receive with `result` > 0).
    @inlinable
    public var receivedBytes: UnsafeRawBufferPointer {
        guard operation == .receive, result > 0, let bytes else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: bytes, count: Int(result))
    }
}
