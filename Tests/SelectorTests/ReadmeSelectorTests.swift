import Selector
import SysCalls
import TestSupport
import Testing

/// README's Selector example, kept compiling and true.
@Suite("README Selector example", .opensDescriptors)
struct ReadmeSelectorTests {
    @Test("the README's pipe example reports the readable event it describes")
    func readmeExample() throws {
        let selector = try DefaultSelector()  // or PollSelector(), KqueueSelector()
        let (readEnd, writeEnd) = try Sys.pipe2()
        defer {
            try? Sys.close(readEnd)
            try? Sys.close(writeEnd)
        }
        try selector.register(readEnd, token: 1, interest: .readable)
        let waker = try selector.makeWaker(token: 99)  // Sendable: wake() from any thread
        var events = Events(capacity: 256)  // allocated once; select never allocates
        _ = try [UInt8(42)].withUnsafeBytes { try Sys.write(writeEnd, from: $0) }
        try selector.select(into: &events, timeout: .milliseconds(100))
        var sawReadable = false
        for event in events where event.token == 1 && event.isReadable {
            sawReadable = true
        }
        #expect(sawReadable)
        try waker.wake()
        try selector.select(into: &events, timeout: .milliseconds(100))
        #expect(events.map(\.token) == [99])
    }
}
