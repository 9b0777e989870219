/// Typed-throws access to an array's bytes.
///
/// The standard library's `withUnsafeBytes` and `withUnsafeMutableBytes` are `rethrows`, so a
/// closure that throws `Errno` comes out as `any Error` and cannot be called from a
/// `throws(Errno)` function. These keep the closure's error type:
///
/// ```swift
/// func readSome(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(Errno) -> IOResult<Int> {
///     try buffer.withMutableBytes { raw throws(Errno) in try Sys.read(fd, into: raw) }
/// }
/// ```
extension Array {
    /// Calls `body` with the array's bytes, rethrowing `body`'s error with its type.
    ///
    /// The buffer is valid only during the call. Like `withUnsafeBytes`, but typed-throws.
    @inlinable
    public func withBytes<R, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let result = withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
        return try result.get()
    }

    /// Calls `body` with the array's bytes, writable, rethrowing `body`'s error with its type.
    ///
    /// The buffer is valid only during the call and must not be used to change the array's
    /// count. Like `withUnsafeMutableBytes`, but typed-throws.
    @inlinable
    public mutating func withMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let result = withUnsafeMutableBytes { raw in
            Result { () throws(E) -> R in try body(raw) }
        }
        return try result.get()
    }
}
