/// A reusable buffer of events that `select` fills. Allocated once; `select` never allocates.
///
/// ```swift
/// var events = Events(capacity: 1024)
/// while running {
///     try selector.select(into: &events, timeout: nil)
///     for event in events { handle(event) }
/// }
/// ```
///
/// The buffer holds records in the layout of whichever backend filled it last (its
/// `EventRecordFormat`): a backend whose kernel writes fixed-size records has the kernel write
/// them here in place, and an event is decoded only when it is read. Backends that build
/// events themselves (and `append`) use the buffer's own neutral layout.
public struct Events: RandomAccessCollection {
    @usableFromInline var storage: EventRecords
    @usableFromInline var filled = 0
    /// The most events one `select` reports; more wait for the next call.
    public let capacity: Int

    /// Allocates room for `capacity` events (at least 1).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        storage = EventRecords(capacity: self.capacity, format: .neutral)
    }

    /// The index of the first event.
    @inlinable public var startIndex: Int { 0 }
    /// One past the last event.
    @inlinable public var endIndex: Int { filled }
    /// The event at `position`.
    @inlinable public subscript(position: Int) -> Event {
        precondition(position >= 0 && position < filled, "Events index out of range")
        return storage.reader.event(at: position)
    }
    /// True when the buffer holds `capacity` events.
    @inlinable public var isFull: Bool { filled >= capacity }

    /// The event at `position`, which must be below `endIndex` (unchecked): for a loop that
    /// has already bounded its index.
    @inlinable @inline(__always)
    public func unsafeEvent(at position: Int) -> Event { storage.reader.event(at: position) }

    /// A decoder of the current records for a hot loop: it holds the layout in locals, so
    /// each event costs two loads and one compare in the common case. Valid until `events`
    /// changes.
    @inlinable @inline(__always)
    public var reader: EventReader { storage.reader }

    /// Empties the buffer, keeping its memory (backends call this first).
    @inlinable
    public mutating func clear() { filled = 0 }

    /// Appends an event (backends and `MockSelector`); ignored when full.
    @inlinable
    public mutating func append(_ event: Event) {
        guard filled < capacity else { return }
        makeUnique()
        if !storage.isNeutral { storage.convertToNeutral(filled) }
        storage.storeNeutral(event, at: filled)
        filled += 1
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(filled) }
    }

    /// Lets a backend's kernel write records of `format` in place: `body` gets the whole
    /// buffer (`capacity` records of `format.stride` bytes, 16-byte aligned) and returns how
    /// many records it wrote, which replace the current events. Allocates only the first time
    /// a format with larger records than the buffer was made for is used.
    public mutating func fill<E: Error>(
        format: EventRecordFormat, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Int
    ) throws(E) {
        filled = 0
        makeUnique()
        storage.adopt(format)
        let written = try body(
            UnsafeMutableRawBufferPointer(start: storage.base, count: capacity * format.stride))
        precondition(written >= 0 && written <= capacity, "Events.fill: more records than room")
        filled = written
    }
}

/// How a backend's kernel lays out one event record, so that the kernel can write into
/// `Events` directly and a record is decoded only when it is read.
///
/// A backend describes its record once (a static constant in its own file): the size, where
/// the 64-bit token (the registration's user data) sits, one 32-bit word that, when it has a
/// given value, means "readable and nothing else" (the common event, decoded with one
/// compare), and a function that decodes every other record's readiness.
public struct EventRecordFormat: Sendable {
    /// Bytes per record (at most `EventRecordFormat.maxStride` without a reallocation).
    public let stride: Int
    /// Byte offset of the token (any alignment).
    public let tokenOffset: Int
    /// Byte offset of the 32-bit word compared with `readableOnlyWord`.
    public let readableOnlyOffset: Int
    /// The value of that word in a record that reports only readability.
    public let readableOnlyWord: UInt32
    /// Decodes the readiness of any record.
    public let readiness: @Sendable (UnsafeRawPointer) -> Event.Readiness

    /// Describes a record layout.
    public init(
        stride: Int, tokenOffset: Int, readableOnlyOffset: Int, readableOnlyWord: UInt32,
        readiness: @escaping @Sendable (UnsafeRawPointer) -> Event.Readiness
    ) {
        precondition(stride >= 8 && tokenOffset + 8 <= stride && readableOnlyOffset + 4 <= stride)
        self.stride = stride
        self.tokenOffset = tokenOffset
        self.readableOnlyOffset = readableOnlyOffset
        self.readableOnlyWord = readableOnlyWord
        self.readiness = readiness
    }

