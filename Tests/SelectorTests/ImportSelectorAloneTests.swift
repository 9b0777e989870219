// This file imports Selector and nothing from the layer below it: what Selector's API names
// (`FileDescriptor`, `Errno`, `IOResult`, `Sys`) must come with it.
import Selector
import TestSupport
import Testing

@Suite("import Selector suffices", .opensDescriptors)
struct ImportSelectorAloneTests {
    /// Reads what is there until it would block, in a function that throws only `Errno`.
    func readAll(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(Errno) -> Int {
        var total = 0
        while case .processed(let count) = try buffer.withMutableBytes({
            raw throws(Errno) -> IOResult<Int> in try Sys.read(fd, into: raw)
        }), count > 0 {
            total += count
        }
        return total
    }

    @Test("a pipe registered, written, selected and drained with only `import Selector`")
    func selectorAndSysCallsThroughOneImport() throws {
        try checkingDescriptorLeaks {
            let selector = try DefaultSelector()
            defer { selector.close() }
            let (readEnd, writeEnd) = try Sys.pipe2()
            defer {
                try? Sys.close(readEnd)
                try? Sys.close(writeEnd)
            }
            try selector.register(readEnd, token: 1, interest: .readable)
            let written = try Array("ping".utf8).withBytes { raw throws(Errno) in
                try Sys.write(writeEnd, from: raw)
            }
            #expect(written == .processed(4))
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .seconds(1))
            #expect(events.map(\.token) == [1])
            var buffer = [UInt8](repeating: 0, count: 64)
            #expect(try readAll(readEnd, into: &buffer) == 4)
            selector.drainHook?.drained(readEnd, .readable)
            do throws(Errno) {
                try selector.register(readEnd, token: 2, interest: .readable)
                Issue.record("registering twice succeeded")
            } catch {
                #expect(error == .EEXIST)
            }
        }
    }
}
