/// Identifies a scheduled timer; stale after it fires (one-shot) or is cancelled.
public struct TimerID: Hashable, Sendable {
    let slot: UInt32
    let generation: UInt32
}

/// Pending timers in an indexed binary min-heap: schedule, cancel and pop are O(log n).
///
/// Each timer has a slot (recycled through a free list, with a generation so a stale
/// `TimerID` cancels nothing) that knows its position in the heap, so cancel removes the
/// entry at once instead of leaving a tombstone. Equal deadlines fire in scheduling order.
/// Deadlines are nanoseconds on the monotonic clock.
public struct TimerQueue<Payload> {
    struct Entry {
        var deadline: UInt64
        var sequence: UInt64
        var slot: UInt32

        @inline(__always)
        static func < (a: Entry, b: Entry) -> Bool {
            a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
        }
    }

    struct Slot {
        var generation: UInt32 = 0
        var heapIndex: Int32 = -1  // -1: free
        var interval: UInt64 = 0  // 0: one-shot
        var payload: Payload?
        var nextFree: Int32 = -1
    }

    private var heap: [Entry] = []
    private var slots: [Slot] = []
    private var freeHead: Int32 = -1
    private var sequence: UInt64 = 0

    /// An empty queue.
    public init() {}

    /// Pending timers.
    public var count: Int { heap.count }

    /// True when nothing is pending.
    public var isEmpty: Bool { heap.isEmpty }

    // `heap[0]`, not `heap.first`, here and in popExpired: unspecialized generic code (a
    // Reactor used from another module) calls Collection.first, which mallocs on every call.
    /// The earliest pending deadline.
    public var nextDeadline: UInt64? { heap.isEmpty ? nil : heap[0].deadline }

    /// Schedules `payload` at `deadline`; with `interval` > 0 it repeats every `interval` ns.
    public mutating func schedule(
        at deadline: UInt64, interval: UInt64 = 0, _ payload: Payload
    ) -> TimerID {
        let slot: Int
        if freeHead >= 0 {
            slot = Int(freeHead)
            freeHead = slots[slot].nextFree
        } else {
            slot = slots.count
            slots.append(Slot())
        }
        slots[slot].interval = interval
        slots[slot].payload = payload
        sequence &+= 1
        heap.append(Entry(deadline: deadline, sequence: sequence, slot: UInt32(slot)))
        slots[slot].heapIndex = Int32(heap.count - 1)
        siftUp(heap.count - 1)
        return TimerID(slot: UInt32(slot), generation: slots[slot].generation)
    }

    /// Cancels a pending timer; false if it already fired (one-shot) or was cancelled.
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        guard isPending(id) else { return false }
        let index = Int(slots[Int(id.slot)].heapIndex)
        removeEntry(at: index)
        release(Int(id.slot))
        return true
    }

    /// Whether `id` is still scheduled.
    public func isPending(_ id: TimerID) -> Bool {
        let slot = Int(id.slot)
        return slot < slots.count && slots[slot].generation == id.generation
            && slots[slot].heapIndex >= 0
    }

    /// Removes and returns the earliest timer due at or before `now`. A repeating timer is
    /// rescheduled (from its previous deadline, or from `now` if it fell a whole interval
    /// behind) and keeps its `TimerID`.
    public mutating func popExpired(now: UInt64) -> (TimerID, Payload)? {
        guard !heap.isEmpty, heap[0].deadline <= now else { return nil }
        let first = heap[0]
        let slot = Int(first.slot)
        let id = TimerID(slot: first.slot, generation: slots[slot].generation)
        let interval = slots[slot].interval
        if interval > 0 {
            var next = first.deadline &+ interval
            if next <= now { next = now &+ interval }
            sequence &+= 1
            heap[0].deadline = next
            heap[0].sequence = sequence
            siftDown(0)
            return (id, slots[slot].payload!)
        }
        removeEntry(at: 0)
        let payload = slots[slot].payload!
        release(slot)
        return (id, payload)
    }

    /// Removes every timer, returning nothing. Slots keep their generations (each pending
    /// one moves on), so a `TimerID` from before stays stale and cancels no later timer.
    public mutating func removeAll() {
        for entry in heap { release(Int(entry.slot)) }
        heap.removeAll(keepingCapacity: heap.capacity <= 1024)
    }

    private mutating func release(_ slot: Int) {
        slots[slot].generation &+= 1
        slots[slot].heapIndex = -1
        slots[slot].payload = nil
        slots[slot].nextFree = freeHead
        freeHead = Int32(slot)
    }

    private mutating func removeEntry(at index: Int) {
        let last = heap.count - 1
        if index != last {
            heap.swapAt(index, last)
            slots[Int(heap[index].slot)].heapIndex = Int32(index)
        }
        heap.removeLast()
        if index < heap.count {
            siftDown(index)
            siftUp(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let entry = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry < heap[parent] else { break }
            heap[child] = heap[parent]
            slots[Int(heap[child].slot)].heapIndex = Int32(child)
            child = parent
        }
        heap[child] = entry
        slots[Int(entry.slot)].heapIndex = Int32(child)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let entry = heap[parent]
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && heap[child + 1] < heap[child] { child += 1 }
            guard heap[child] < entry else { break }
            heap[parent] = heap[child]
            slots[Int(heap[parent].slot)].heapIndex = Int32(parent)
            parent = child
        }
        heap[parent] = entry
        slots[Int(entry.slot)].heapIndex = Int32(parent)
    }
}
