/// Identifies a registration: the value a selector hands back with each event.
///
/// The selector never interprets it; the Reactor packs a slot index and a generation into it.
///
/// ```swift
/// try selector.register(fd, token: Token(7), interest: .readable)
/// for event in events where event.token == Token(7) { … }
/// ```
public struct Token: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 64-bit value carried through the kernel.
    public var rawValue: UInt64

    /// Wraps a raw value.
    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Wraps a non-negative integer.
    @inlinable
    public init(_ value: Int) { self.rawValue = UInt64(bitPattern: Int64(value)) }

    /// The token as an `Int` (e.g. an array index).
    @inlinable
    public var intValue: Int { Int(truncatingIfNeeded: rawValue) }

    /// `"Token(N)"`.
    public var description: String { "Token(\(rawValue))" }
}

extension Token: ExpressibleByIntegerLiteral {
    /// Allows `let token: Token = 3`.
    @inlinable
    public init(integerLiteral value: UInt64) { self.rawValue = value }
}
