import Reactor
import Selector

/// The output side of one client whose replies the kernel has not taken yet: the reply pieces
/// still to be written into its `Connection`, and what the output limits track about it.
///
/// A reply too big to copy whole (a large stored value, or values after the connection's
/// output passed its high watermark) is queued as pieces: bytes the server built (headers,
/// small values) in `owned`, and references to stored values, which are copy-on-write arrays
/// shared with the key space, so queueing one copies nothing and a later SET does not change
/// a reply already queued. Each such reference pins the value (`PinnedValue`) until the piece
/// is written or dropped, so that a value the key space let go of meanwhile is counted as
/// reply memory (`OrphanLedger`). `pump` feeds the pieces into the connection only while its
/// output is under the high watermark; the connection's drain callback pumps again. So however
/// large a reply, the server holds about one watermark of copied bytes per client, and a
/// client that reads gets it all.
final class ClientOutput<Backend: EventSelector> {
    /// Server-built bytes that go before `value` (ending at `ownedEnd` in `owned`), then a
    /// slice of a stored value's storage (empty `storage`: none).
    struct Piece {
        var ownedEnd: Int
        var storage: [UInt8]
        var start: Int
        var count: Int
        /// The stored value `storage` belongs to, pinned by this piece; nil when `storage` is
        /// a copy made for this reply (ECHO of a big argument) or empty.
        var pinned: PinnedValue?
    }

    /// The client.
    let connection: Connection<Backend>
    /// Index in the server's client table (the connection's `userInfo` is this + 1).
    let slot: Int
    private(set) var owned: [UInt8] = []
    private(set) var pieces: [Piece] = []
    /// The first piece not yet written whole; within it, how much of the owned prefix and
    /// of the value are written.
    private var head = 0
    private var ownedSent = 0
    private var valueSent = 0
    /// Value bytes queued in pieces and not yet written into the connection.
    private(set) var queuedValueBytes = 0
    /// Bytes of copies made for this reply (`Piece.isCopy`) not yet released.
    private(set) var copiedBytes = 0

    /// What the server last counted this client as holding (see `RedisServer.account`).
    var accounted = 0
    /// When the kernel last took reply bytes from this client, or its backlog began.
    var lastProgress: UInt64 = 0
    /// Since when unsent bytes stayed above the soft limit (0: not above it).
    var overSoftSince: UInt64 = 0
    /// `unsentBytes` at the last check, to see whether the kernel took any since.
    var lastUnsent = 0
    /// The peer sent EOF while replies were queued: close once they are written.
    var closeWhenWritten = false

    init(connection: Connection<Backend>, slot: Int) {
        self.connection = connection
        self.slot = slot
    }

    /// Whether pieces remain to be written into the connection.
    var hasPieces: Bool { head < pieces.count }

    /// Memory the server holds for this client's replies beyond the stored values they
    /// share: bytes queued in the connection, built bytes and bookkeeping of the pieces,
    /// and copies made for them.
    var heldBytes: Int {
        connection.pendingOutputBytes + owned.capacity
            + pieces.capacity * MemoryLayout<Piece>.stride + copiedBytes
    }

    /// Reply bytes not yet taken by the kernel, shared stored values included.
    var unsentBytes: Int {
        connection.pendingOutputBytes + (owned.count - ownedSent) + queuedValueBytes
    }

    /// Appends server-built bytes.
    func append(owned bytes: UnsafeRawBufferPointer) {
        owned.append(contentsOf: bytes)
    }

    /// Queues `count` bytes of a copy made for this reply from `start`, after the owned bytes
    /// so far.
    func append(copy storage: [UInt8], start: Int, count: Int) {
        pieces.append(
            Piece(ownedEnd: owned.count, storage: storage, start: start, count: count, pinned: nil))
        queuedValueBytes += count
        copiedBytes += storage.count
    }

    /// Queues `count` bytes of a stored value from `start`, after the owned bytes so far;
    /// `value` must be pinned for this piece, which unpins it once written or dropped.
    func append(pinned value: PinnedValue, start: Int, count: Int) {
        pieces.append(
            Piece(
                ownedEnd: owned.count, storage: value.storage, start: start, count: count,
                pinned: value))
        queuedValueBytes += count
    }

    /// Ends the queue with the owned bytes appended since the last value.
    func closeOwnedRun() {
        guard owned.count > (pieces.last?.ownedEnd ?? 0) else { return }
        append(copy: [], start: 0, count: 0)
    }

    /// Bytes of orphaned values (`PinnedValue.isOrphaned`) that this client's queued pieces
    /// reference, each value once per piece: what cutting it off may give back.
    var orphanedBytesPinned: Int {
        var total = 0
        for index in head..<pieces.count {
            if let value = pieces[index].pinned, value.isOrphaned { total += value.size }
        }
        return total
    }

    /// Writes pieces into the connection until its output passes `highWatermark` (then the
    /// connection pauses reading and calls `connectionDidDrain` once it has sent most of it)
    /// or nothing is left.
    func pump(highWatermark: Int) {
        while head < pieces.count {
            let pending = connection.pendingOutputBytes
            guard pending <= highWatermark, connection.isOpen else { return }
            // Just past the watermark: the connection copies what the kernel does not take,
            // so that is all it ever copies.
            let room = highWatermark + 1 - pending
            let ownedEnd = pieces[head].ownedEnd
            if ownedSent < ownedEnd {
                let end = min(ownedEnd, ownedSent + room)
                owned.withUnsafeBytes {
                    connection.write(UnsafeRawBufferPointer(rebasing: $0[ownedSent..<end]))
                }
                ownedSent = end
                continue
            }
            let count = pieces[head].count
            if valueSent < count {
                let length = min(count - valueSent, room)
                let from = pieces[head].start + valueSent
                pieces[head].storage.withUnsafeBytes {
                    connection.write(UnsafeRawBufferPointer(rebasing: $0[from..<(from + length)]))
                }
                valueSent += length
                queuedValueBytes -= length
                continue
            }
            // Let go of the value now, not when the whole queue is done.
            if let value = pieces[head].pinned {
                pieces[head].pinned = nil
                value.unpin()
            } else {
                copiedBytes -= pieces[head].storage.count
            }
            pieces[head].storage = []
            head += 1
            valueSent = 0
        }
        reset()
    }

    /// Drops everything queued (the connection is closing), unpinning the values it
    /// referenced.
    func reset() {
        for index in head..<pieces.count { pieces[index].pinned?.unpin() }
        // Small queues keep their storage, so streaming one big value after another costs
        // no allocation for the bookkeeping.
        pieces.removeAll(keepingCapacity: pieces.capacity <= 16)
        owned.removeAll(keepingCapacity: owned.capacity <= 4096)
        head = 0
        ownedSent = 0
        valueSent = 0
        queuedValueBytes = 0
        copiedBytes = 0
    }
}
