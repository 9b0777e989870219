/// Readiness that arrived for one registration, as reported by `select`.
///
/// Edge semantics: it says readiness *arrived*. Do I/O until it would block; the next event for
/// the same readiness comes only after that.
///
/// Kernel-neutral: each backend translates its kernel's event record into these bits in its
/// own file.
public struct Event: Hashable, Sendable, CustomStringConvertible {
    /// The kinds of readiness an event can carry.
    public struct Readiness: OptionSet, Hashable, Sendable {
        /// The bit set.
        public let rawValue: UInt8

        /// Wraps a bit set.
        @inlinable
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Readable: data, a pending connection, or EOF.
        @inlinable public static var readable: Readiness { Readiness(rawValue: 1 << 0) }
        /// Writable: room in the send buffer, or a non-blocking connect finished.
        @inlinable public static var writable: Readiness { Readiness(rawValue: 1 << 1) }
        /// Priority / out-of-band data.
        @inlinable public static var priority: Readiness { Readiness(rawValue: 1 << 2) }
        /// The peer will send no more (shutdown(SHUT_WR), EOF, reset).
        @inlinable public static var readClosed: Readiness { Readiness(rawValue: 1 << 3) }
        /// Writes can no longer succeed (peer gone, pipe reader closed).
        @inlinable public static var writeClosed: Readiness { Readiness(rawValue: 1 << 4) }
        /// An error is pending on the descriptor (read it with SO_ERROR or the next I/O call).
        @inlinable public static var error: Readiness { Readiness(rawValue: 1 << 5) }
    }

    /// The registration's token.
    public var token: Token
    /// What arrived.
    public var readiness: Readiness

    /// Creates an event (backends and `MockSelector` scripts).
    @inlinable @inline(__always)
    public init(token: Token, readiness: Readiness) {
        self.token = token
        self.readiness = readiness
    }

    /// Data, a connection or EOF can be read.
    @inlinable public var isReadable: Bool { readiness.contains(.readable) }
    /// The descriptor can be written.
    @inlinable public var isWritable: Bool { readiness.contains(.writable) }
    /// An error is pending.
    @inlinable public var isError: Bool { readiness.contains(.error) }
    /// The read side is closed.
    @inlinable public var isReadClosed: Bool { readiness.contains(.readClosed) }
    /// The write side is closed.
    @inlinable public var isWriteClosed: Bool { readiness.contains(.writeClosed) }
    /// Readable and nothing else: the most common event, tested with one compare.
    @inlinable public var isReadableOnly: Bool { readiness == .readable }
    /// Priority data is pending.
    @inlinable public var isPriority: Bool { readiness.contains(.priority) }

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
