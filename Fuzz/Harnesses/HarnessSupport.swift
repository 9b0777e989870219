// Shared by every fuzz harness (compiled into each one).

/// Stops the run as a crash libFuzzer reports, with the property that failed.
func violated(_ property: String, _ file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz property violated: \(property)", file: file, line: line)
}

/// Checks a property of the input under test.
func expect(
    _ condition: @autoclosure () -> Bool, _ property: @autoclosure () -> String,
    _ file: StaticString = #file, line: UInt = #line
) {
    if !condition() { violated(property(), file, line: line) }
}

/// Runs `body` over a copy of `bytes` in a buffer of exactly their size, so that ASan sees any
/// read past the end.
func withExactCopy<R>(of bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) -> R)
    -> R
{
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { buffer.deallocate() }
    _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
    return body(UnsafeRawBufferPointer(buffer))
}
