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
    @usableFromInline var storage: [Event]
    /// The most events one `select` reports; more wait for the next call.
    public let capacity: Int

    /// Reserves room for `capacity` events (at least 1).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        storage = []
        storage.reserveCapacity(self.capacity)
    }

    /// The index of the first event.
    @inlinable public var startIndex: Int { 0 }
    /// One past the last event.
    @inlinable public var endIndex: Int { storage.count }
    /// The event at `position`.
    @inlinable public subscript(position: Int) -> Event { storage[position] }
    /// True when the buffer holds `capacity` events.
    @inlinable public var isFull: Bool { storage.count >= capacity }

    /// Empties the buffer, keeping its memory (backends call this first).
    @inlinable
    public mutating func clear() { storage.removeAll(keepingCapacity: true) }

    /// Appends an event (backends and `MockSelector`); ignored when full.
    @inlinable
    public mutating func append(_ event: Event) {
        if storage.count < capacity { storage.append(event) }
    }
}
