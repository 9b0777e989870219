// Only `import Selector`: FileDescriptor, Errno and the typed-throws buffer helpers come with
// it (Selector re-exports SysCalls).
import Selector

/// Wakes a `DefaultSelector` through its waker and reports the token `select` returned.
public func wakeAndSelect(token: UInt64) throws(Errno) -> [UInt64] {
    let selector = try DefaultSelector()
    let waker = try selector.makeWaker(token: Token(rawValue: token))
    try waker.wake()
    var events = Events(capacity: 4)
    try selector.select(into: &events, timeout: .seconds(5))
    return events.map { $0.token.rawValue }
}

/// Reads what a pipe holds with a typed-throws closure over an array's bytes.
public func pipeRoundTrip(_ bytes: [UInt8]) throws(Errno) -> [UInt8] {
    let (readEnd, writeEnd) = try Sys.pipe()
    defer {
        try? Sys.close(readEnd)
        try? Sys.close(writeEnd)
    }
    _ = try bytes.withBytes { (raw) throws(Errno) in try Sys.write(writeEnd, from: raw) }
    var buffer = [UInt8](repeating: 0, count: bytes.count)
    let result = try buffer.withMutableBytes { (raw) throws(Errno) in
        try Sys.read(readEnd, into: raw)
    }
    guard case .processed(let count) = result else { return [] }
    return Array(buffer[..<count])
}
