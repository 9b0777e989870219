import Selector
import SysCalls
import TestSupport
import Testing

// `select(records:capacity:timeout:)`, the primitive under `select(into:)` that a loop owning
// its record memory calls: it writes at most `capacity` records, in the backend's
// `recordFormat`, and leaves the rest ready for the next call.
@Suite("Raw select", .serialized, .opensDescriptors)
struct RawSelectTests {
    @Test(
        "writes at most capacity records in recordFormat, nothing past them, and the rest next",
        arguments: Backend.all)
    func writesAtMostCapacity(_ backend: Backend) throws {
        try backend.run { try Self.writesAtMostCapacity($0) }
    }

    static func writesAtMostCapacity<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        defer { selector.close() }
        let tokens: Set<Token> = [11, 12, 13]
        for token in tokens {
            let (client, server) = try tcpPair(fds)
            try selector.register(server, token: token, interest: .readable)
            try send(client, "x")
        }
        let format = S.recordFormat
        let capacity = 2
        // Room for `capacity` records, then a guard region that no call may touch.
        let guardBytes = 64
        let byteCount = capacity * format.stride + guardBytes
        let memory = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 16)
        defer { memory.deallocate() }
        var seen: Set<Token> = []
        var calls = 0
        while seen.count < tokens.count && calls < 50 {
            calls += 1
            memory.initializeMemory(as: UInt8.self, repeating: 0xAB, count: byteCount)
            let count = try selector.select(
                records: memory, capacity: capacity, timeout: .milliseconds(200))
            #expect(count >= 0 && count <= capacity, "count \(count)")
            let tail = UnsafeRawBufferPointer(
                start: memory + capacity * format.stride, count: guardBytes)
            #expect(tail.allSatisfy { $0 == 0xAB }, "a record was written past capacity")
            let reader = EventReader(base: memory, format: format)
            for index in 0..<max(0, min(count, capacity)) {
                let event = reader.event(at: index)
                #expect(tokens.contains(event.token), "unknown token \(event.token)")
                #expect(event.readiness.contains(.readable), "\(event)")
                seen.insert(event.token)
            }
        }
        #expect(seen == tokens, "saw \(seen) in \(calls) calls")
    }

    @Test("select(into:) reports what the raw call writes, in the backend's layout")
    func eventsGoThroughTheRawCall() throws {
        let selector = MockSelector()
        selector.inject(Event(token: 5, readiness: [.readable, .writable]))
        selector.inject(Event(token: 6, readiness: .readable))
        selector.inject(Event(token: 7, readiness: .error))
        var events = Events(capacity: 2)
        try selector.select(into: &events, timeout: .zero)
        #expect(
            Array(events) == [
                Event(token: 5, readiness: [.readable, .writable]),
                Event(token: 6, readiness: .readable),
            ])
        try selector.select(into: &events, timeout: .zero)
        #expect(Array(events) == [Event(token: 7, readiness: .error)])
    }
}
