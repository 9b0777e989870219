/// The key space: byte-string keys to byte-string values, some with a deadline.
///
/// An open-addressing hash table (linear probing, backward-shift deletion, no tombstones)
/// whose slots point into a dense array of entries. Lookups hash the key bytes where they
/// lie (in the read buffer), so finding a key allocates nothing; each entry keeps its key and
/// value in one array, so a new key costs one allocation and overwriting a value in place
/// costs none when it fits. Keys with a deadline are also listed densely in `expiring`, which
/// the active sweep samples at random (as Redis samples its expires dictionary).
///
/// A value that queued replies stream from is pinned (`PinnedValue`, kept in its entry); when
/// the key space lets go of a pinned value (replaced, removed, flushed) it is orphaned and
/// counts in `orphans` until the replies are written.
///
/// Times are milliseconds on the monotonic clock.
struct Keyspace {
    struct Entry {
        /// The key's bytes followed by the value's.
        var bytes: [UInt8]
        var keyLength: Int
        var hash: UInt64
        /// Deadline in milliseconds; meaningful only while `expiringIndex >= 0`.
        var expiresAt: Int64
        /// Position in `expiring`, or -1 without a deadline.
        var expiringIndex: Int32
        /// The pin record of `bytes` once a reply streamed the value (nil for values never
        /// streamed: small ones never are). Dropped whenever `bytes` changes or goes.
        var pinned: PinnedValue?
    }

    /// Entry index + 1 in the low 32 bits (0: empty slot), the hash's high 32 bits above it.
    private var slots: [UInt64]
    private var mask: Int
    private(set) var entries: [Entry] = []
    /// Entry indices of keys with a deadline.
    private var expiring: [Int32] = []
    private let seed: UInt64
    private var randomState: UInt64
    /// Values let go of while queued replies still referenced them.
    let orphans = OrphanLedger()

    /// An empty key space; the hash seed is random so colliding keys cannot be precomputed.
    init() {
        var generator = SystemRandomNumberGenerator()
        seed = generator.next()
        randomState = generator.next() | 1
        slots = Array(repeating: 0, count: 16)
        mask = 15
    }

    /// Keys stored (including expired ones not yet collected, as Redis's DBSIZE counts).
    var count: Int { entries.count }

    /// Keys with a deadline.
    var expiringCount: Int { expiring.count }

    /// The hash `find` and `insert` expect for `key`.
    @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt64 { ByteHash.hash(key, seed: seed) }

