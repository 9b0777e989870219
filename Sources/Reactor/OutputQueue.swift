import Net
import Selector

/// Bytes waiting for the kernel: a FIFO of manually allocated chunks, so their addresses stay
/// put while a gathered write (`withVectors`) points at them.
///
/// Small writes fill the tail chunk before a new one is allocated. Owned by one connection;
/// the owner calls `removeAll()` to free it.
struct OutputQueue {
    private struct Chunk {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        var start: Int
        var end: Int
    }

    private static var chunkSize: Int { 16 << 10 }

    private var chunks: [Chunk] = []
    private var head = 0
    /// Bytes queued.
    private(set) var bytes = 0
    /// Send a FIN once everything queued has gone out.
    var shutdownWhenDrained = false
    /// Keep the last chunk when everything is consumed, for the next bytes (a connection on
    /// completions queues every message: no allocation per message).
    var keepsLastChunk = false
    /// A connection on completions: a send of the front bytes is in flight (the kernel reads
    /// them until it completes).
    var sending = false
    /// A connection on completions: the token its sends are made with.
    var sendToken = Token(rawValue: .max)
    /// A connection on completions: bytes at the front that stay in a receive buffer of the
    /// backend (number `loanBuffer`), sent from there (the backend holds the buffer until the
    /// send completes) instead of copied; empty otherwise. Always older than the chunks.
    private(set) var loan = UnsafeRawBufferPointer(start: nil, count: 0)
    private(set) var loanBuffer: Int32 = -1
    /// The backend's receive buffers (`EventSelector.receiveBufferPool`), for `lend`.
    var pool: (start: UnsafeRawPointer?, bufferSize: Int, count: Int) = (nil, 0, 0)

    /// Queues `data` without copying when the queue is empty and `data` lies within one of the
    /// pool's buffers; false (nothing queued) otherwise. (Inlined into its one caller, which
    /// runs it per message.)
    @inline(__always)
    mutating func lend(_ data: UnsafeRawBufferPointer) -> Bool {
        guard bytes == 0, let start = pool.start, let base = data.baseAddress, pool.bufferSize > 0
        else { return false }
        let offset = base - start
        guard offset >= 0, offset < pool.bufferSize &* pool.count else { return false }
        let index = offset / pool.bufferSize
        guard offset + data.count <= (index + 1) &* pool.bufferSize else { return false }
        loan = data
        loanBuffer = Int32(index)
        bytes = data.count
        return true
    }

    var isEmpty: Bool { bytes == 0 }

    mutating func append(_ data: UnsafeRawBufferPointer) {
        var rest = data
        if let last = chunks.indices.last, last >= head {
            let room = chunks[last].capacity - chunks[last].end
            let n = min(room, rest.count)
            if n > 0 {
                (chunks[last].base + chunks[last].end).copyMemory(
                    from: rest.baseAddress!, byteCount: n)
                chunks[last].end += n
                bytes += n
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            }
        }
        guard !rest.isEmpty else { return }
        let capacity = max(Self.chunkSize, rest.count)
        let base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        base.copyMemory(from: rest.baseAddress!, byteCount: rest.count)
        chunks.append(Chunk(base: base, capacity: capacity, start: 0, end: rest.count))
        bytes += rest.count
    }

    /// Calls `body` with up to `vectors.count` iovecs covering the front of the queue.
    func withVectors<R, E: Error>(
        _ vectors: UnsafeMutableBufferPointer<IOVector>,
        _ body: (UnsafeBufferPointer<IOVector>) throws(E) -> R
    ) throws(E) -> R {
        var count = 0
        var index = head
        while index < chunks.count && count < vectors.count {
            let chunk = chunks[index]
            vectors[count] = IOVector(
                UnsafeRawBufferPointer(
                    start: chunk.base + chunk.start, count: chunk.end - chunk.start))
            count += 1
            index += 1
        }
        return try body(UnsafeBufferPointer(rebasing: vectors[..<count]))
    }

    /// The contiguous bytes at the front of the queue (the loan, or the head chunk's), empty
    /// when none. Inlined: called out of line, it took a copy of the whole queue (a
    /// connection on completions reads it per send).
    var front: UnsafeRawBufferPointer {
        @inline(__always) get { frontBytes }
    }

    private var frontBytes: UnsafeRawBufferPointer {
        if !loan.isEmpty { return loan }
        guard head < chunks.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let chunk = chunks[head]
        return UnsafeRawBufferPointer(
            start: chunk.base + chunk.start, count: chunk.end - chunk.start)
    }

    /// Drops `n` sent bytes from the front, freeing emptied chunks (but the last one, if
    /// `keepsLastChunk`).
    mutating func consume(_ n: Int) {
        if !loan.isEmpty {
            // Sends go out from the front, so a loan is consumed before any chunk.
            assert(n <= loan.count, "consumed more than the loan that was sent")
            bytes -= n
            loan = UnsafeRawBufferPointer(rebasing: loan[n...])
            if loan.isEmpty { loanBuffer = -1 }
            return
        }
        var left = n
        bytes -= n
        while left > 0 && head < chunks.count {
            let available = chunks[head].end - chunks[head].start
            if left < available {
                chunks[head].start += left
                return
            }
            left -= available
            if keepsLastChunk && head == chunks.count - 1 {
                chunks[head].start = 0
                chunks[head].end = 0
                if head > 0 {
                    chunks.removeFirst(head)
                    head = 0
                }
                return
            }
            chunks[head].base.deallocate()
            head += 1
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: chunks.capacity <= 16)
            head = 0
        } else if head > 32 && head * 2 > chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// Frees everything.
    mutating func removeAll() {
        loan = UnsafeRawBufferPointer(start: nil, count: 0)
        loanBuffer = -1
        for index in head..<chunks.count { chunks[index].base.deallocate() }
        chunks = []
        head = 0
        bytes = 0
    }
}
