/// A reusable buffer of events that `select` fills. Allocated once; `select` never allocates.
///
/// ```swift
/// var events = Events(capacity: 1024)
/// while running {
///     try selector.select(into: &events, timeout: nil)
///     for event in events { handle(event) }
/// }
/// ```
public struct Events: RandomAccessCollection {
    // Always `capacity` elements long; only the first `filled` are events. Backends write
    // in place (`fill`), so reporting an event is a store, not an append.
    @usableFromInline var storage: [Event]
    @usableFromInline var filled = 0
    /// The most events one `select` reports; more wait for the next call.
    public let capacity: Int

    /// Allocates room for `capacity` events (at least 1).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        storage = Array(
            repeating: Event(token: Token(rawValue: 0), readiness: []), count: self.capacity)
    }

    /// The index of the first event.
    @inlinable public var startIndex: Int { 0 }
    /// One past the last event.
    @inlinable public var endIndex: Int { filled }
    /// The event at `position`.
    @inlinable public subscript(position: Int) -> Event {
        precondition(position < filled, "Events index out of range")
        return storage[position]
    }
    /// True when the buffer holds `capacity` events.
    @inlinable public var isFull: Bool { filled >= capacity }

    /// Empties the buffer, keeping its memory (backends call this first).
    @inlinable
    public mutating func clear() { filled = 0 }

    /// Appends an event (backends and `MockSelector`); ignored when full.
    @inlinable
    public mutating func append(_ event: Event) {
        if filled < capacity {
            storage[filled] = event
            filled += 1
        }
    }

    /// Lets a backend write events in place: `body` gets the room after the current events
    /// and returns how many it wrote there.
    @inlinable
    public mutating func fill<E: Error>(
        _ body: (UnsafeMutableBufferPointer<Event>) throws(E) -> Int
    ) throws(E) {
        let start = filled
        let written = try storage.withUnsafeMutableBufferPointer { (all) throws(E) -> Int in
            try body(UnsafeMutableBufferPointer(rebasing: all[start...]))
        }
        precondition(written >= 0 && start + written <= capacity, "Events.fill overran")
        filled = start + written
    }
}