    /// The entry holding `key`, expired or not.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let tag = hash >> 32
        var index = Int(truncatingIfNeeded: hash) & mask
        return slots.withUnsafeBufferPointer { slots in
            entries.withUnsafeBufferPointer { entries in
                while true {
                    let slot = slots[index]
                    if slot == 0 { return nil }
                    if slot >> 32 == tag {
                        let entry = Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) - 1
                        if entries[entry].keyLength == key.count
                            && entries[entry].bytes.withUnsafeBytes({
                                ByteHash.equal(
                                    UnsafeRawBufferPointer(rebasing: $0[..<key.count]), key)
                            })
                        {
                            return entry
                        }
                    }
                    index = (index + 1) & mask
                }
            }
        }
    }

    /// The live entry holding `key`; an expired one is removed on the way (lazy expiry).
    @inline(__always)
    mutating func lookup(_ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64) -> Int? {
        guard let entry = find(key, hash: hash) else { return nil }
        if entries[entry].expiringIndex >= 0 && now > entries[entry].expiresAt {
            remove(at: entry)
            return nil
        }
        return entry
    }

    /// Calls `body` with the value of `entry`.
    @inline(__always)
    func withValue<R>(at entry: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let keyLength = entries[entry].keyLength
        return entries[entry].bytes.withUnsafeBytes {
            body(UnsafeRawBufferPointer(rebasing: $0[keyLength...]))
        }
    }

    /// The length of the value of `entry`.
    @inline(__always)
    func valueCount(at entry: Int) -> Int {
        entries[entry].bytes.count - entries[entry].keyLength
    }

    /// Pins the value of `entry` for one queued reply piece: its storage (shared,
    /// copy-on-write: changing the entry later leaves it as it is) and where in it the value
    /// starts. The piece must `unpin()` it once written or dropped.
    mutating func pinValue(at entry: Int) -> (value: PinnedValue, start: Int) {
        let pinned: PinnedValue
        if let existing = entries[entry].pinned {
            pinned = existing
        } else {
            pinned = PinnedValue(storage: entries[entry].bytes, ledger: orphans)
            entries[entry].pinned = pinned
        }
        pinned.pin()
        return (pinned, entries[entry].keyLength)
    }

    /// Lets go of the pin record of `entry` before its storage changes or goes: orphans the
    /// value if replies still pin it, and leaves the entry's storage unshared otherwise.
    @inline(__always)
    private mutating func unpinStorage(of entry: Int) {
        guard let pinned = entries[entry].pinned else { return }
        entries[entry].pinned = nil
        pinned.orphan()
    }

    /// Adds `key` (known absent, with `hash`) holding `value`; returns its entry.
    @discardableResult
    mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer)
        -> Int
    {
        if (entries.count + 1) * 2 > slots.count { resize(to: slots.count * 2) }
        let total = key.count + value.count
        let bytes = [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            if !key.isEmpty {
                raw.baseAddress!.copyMemory(from: key.baseAddress!, byteCount: key.count)
            }
            if !value.isEmpty {
                (raw.baseAddress! + key.count).copyMemory(
                    from: value.baseAddress!, byteCount: value.count)
            }
            initialized = total
        }
        let entry = entries.count
        entries.append(
            Entry(
                bytes: bytes, keyLength: key.count, hash: hash, expiresAt: 0, expiringIndex: -1,
                pinned: nil))
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] != 0 { index = (index + 1) & mask }
        slots[index] = (hash >> 32) << 32 | UInt64(entry + 1)
        return entry
    }

    /// Replaces the value of `entry`, reusing its storage when the new value fits.
    mutating func replaceValue(at entry: Int, with value: UnsafeRawBufferPointer) {
        unpinStorage(of: entry)
        let keyLength = entries[entry].keyLength
        let needed = keyLength + value.count
        let capacity = entries[entry].bytes.capacity
        if needed == entries[entry].bytes.count {
            entries[entry].bytes.withUnsafeMutableBytes { bytes in
                guard let source = value.baseAddress else { return }
                (bytes.baseAddress! + keyLength).copyMemory(from: source, byteCount: value.count)
            }
        } else if needed <= capacity && capacity <= needed * 2 + 64 {
            entries[entry].bytes.removeSubrange(keyLength...)
            entries[entry].bytes.append(contentsOf: value)
        } else {
            var bytes = [UInt8]()
            bytes.reserveCapacity(needed)
            entries[entry].bytes.withUnsafeBytes { bytes.append(contentsOf: $0[..<keyLength]) }
            bytes.append(contentsOf: value)
            entries[entry].bytes = bytes
        }
    }

    /// Sets or clears the deadline of `entry`.
    mutating func setDeadline(at entry: Int, _ deadline: Int64?) {
        let position = entries[entry].expiringIndex
        if let deadline {
            entries[entry].expiresAt = deadline
            if position < 0 {
                entries[entry].expiringIndex = Int32(expiring.count)
                expiring.append(Int32(entry))
            }
        } else if position >= 0 {
            removeFromExpiring(Int(position))
            entries[entry].expiringIndex = -1
        }
    }

    /// The deadline of `entry`, if it has one.
    func deadline(at entry: Int) -> Int64? {
        entries[entry].expiringIndex >= 0 ? entries[entry].expiresAt : nil
    }

    /// Removes `entry`; the last entry moves into its place.
    mutating func remove(at entry: Int) {
        unpinStorage(of: entry)
        removeSlot(of: entry)
        let position = entries[entry].expiringIndex
        if position >= 0 { removeFromExpiring(Int(position)) }
        let last = entries.count - 1
        if entry != last {
            let moved = slotIndex(of: last)
            slots[moved] = slots[moved] & ~0xFFFF_FFFF | UInt64(entry + 1)
            let movedPosition = entries[last].expiringIndex
            if movedPosition >= 0 { expiring[Int(movedPosition)] = Int32(entry) }
            entries.swapAt(entry, last)
        }
        entries.removeLast()
    }

    /// Drops every key.
    mutating func removeAll() {
        for entry in entries.indices { unpinStorage(of: entry) }
        entries = []
        expiring = []
        slots = Array(repeating: 0, count: 16)
        mask = 15
    }

    /// The table's slot count, its entries, and the farthest any entry sits from its home
    /// slot (the longest walk a lookup can take).
    func statistics() -> (slots: Int, entries: Int, longestProbe: Int) {
        var longest = 0
        for index in slots.indices where slots[index] != 0 {
            let entry = Int(slots[index] & 0xFFFF_FFFF) - 1
            let home = Int(truncatingIfNeeded: entries[entry].hash) & mask
            longest = max(longest, (index - home) & mask)
        }
        return (slots.count, entries.count, longest)
    }

    /// Redis's active expiry: samples up to 20 keys with a deadline, removes the expired ones,
    /// and goes again while more than a quarter of a sample had expired, within `maxRounds`.
    /// Returns how many keys it removed.
    @discardableResult
    mutating func sweep(now: Int64, maxRounds: Int) -> Int {
        var removed = 0
        for _ in 0..<maxRounds {
            let sample = min(20, expiring.count)
            if sample == 0 { break }
            var expired = 0
            for _ in 0..<sample {
                guard !expiring.isEmpty else { break }
                let entry = Int(expiring[Int(nextRandom() % UInt64(expiring.count))])
                if now > entries[entry].expiresAt {
                    remove(at: entry)
                    expired += 1
                }
            }
            removed += expired
            if expired * 4 <= sample { break }
        }
        return removed
    }

    private mutating func nextRandom() -> UInt64 {
        randomState ^= randomState << 13
        randomState ^= randomState >> 7
        randomState ^= randomState << 17
        return randomState
    }

    private mutating func removeFromExpiring(_ position: Int) {
        let last = expiring.count - 1
        if position != last {
            let moved = Int(expiring[last])
            expiring[position] = Int32(moved)
            entries[moved].expiringIndex = Int32(position)
        }
        expiring.removeLast()
    }

    /// The slot pointing at `entry`.
    private func slotIndex(of entry: Int) -> Int {
        var index = Int(truncatingIfNeeded: entries[entry].hash) & mask
        while slots[index] & 0xFFFF_FFFF != UInt64(entry + 1) { index = (index + 1) & mask }
        return index
    }

    /// Empties the slot of `entry`, shifting later members of its probe run back.
    private mutating func removeSlot(of entry: Int) {
        var hole = slotIndex(of: entry)
        var index = (hole + 1) & mask
        while slots[index] != 0 {
            let home =
                Int(truncatingIfNeeded: entries[Int(slots[index] & 0xFFFF_FFFF) - 1].hash) & mask
            // The member at `index` may fill the hole unless its home lies cyclically in
            // (hole, index].
            let distanceToIndex = (index - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole < distanceToIndex {
                slots[hole] = slots[index]
                hole = index
            }
            index = (index + 1) & mask
        }
        slots[hole] = 0
    }

    private mutating func resize(to newCount: Int) {
        slots = Array(repeating: 0, count: newCount)
        mask = newCount - 1
        for entry in entries.indices {
            let hash = entries[entry].hash
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = (hash >> 32) << 32 | UInt64(entry + 1)
        }
    }
}

/// Hashing and comparison of byte-string keys.
///
/// The hash is Swift's `Hasher` (SipHash-1-3 under a key drawn at random per process) with the
/// key space's own random seed mixed in first: a keyed hash, so a client that cannot learn the
/// key cannot choose keys that collide. (A fast unkeyed-in-effect mix was used before; its
/// word mixing let chosen bit flips in neighbouring words cancel for every seed, so any number
/// of keys could be made to share one hash.)
enum ByteHash {
    /// Hashes `bytes` keyed with `seed` (and the process's hashing key).
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(seed)
        hasher.combine(bytes: bytes)
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// Whether `a` and `b` (of equal length) hold the same bytes.
    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let count = a.count
        var index = 0
        while index + 8 <= count {
            if a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                != b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            {
                return false
            }
            index += 8
        }
        while index < count {
            if a[index] != b[index] { return false }
            index += 1
        }
        return true
    }
}
