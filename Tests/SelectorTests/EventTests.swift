import Selector
import Testing

/// The neutral event types: readiness bits, the `Events` buffer and record formats.
@Suite("Event and Events")
struct EventTests {
    @Test("a built event's readiness is exactly what it was given (error alone stays alone)")
    func builtReadinessIsExact() {
        let error = Event(token: 1, readiness: .error)
        #expect(error.readiness == .error)
        #expect(error.isError && !error.isWriteClosed && !error.isReadClosed)
        let closed = Event(token: 1, readiness: .writeClosed)
        #expect(closed.isWriteClosed && !closed.isReadClosed && !closed.isError)
        var changed = Event(token: 2, readiness: [.readClosed, .writeClosed])
        changed.readiness = .readable
        #expect(changed.readiness == .readable && !changed.isReadClosed && changed.isReadableOnly)
        #expect(!Event(token: 3, readiness: [.readable, .readClosed]).isReadableOnly)
        #expect(
            Event(token: 3, readiness: [.readable, .priority]).description
                == "Event(Token(3), readable priority)")
    }

    @Test("Events keeps appended events in order, copies on write, and ignores overflow")
    func eventsBuffer() {
        var events = Events(capacity: 3)
        events.append(Event(token: 1, readiness: [.readable, .readClosed]))
        events.append(Event(token: 2, readiness: [.error, .writeClosed]))
        var copy = events
        copy.append(Event(token: 3, readiness: .writable))
        events.append(Event(token: 4, readiness: .priority))
        events.append(Event(token: 5, readiness: .readable))  // full: ignored
        #expect(events.map(\.token) == [1, 2, 4])
        #expect(copy.map(\.token) == [1, 2, 3])
        #expect(events[1].readiness == [.error, .writeClosed])
        #expect(events.isFull)
        events.clear()
        #expect(events.isEmpty)
    }

    /// A made-up kernel record (24 bytes: flags word, padding, token at 16) proves that a
    /// backend's layout lives in its format alone.
    static let testFormat = EventRecordFormat(
        stride: 24, tokenOffset: 16, readableOnlyOffset: 4, readableOnlyWord: 0xAB
    ) { record in
        let word = record.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        var readiness: Event.Readiness = []
        if word & 0x01 != 0 { readiness.insert(.readable) }
        if word & 0x10 != 0 { readiness.insert(.writable) }
        if word & 0x20 != 0 { readiness.formUnion([.readClosed, .writeClosed]) }
        return readiness.rawValue
    }

    static func writeTestRecords(
        _ raw: UnsafeMutableRawBufferPointer, _ records: [(word: UInt32, token: UInt64)]
    ) -> Int {
        for (index, record) in records.enumerated() {
            let base = raw.baseAddress! + index * 24
            base.storeBytes(of: record.word, toByteOffset: 4, as: UInt32.self)
            base.storeBytes(of: record.token, toByteOffset: 16, as: UInt64.self)
        }
        return records.count
    }

    @Test("records written in place are decoded through their format, the fast word included")
    func filledInPlace() {
        var events = Events(capacity: 4)
        events.fill(format: Self.testFormat) { raw in
            #expect(raw.count == 4 * 24)
            return Self.writeTestRecords(raw, [(0xAB, 7), (0x11, 8), (0x21, 9)])
        }
        #expect(events.count == 3)
        #expect(events[0] == Event(token: 7, readiness: .readable))
        #expect(events[1] == Event(token: 8, readiness: [.readable, .writable]))
        #expect(events[2] == Event(token: 9, readiness: [.readable, .readClosed, .writeClosed]))
        #expect(events.reader.event(at: 2) == events[2])
        // Appending after a fill keeps the filled events (re-encoded) and adds the new one.
        events.append(Event(token: 10, readiness: .priority))
        #expect(events.map(\.token) == [7, 8, 9, 10])
        #expect(events[1].readiness == [.readable, .writable])
        // And the neutral layout serves appends after a clear.
        events.clear()
        events.append(Event(token: 11, readiness: .readable))
        #expect(Array(events) == [Event(token: 11, readiness: .readable)])
    }

    @Test("readiness(atToken:) decodes any record through its layout, whatever the word says")
    func readinessAtToken() {
        var events = Events(capacity: 4)
        events.fill(format: Self.testFormat) { raw in
            Self.writeTestRecords(raw, [(0xAB, 7), (0x11, 8), (0x21, 9)])
        }
        let reader = events.reader
        // Always the decoder, never the readable-only shortcut: the record whose word is 0xAB
        // reads as readable alone through `events[0]`, and as its bits (0x01, 0x20) here.
        #expect(events[0].readiness == .readable)
        let expected: [Event.Readiness] = [
            [.readable, .readClosed, .writeClosed], [.readable, .writable],
            [.readable, .readClosed, .writeClosed],
        ]
        for index in 0..<3 {
            #expect(
                events.readiness(atToken: reader.firstToken + index * reader.stride)
                    == expected[index])
        }
        // The neutral (compact) layout of appended events.
        events.clear()
        events.append(Event(token: 1, readiness: [.readable, .readClosed]))
        events.append(Event(token: 2, readiness: .error))
        let neutral = events.reader
        #expect(events.readiness(atToken: neutral.firstToken) == [.readable, .readClosed])
        #expect(events.readiness(atToken: neutral.firstToken + neutral.stride) == .error)
    }

    @Test("a format with records larger than the buffer was made for gets room for them")
    func largerRecordsGrow() {
        let wide = EventRecordFormat(
            stride: 64, tokenOffset: 56, readableOnlyOffset: 0, readableOnlyWord: 1
        ) { _ in Event.Readiness.writable.rawValue }
        var events = Events(capacity: 3)
        events.fill(format: wide) { raw in
            #expect(raw.count == 3 * 64)
            for index in 0..<3 {
                let base = raw.baseAddress! + index * 64
                base.storeBytes(of: UInt32(index == 0 ? 1 : 2), as: UInt32.self)
                base.storeBytes(of: UInt64(index), toByteOffset: 56, as: UInt64.self)
            }
            return 3
        }
        #expect(
            Array(events) == [
                Event(token: 0, readiness: .readable), Event(token: 1, readiness: .writable),
                Event(token: 2, readiness: .writable),
            ])
    }

    @Test("only the 12-byte layout with the token at 4 and readable-only word 1 is compact")
    func compactLayoutIsRecognised() {
        #expect(EventRecordFormat.neutral.isCompact)
        #expect(!Self.testFormat.isCompact)
        let decode: @convention(c) (UnsafeRawPointer) -> UInt8 = { _ in 0 }
        let compact = EventRecordFormat(
            stride: 12, tokenOffset: 4, readableOnlyOffset: 0, readableOnlyWord: 1,
            readiness: decode)
        #expect(compact.isCompact)
        // Each field off by one breaks it.
        for other in [
            EventRecordFormat(
                stride: 16, tokenOffset: 4, readableOnlyOffset: 0, readableOnlyWord: 1,
                readiness: decode),
            EventRecordFormat(
                stride: 12, tokenOffset: 0, readableOnlyOffset: 8, readableOnlyWord: 1,
                readiness: decode),
            EventRecordFormat(
                stride: 12, tokenOffset: 4, readableOnlyOffset: 0, readableOnlyWord: 2,
                readiness: decode),
        ] {
            #expect(!other.isCompact)
        }
        var events = Events(capacity: 2)
        events.append(Event(token: 5, readiness: .readable))
        #expect(events.reader.isCompact)
        events.fill(format: Self.testFormat) { _ in 0 }
        #expect(!events.reader.isCompact)
    }
}
