import Reactor

/// Answers each line with the line upper-cased; written for `DefaultSelector` with no generic
/// parameter, and tested with ReactorTesting as it is.
public final class UpperCase: ConnectionDelegate {
    /// A delegate for any number of connections.
    public init() {}

    /// Upper-cases every complete line; keeps a partial line for the next read.
    public func connection(
        _ connection: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer
    ) -> Int {
        var consumed = 0
        while let newline = bytes[consumed...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: bytes[consumed..<newline], as: UTF8.self)
            connection.write(line.uppercased() + "\n")
            consumed = newline + 1
        }
        return consumed
    }
}
