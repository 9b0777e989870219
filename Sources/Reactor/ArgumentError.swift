/// An argument the Reactor layer cannot work with: which one, the value given, and what it
/// accepts instead. Thrown where misuse would otherwise trap (a framer's sizes, a group of no
/// threads).
///
/// ```swift
/// do { _ = try LineFramer(maxLength: 0) }
/// catch { print(error) }  // "LineFramer maxLength 0: it must be at least 1"
/// ```
public struct ArgumentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The type and parameter, as in `"LineFramer maxLength"`.
    public let argument: String
    /// The value that was given.
    public let value: String
    /// What is wrong with it and what is accepted.
    public let reason: String

    /// An error about `argument` (given `value`) and why it is refused.
    public init(_ argument: String, _ value: some CustomStringConvertible, _ reason: String) {
        self.argument = argument
        self.value = value.description
        self.reason = reason
    }

    /// `"argument value: reason"`, e.g. `"ReactorGroup threads 0: a group needs at least 1
    /// reactor"`.
    public var description: String { "\(argument) \(value): \(reason)" }
}
