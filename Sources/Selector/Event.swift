/// Readiness that arrived for one registration, as reported by `select`.
///
/// Edge semantics: it says readiness *arrived*. Do I/O until it would block; the next event for
/// the same readiness comes only after that.
public struct Event: Hashable, Sendable, CustomStringConvertible {
    /// The kinds of readiness an event can carry.
    public struct Readiness: OptionSet, Hashable, Sendable {
        /// The bit set.
        public let rawValue: UInt32

        /// Wraps a bit set.
        @inlinable
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        // Readable, priority, writable and readClosed share the bits of Linux's EPOLLIN,
        // EPOLLPRI, EPOLLOUT and EPOLLRDHUP (the POLL* values are the same); the other two use
        // bits the kernel never reports. So an `Event` can carry the kernel's bits unconverted
        // (see `Event.init(token:kernelBits:)`).

        /// Readable: data, a pending connection, or EOF.
        @inlinable public static var readable: Readiness { Readiness(rawValue: 0x0001) }
        /// Priority / out-of-band data.
        @inlinable public static var priority: Readiness { Readiness(rawValue: 0x0002) }
        /// Writable: room in the send buffer, or a non-blocking connect finished.
        @inlinable public static var writable: Readiness { Readiness(rawValue: 0x0004) }
        /// The peer will send no more (shutdown(SHUT_WR), EOF, reset).
        @inlinable public static var readClosed: Readiness { Readiness(rawValue: 0x2000) }
        /// Writes can no longer succeed (peer gone, pipe reader closed).
        @inlinable public static var writeClosed: Readiness { Readiness(rawValue: 0x4000) }
        /// An error is pending on the descriptor (read it with SO_ERROR or the next I/O call).
        @inlinable public static var error: Readiness { Readiness(rawValue: 0x8000) }
    }

    // Linux bits that are not `Readiness` members: EPOLLERR/POLLERR means error and
    // writeClosed, EPOLLHUP/POLLHUP means readClosed and writeClosed.
    @usableFromInline static var kernelError: UInt32 { 0x08 }
    @usableFromInline static var kernelHangUp: UInt32 { 0x10 }

    /// The registration's token.
    public var token: Token
    /// `Readiness` bits, possibly with the kernel's ERR/HUP bits; read through the accessors.
    @usableFromInline var bits: UInt32

    /// Creates an event (backends and `MockSelector` scripts).
    @inlinable
    public init(token: Token, readiness: Readiness) {
        self.token = token
        self.bits = readiness.rawValue
    }

    /// Creates an event from Linux epoll/poll bits as the kernel reported them, unconverted.
    @inlinable @inline(__always)
    public init(token: Token, kernelBits: UInt32) {
        self.token = token
        self.bits = kernelBits
    }

    /// What arrived.
    @inlinable
    public var readiness: Readiness {
        get {
            var readiness = Readiness(rawValue: bits & 0xE007)
            if bits & Self.kernelError != 0 { readiness.formUnion([.error, .writeClosed]) }
            if bits & Self.kernelHangUp != 0 { readiness.formUnion([.readClosed, .writeClosed]) }
            return readiness
        }
        set { bits = newValue.rawValue }
    }

    /// Data, a connection or EOF can be read.
    @inlinable public var isReadable: Bool { bits & 0x0001 != 0 }
    /// The descriptor can be written.
    @inlinable public var isWritable: Bool { bits & 0x0004 != 0 }
    /// An error is pending.
    @inlinable public var isError: Bool { bits & (0x8000 | Self.kernelError) != 0 }
    /// The read side is closed.
    @inlinable public var isReadClosed: Bool { bits & (0x2000 | Self.kernelHangUp) != 0 }
    /// The write side is closed.
    @inlinable public var isWriteClosed: Bool {
        bits & (0x4000 | Self.kernelHangUp | Self.kernelError) != 0
    }
    /// Readable and nothing else: the most common event, tested with one compare.
    @inlinable public var isReadableOnly: Bool { bits == 0x0001 }

    /// Priority data is pending.
    @inlinable public var isPriority: Bool { bits & 0x0002 != 0 }

    /// Same token and same readiness (however each was encoded).
    @inlinable
    public static func == (lhs: Event, rhs: Event) -> Bool {
        lhs.token == rhs.token && lhs.readiness == rhs.readiness
    }

    /// Hashes the token and the readiness.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(token)
        hasher.combine(readiness)
    }

    /// e.g. `"Event(Token(3), readable readClosed)"`.
    public var description: String {
        let names: [(Readiness, String)] = [
            (.readable, "readable"), (.writable, "writable"), (.error, "error"),
            (.readClosed, "readClosed"), (.writeClosed, "writeClosed"), (.priority, "priority"),
        ]
        let set = names.filter { readiness.contains($0.0) }.map(\.1).joined(separator: " ")
        return "Event(\(token), \(set))"
    }
}
