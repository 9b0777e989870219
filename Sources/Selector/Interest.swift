/// What readiness a registration asks for. Never empty.
///
/// Errors and closes are always reported; they need no interest.
///
/// ```swift
/// try selector.register(fd, token: 1, interest: [.readable, .writable])
/// ```
public struct Interest: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The bit set.
    public let rawValue: UInt8

    /// Wraps a bit set.
    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Data (or a connection, or EOF) to read.
    @inlinable public static var readable: Interest { Interest(rawValue: 1 << 0) }
    /// Room to write.
    @inlinable public static var writable: Interest { Interest(rawValue: 1 << 1) }
    /// Out-of-band / priority data (TCP urgent data, some device files).
    @inlinable public static var priority: Interest { Interest(rawValue: 1 << 2) }

    /// e.g. `"[readable, writable]"`.
    public var description: String {
        var names: [String] = []
        if contains(.readable) { names.append("readable") }
        if contains(.writable) { names.append("writable") }
        if contains(.priority) { names.append("priority") }
        return "[\(names.joined(separator: ", "))]"
    }
}
