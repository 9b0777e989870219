/// A stored value's storage while queued replies reference it.
///
/// A big value is streamed from the key space's own storage (`ClientOutput`): each queued
/// reply piece that references it holds a *pin*. The key space keeps the `PinnedValue` of an
/// entry beside it, so every reply that streams that value, from any client, shares one.
/// While the key space still holds the value, its bytes are stored data, not output. Once the
/// key space lets go of it while pins remain (SET over it, DEL, expiry, FLUSHALL…), the bytes
/// live on only for the queued replies: the value is *orphaned*, and its storage counts once
/// in `OrphanLedger.bytes`, however many replies pin it, until the last pin goes.
///
/// Only values that are streamed get one (an allocation next to a reply piece's); small values
/// are copied into replies and never pinned.
final class PinnedValue {
    /// The entry's storage (key, then value) as it was when first pinned.
    let storage: [UInt8]
    /// What orphaned values count against.
    let ledger: OrphanLedger
    /// Queued reply pieces that reference `storage`.
    private(set) var pins = 0
    /// Whether the key space let go of the value while it was pinned.
    private(set) var isOrphaned = false

    /// The storage of an entry, not pinned yet.
    init(storage: [UInt8], ledger: OrphanLedger) {
        self.storage = storage
        self.ledger = ledger
    }

    /// The memory the storage takes: what an orphaned value counts.
    var size: Int { storage.capacity }

    /// One more queued piece references the value.
    @inline(__always)
    func pin() { pins += 1 }

    /// A queued piece that referenced the value was written out or dropped; the last one of
    /// an orphaned value takes it out of the ledger.
    @inline(__always)
    func unpin() {
        pins -= 1
        if pins == 0 && isOrphaned { ledger.remove(size) }
    }

    /// The key space let go of the value: if replies still pin it, it is orphaned.
    func orphan() {
        guard pins > 0, !isOrphaned else { return }
        isOrphaned = true
        ledger.add(size)
    }
}

/// The memory of values that only queued replies keep alive (`PinnedValue.isOrphaned`): part
/// of the reply memory that `--max-output-memory` bounds.
final class OrphanLedger {
    /// Bytes of orphaned values' storage, each value counted once.
    private(set) var bytes = 0
    /// Orphaned values.
    private(set) var values = 0

    /// A value of `size` bytes was orphaned.
    func add(_ size: Int) {
        bytes += size
        values += 1
    }

    /// The last pin of an orphaned value of `size` bytes went away.
    func remove(_ size: Int) {
        bytes -= size
        values -= 1
    }
}