    /// The record size `Events` allocates room for up front.
    public static var maxStride: Int { 32 }

    /// `Events`' own layout, for events built in user space: the readiness bits in the first
    /// 32-bit word, the token at offset 8.
    public static let neutral = EventRecordFormat(
        stride: 16, tokenOffset: 8, readableOnlyOffset: 0,
        readableOnlyWord: UInt32(Event.Readiness.readable.rawValue)
    ) { record in
        Event.Readiness(rawValue: UInt8(truncatingIfNeeded: record.loadUnaligned(as: UInt32.self)))
    }
}

/// Decodes the records of one `Events` fill; see `Events.reader`.
public struct EventReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let tokenOffset: Int
    @usableFromInline let readableOnlyOffset: Int
    @usableFromInline let readableOnlyWord: UInt32
    @usableFromInline let readiness: @Sendable (UnsafeRawPointer) -> Event.Readiness

    @usableFromInline
    init(base: UnsafeRawPointer, format: EventRecordFormat) {
        self.base = base
        stride = format.stride
        tokenOffset = format.tokenOffset
        readableOnlyOffset = format.readableOnlyOffset
        readableOnlyWord = format.readableOnlyWord
        readiness = format.readiness
    }

    /// The event in record `index` (unchecked: below the fill's count).
    @inlinable @inline(__always)
    public func event(at index: Int) -> Event {
        let record = base + index &* stride
        let token = Token(
            rawValue: record.loadUnaligned(fromByteOffset: tokenOffset, as: UInt64.self))
        if record.loadUnaligned(fromByteOffset: readableOnlyOffset, as: UInt32.self)
            == readableOnlyWord
        {
            return Event(token: token, readiness: .readable)
        }
        return Event(token: token, readiness: readiness(record))
    }
}

/// The memory behind `Events`: `capacity` records in the current `format`.
@usableFromInline
final class EventRecords {
    @usableFromInline private(set) var base: UnsafeMutableRawPointer
    private var byteCapacity: Int
    @usableFromInline let capacity: Int
    @usableFromInline private(set) var format: EventRecordFormat
    /// True while the records are in `EventRecordFormat.neutral` (what `append` writes).
    @usableFromInline private(set) var isNeutral = true
    /// `format` with `base`, rebuilt only when either changes.
    @usableFromInline private(set) var reader: EventReader

    init(capacity: Int, format: EventRecordFormat) {
        self.capacity = capacity
        byteCapacity = capacity * Swift.max(EventRecordFormat.maxStride, format.stride)
        base = .allocate(byteCount: byteCapacity, alignment: 16)
        self.format = format
        reader = EventReader(base: base, format: format)
    }

    deinit { base.deallocate() }

    @usableFromInline
    func copy(_ count: Int) -> EventRecords {
        let copy = EventRecords(capacity: capacity, format: format)
        copy.isNeutral = isNeutral
        copy.base.copyMemory(from: base, byteCount: count * format.stride)
        return copy
    }

    /// Switches to `format` (contents discarded), growing the memory if its records are larger.
    func adopt(_ format: EventRecordFormat) {
        if capacity * format.stride > byteCapacity {
            base.deallocate()
            byteCapacity = capacity * format.stride
            base = .allocate(byteCount: byteCapacity, alignment: 16)
        }
        self.format = format
        isNeutral = false
        reader = EventReader(base: base, format: format)
    }

    /// Re-encodes the first `count` records in the neutral layout (an `append` after a
    /// kernel fill: rare, so it may allocate).
    @usableFromInline
    func convertToNeutral(_ count: Int) {
        let events = (0..<count).map { reader.event(at: $0) }
        format = .neutral
        isNeutral = true
        reader = EventReader(base: base, format: .neutral)
        for (index, event) in events.enumerated() { storeNeutral(event, at: index) }
    }

    @inlinable @inline(__always)
    func storeNeutral(_ event: Event, at index: Int) {
        let record = base + index &* 16
        record.storeBytes(of: UInt32(event.readiness.rawValue), as: UInt32.self)
        record.storeBytes(of: event.token.rawValue, toByteOffset: 8, as: UInt64.self)
    }
}
