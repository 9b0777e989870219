#if os(Linux)
import CSysCalls
#endif

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
/// On Linux the buffer has `struct epoll_event`'s layout, so the epoll backend lets the kernel
/// write into it directly and an event is decoded only when it is read.
public struct Events: RandomAccessCollection {
    @usableFromInline var storage: EventRecords
    @usableFromInline var filled = 0
    /// The most events one `select` reports; more wait for the next call.
    public let capacity: Int

    /// Allocates room for `capacity` events (at least 1).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        storage = EventRecords(capacity: self.capacity)
    }

    /// The index of the first event.
    @inlinable public var startIndex: Int { 0 }
    /// One past the last event.
    @inlinable public var endIndex: Int { filled }
    /// The event at `position`.
    @inlinable public subscript(position: Int) -> Event {
        precondition(position >= 0 && position < filled, "Events index out of range")
        return storage.event(at: position)
    }
    /// True when the buffer holds `capacity` events.
    @inlinable public var isFull: Bool { filled >= capacity }

    /// The event at `position`, which must be below `endIndex` (unchecked): for a loop that
    /// has already bounded its index, such as a reactor's dispatch.
    @inlinable @inline(__always)
    public func unsafeEvent(at position: Int) -> Event { storage.event(at: position) }

    /// Empties the buffer, keeping its memory (backends call this first).
    @inlinable
    public mutating func clear() { filled = 0 }

    /// Appends an event (backends and `MockSelector`); ignored when full.
    @inlinable
    public mutating func append(_ event: Event) {
        guard filled < capacity else { return }
        makeUnique()
        storage.store(event, at: filled)
        filled += 1
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(filled) }
    }

    #if os(Linux)
    /// Lets the epoll backend have the kernel write records in place: `body` gets the whole
    /// buffer and returns how many records it wrote (replacing any current events).
    mutating func fillFromKernel<E: Error>(
        _ body: (UnsafeMutableBufferPointer<epoll_event>) throws(E) -> Int
    ) throws(E) {
        filled = 0
        makeUnique()
        let records = storage.base.bindMemory(to: epoll_event.self, capacity: capacity)
        let written = try body(UnsafeMutableBufferPointer(start: records, count: capacity))
        precondition(written >= 0 && written <= capacity, "Events.fillFromKernel overran")
        filled = written
    }
    #endif
}

/// The memory behind `Events`: fixed-size records of readiness bits (32) and a token (64).
///
/// A record's bits are the kernel's (epoll_event.events, as epoll wrote them) or an
/// `Event.Readiness`; `Event` reads either (see `Event.init(token:kernelBits:)`).
@usableFromInline
final class EventRecords {
    #if os(Linux)
    @usableFromInline static var stride: Int { MemoryLayout<epoll_event>.stride }
    #else
    @usableFromInline static var stride: Int { 16 }
    #endif
    /// The token sits in the record's last 8 bytes (offset 4 where epoll_event is packed).
    @usableFromInline static var tokenOffset: Int { stride - 8 }

    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity * Self.stride, alignment: 16)
    }

    deinit { base.deallocate() }

    @usableFromInline
    func copy(_ count: Int) -> EventRecords {
        let copy = EventRecords(capacity: capacity)
        copy.base.copyMemory(from: base, byteCount: count * Self.stride)
        return copy
    }

    @inlinable @inline(__always)
    func event(at index: Int) -> Event {
        let record = base + index &* Self.stride
        return Event(
            token: Token(
                rawValue: record.loadUnaligned(fromByteOffset: Self.tokenOffset, as: UInt64.self)),
            kernelBits: record.loadUnaligned(as: UInt32.self))
    }

    @inlinable @inline(__always)
    func store(_ event: Event, at index: Int) {
        let record = base + index &* Self.stride
        record.storeBytes(of: event.bits, as: UInt32.self)
        record.storeBytes(
            of: event.token.rawValue, toByteOffset: Self.tokenOffset, as: UInt64.self)
    }
}
