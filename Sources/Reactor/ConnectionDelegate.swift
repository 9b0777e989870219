import Selector
import SysCalls

/// Why a `Connection` ended, as told to `ConnectionDelegate.connectionDidClose`.
public enum CloseReason: Equatable, Sendable, CustomStringConvertible {
    /// `close()` was called and all queued output reached the kernel.
    case closed
    /// The peer finished (EOF) and the connection closed after flushing its output.
    case endOfFile
    /// A read or write failed (ECONNRESET, EPIPE, …).
    case error(Errno)
    /// Nothing was read or written for the idle timeout.
    case idleTimeout
    /// Queued output made no progress for the write timeout.
    case writeTimeout
    /// Buffered input exceeded `maxBufferedInput` (a frame that never ends).
    case inputLimitExceeded
    /// `abort()` was called, or the reactor shut down.
    case aborted

    /// A short human-readable reason.
    public var description: String {
        switch self {
        case .closed: "closed"
        case .endOfFile: "end of file"
        case .error(let errno): "error: \(errno)"
        case .idleTimeout: "idle timeout"
        case .writeTimeout: "write timeout"
        case .inputLimitExceeded: "input limit exceeded"
        case .aborted: "aborted"
        }
    }
}

/// The protocol logic behind a `Connection`: what to do with bytes that arrive.
///
/// One delegate may serve many connections (it gets the connection with every call), which
/// keeps idle connections small; keep per-connection state in the delegate only when needed.
///
/// ```swift
/// final class Echo: ConnectionDelegate {
///     func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int {
///         c.write(bytes)
///         return bytes.count
///     }
/// }
/// ```
public protocol ConnectionDelegate<Backend>: AnyObject {
    /// The selector type of the reactor the connections run on.
    associatedtype Backend: EventSelector

    /// Bytes arrived. Return how many were consumed; the rest is kept and offered again,
    /// followed by newer bytes, on the next call. The buffer is valid only during the call.
    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int

    /// The peer shut down its sending side. Default: `connection.close()`, which sends
    /// everything still queued before closing.
    func connectionDidReadEOF(_ connection: Connection<Backend>)

    /// Queued output fell to the low watermark after reading was paused at the high one.
    func connectionDidDrain(_ connection: Connection<Backend>)

    /// The connection is closed; called exactly once.
    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason)
}

extension ConnectionDelegate {
    /// Default: close (after flushing queued output).
    public func connectionDidReadEOF(_ connection: Connection<Backend>) { connection.close() }

    /// Default: nothing.
    public func connectionDidDrain(_ connection: Connection<Backend>) {}

    /// Default: nothing.
    public func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {}
}

/// Limits and timeouts for `Connection`s.
public struct ConnectionOptions: Sendable {
    /// Queued output above which reading pauses (backpressure). Default 1 MiB.
    public var highWatermark: Int = 1 << 20
    /// Queued output at or below which paused reading resumes. Default 256 KiB.
    public var lowWatermark: Int = 256 << 10
    /// Unconsumed input kept for the delegate at most; beyond it the connection closes.
    /// Default 1 MiB.
    public var maxBufferedInput: Int = 1 << 20
    /// Close after this long without reading or writing anything. Default: never.
    public var idleTimeout: Duration?
    /// Close when queued output makes no progress for this long. Default: never.
    public var writeTimeout: Duration?

    /// The defaults.
    public init() {}

    /// Options with the given values (others default).
    public init(
        highWatermark: Int = 1 << 20, lowWatermark: Int = 256 << 10,
        maxBufferedInput: Int = 1 << 20, idleTimeout: Duration? = nil,
        writeTimeout: Duration? = nil
    ) {
        self.highWatermark = highWatermark
        self.lowWatermark = min(lowWatermark, highWatermark)
        self.maxBufferedInput = maxBufferedInput
        self.idleTimeout = idleTimeout
        self.writeTimeout = writeTimeout
    }
}
