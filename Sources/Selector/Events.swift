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
    /// The layout of the current records. A plain value kept in this struct (not in the
    /// storage object), so a `select` that adopts the same format again costs a few stores.
    @usableFromInline var format = EventRecordFormat.neutral
    /// True while the records are in `EventRecordFormat.neutral` (what `append` writes).
    @usableFromInline var isNeutral = true
    /// The most events one `select` reports; more wait for the next call.
    public let capacity: Int

    /// Allocates room for `capacity` events (at least 1).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        storage = EventRecords(byteCount: self.capacity * EventRecordFormat.maxStride)
    }

    /// The index of the first event.
    @inlinable public var startIndex: Int { 0 }
    /// One past the last event.
    @inlinable public var endIndex: Int { filled }
    /// The event at `position`.
    @inlinable public subscript(position: Int) -> Event {
        precondition(position >= 0 && position < filled, "Events index out of range")
        return reader.event(at: position)
    }
    /// True when the buffer holds `capacity` events.
    @inlinable public var isFull: Bool { filled >= capacity }

    /// The event at `position`, which must be below `endIndex` (unchecked): for a loop that
    /// has already bounded its index.
    @inlinable @inline(__always)
    public func unsafeEvent(at position: Int) -> Event { reader.event(at: position) }

    /// A decoder of the current records for a hot loop: it holds the layout in locals.
    /// Valid until `events` changes.
    @inlinable @inline(__always)
    public var reader: EventReader { EventReader(base: storage.base, format: format) }

    /// The readiness of the record whose token sits at `token` (a record of the current fill,
    /// unchecked), through the layout's decoder: for a loop that steps through the tokens
    /// itself and meets a record that reports more than readability.
    @inlinable @inline(__always)
    public func readiness(atToken token: UnsafeRawPointer) -> Event.Readiness {
        Event.Readiness(rawValue: format.readiness(token - format.tokenOffset))
    }

    /// Empties the buffer, keeping its memory (backends call this first).
    @inlinable
    public mutating func clear() { filled = 0 }

    /// Appends an event (backends and `MockSelector`); ignored when full.
    @inlinable
    public mutating func append(_ event: Event) {
        guard filled < capacity else { return }
        makeUnique()
        if !isNeutral { convertToNeutral() }
        EventRecords.storeNeutral(event, at: filled, in: storage.base)
        filled += 1
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy(byteCount: filled * format.stride)
        }
    }

    /// Re-encodes the current records in the neutral layout (an `append` after a kernel
    /// fill: rare, so it may allocate).
    @usableFromInline
    mutating func convertToNeutral() {
        let events = (0..<filled).map { reader.event(at: $0) }
        format = .neutral
        isNeutral = true
        for (index, event) in events.enumerated() {
            EventRecords.storeNeutral(event, at: index, in: storage.base)
        }
    }

    /// Lets a backend's kernel write records of `format` in place: `body` gets the whole
    /// buffer (`capacity` records of `format.stride` bytes, 16-byte aligned) and returns how
    /// many records it wrote, which replace the current events. Allocates only the first time
    /// a format with larger records than `EventRecordFormat.maxStride` is used.
    @inlinable
    public mutating func fill<E: Error>(
        format: EventRecordFormat, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Int
    ) throws(E) {
        filled = 0
        makeUnique()
        // The storage always holds `capacity` records of `maxStride` bytes, so a format no
        // larger (every backend's: a constant, folded where `select` inlines this) skips the
        // size check.
        if format.stride > EventRecordFormat.maxStride
            && capacity * format.stride > storage.byteCount
        {
            storage = EventRecords(byteCount: capacity * format.stride)
        }
        self.format = format
        isNeutral = false
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
/// compare), and a C-convention function that decodes every other record's readiness bits
/// (`Event.Readiness.rawValue`). All plain values: copying a format costs no reference count.
public struct EventRecordFormat: Sendable {
    /// Bytes per record.
    public let stride: Int
    /// Byte offset of the token (any alignment).
    public let tokenOffset: Int
    /// Byte offset of the 32-bit word compared with `readableOnlyWord`.
    public let readableOnlyOffset: Int
    /// The value of that word in a record that reports only readability.
    public let readableOnlyWord: UInt32
    /// Decodes the readiness bits of any record (a function that captures nothing).
    public let readiness: @convention(c) (UnsafeRawPointer) -> UInt8
    /// True for the compact layout (see `EventReader.isCompact`). Stored, so that a backend
    /// whose format is built from constants gets it folded at compile time and a hot loop
    /// tests one flag instead of four fields.
    public let isCompact: Bool

    /// Describes a record layout.
    public init(
        stride: Int, tokenOffset: Int, readableOnlyOffset: Int, readableOnlyWord: UInt32,
        readiness: @escaping @convention(c) (UnsafeRawPointer) -> UInt8
    ) {
        precondition(stride >= 8 && tokenOffset + 8 <= stride && readableOnlyOffset + 4 <= stride)
        self.stride = stride
        self.tokenOffset = tokenOffset
        self.readableOnlyOffset = readableOnlyOffset
        self.readableOnlyWord = readableOnlyWord
        self.readiness = readiness
        isCompact =
            stride == EventReader.compactStride && tokenOffset == EventReader.compactTokenOffset
            && readableOnlyOffset == 0
            && readableOnlyWord == 1
    }

    /// The record size `Events` allocates room for up front; larger formats reallocate once.
    public static var maxStride: Int { 32 }

    /// `Events`' own layout, for events built in user space: 12-byte records, the readiness
    /// bits in the first 32-bit word and the token in the next 8 bytes (unaligned). This is
    /// the compact layout (see `EventReader.isCompact`) that a hot loop decodes with constants.
    public static let neutral = EventRecordFormat(
        stride: 12, tokenOffset: 4, readableOnlyOffset: 0,
        readableOnlyWord: UInt32(Event.Readiness.readable.rawValue)
    ) { record in
        UInt8(truncatingIfNeeded: record.loadUnaligned(as: UInt32.self))
    }
}

/// Decodes the records of one `Events` fill; see `Events.reader`.
public struct EventReader {
    /// Where the first record's token sits; record i's is `stride * i` further.
    public let firstToken: UnsafeRawPointer
    /// Bytes per record.
    public let stride: Int
    /// From a record's token to its readable-only word (may be negative).
    @usableFromInline let wordFromToken: Int
    /// From a record's token back to the record's start.
    @usableFromInline let tokenOffset: Int
    @usableFromInline let readableOnlyWord: UInt32
    @usableFromInline let readiness: @convention(c) (UnsafeRawPointer) -> UInt8
    /// True when the records have the compact layout: 12 bytes, a 32-bit word that is 1 exactly
    /// when the record reports readability alone, then the 64-bit token (`Events`' own layout,
    /// and any kernel record shaped that way). A hot loop can then use `compactEvent(atToken:)`
    /// and step by `compactStride`: every offset and value is a constant.
    public let isCompact: Bool

    /// A decoder of records in `format` from `base`: for a loop that owns its record memory
    /// (`EventSelector.select(records:capacity:timeout:)`).
    @inlinable @inline(__always)
    public init(base: UnsafeRawPointer, format: EventRecordFormat) {
        firstToken = base + format.tokenOffset
        stride = format.stride
        wordFromToken = format.readableOnlyOffset - format.tokenOffset
        tokenOffset = format.tokenOffset
        readableOnlyWord = format.readableOnlyWord
        readiness = format.readiness
        isCompact = format.isCompact
    }

    /// The record size of the compact layout.
    @inlinable public static var compactStride: Int { 12 }
    /// Where the token sits in a record of the compact layout.
    @inlinable public static var compactTokenOffset: Int { 4 }

    /// The event in record `index` (unchecked: below the fill's count).
    @inlinable @inline(__always)
    public func event(at index: Int) -> Event { event(atToken: firstToken + index &* stride) }

    /// The event whose token sits at `token` (`firstToken` plus a multiple of `stride`,
    /// unchecked): for a loop that steps a pointer by `stride`, so each event costs two loads
    /// and one compare in the common case.
    @inlinable @inline(__always)
    public func event(atToken token: UnsafeRawPointer) -> Event {
        let value = Token(rawValue: token.loadUnaligned(as: UInt64.self))
        if token.loadUnaligned(fromByteOffset: wordFromToken, as: UInt32.self) == readableOnlyWord {
            return Event(token: value, readiness: .readable)
        }
        return Event(token: value, readiness: decodeReadiness(atToken: token))
    }

    /// `event(atToken:)` for the compact layout (`isCompact`, unchecked).
    @inlinable @inline(__always)
    public func compactEvent(atToken token: UnsafeRawPointer) -> Event {
        let value = Token(rawValue: token.loadUnaligned(as: UInt64.self))
        if token.loadUnaligned(fromByteOffset: -4, as: UInt32.self) == 1 {
            return Event(token: value, readiness: .readable)
        }
        return Event(token: value, readiness: decodeReadiness(atToken: token))
    }

    /// The readiness of the record whose token sits at `token`, through the format's decoder
    /// (out of line: the uncommon events).
    @usableFromInline @inline(never)
    func decodeReadiness(atToken token: UnsafeRawPointer) -> Event.Readiness {
        Event.Readiness(rawValue: readiness(token - tokenOffset))
    }
}

/// The memory behind `Events`: raw bytes, replaced (never resized) when a larger format needs
/// more, so its fields never change.
@usableFromInline
final class EventRecords {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let byteCount: Int

    @usableFromInline
    init(byteCount: Int) {
        self.byteCount = byteCount
        base = .allocate(byteCount: byteCount, alignment: 16)
    }

    deinit { base.deallocate() }

    @usableFromInline
    func copy(byteCount used: Int) -> EventRecords {
        let copy = EventRecords(byteCount: byteCount)
        copy.base.copyMemory(from: base, byteCount: used)
        return copy
    }

    @inlinable @inline(__always)
    static func storeNeutral(_ event: Event, at index: Int, in base: UnsafeMutableRawPointer) {
        let record = base + index &* 12
        record.storeBytes(of: UInt32(event.readiness.rawValue), as: UInt32.self)
        record.storeBytes(of: event.token.rawValue, toByteOffset: 4, as: UInt64.self)
    }
}

/// Neutral records (`EventRecordFormat.neutral`) being written into the memory a backend was
/// handed (`select(records:capacity:timeout:)`), for backends that build events themselves.
struct NeutralRecordWriter {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    /// Records written.
    private(set) var count = 0

    init(_ base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    var isFull: Bool { count >= capacity }
    var isEmpty: Bool { count == 0 }

    /// Writes `event` after the others; ignored when full.
    mutating func append(_ event: Event) {
        guard count < capacity else { return }
        EventRecords.storeNeutral(event, at: count, in: base)
        count += 1
    }
}
