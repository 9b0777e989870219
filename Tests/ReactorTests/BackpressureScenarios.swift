import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// The high watermark bounds what a server queues for a client that does not read.
enum BackpressureScenarios {
    static let total = 32 << 20
    static let highWatermark = 512 << 10
    /// One reactor read buffer: what a delegate may add after the last check.
    static let readBuffer = 64 << 10

    /// A client with a small receive buffer writes up to 32 MiB without reading; the echo
    /// server's connection pauses reading with a bounded queue. Then the client reads: every
    /// byte comes back in order and the connection reports it drained.
    static func nonReadingClientIsPausedNotBuffered<S: EventSelector>(_: S.Type) throws {
        let log = ServerLog()
        let latest = ReactorLocal<Connection<S>>()
        let lowWatermark = 128 << 10
        let options = ConnectionOptions(highWatermark: highWatermark, lowWatermark: lowWatermark)
        let server = try echoServer(
            S.self, log: log, settings: ConnectionSettings(options), latest: latest)
        defer { server.stop() }

        let client = try connectClient(port: server.port)
        // Small, but above loopback's 64 KiB MSS: a window below one segment stalls TCP itself
        // (the sender waits for window probes with exponential backoff).
        try client.setReceiveBufferSize(128 << 10)
        let fd = client.fileDescriptor

        // Phase 1: write without reading until the kernel takes nothing more for 500 ms.
        var sent = 0
        while sent < total {
            let result = try Pattern.withChunk(at: sent, maxCount: total - sent) { chunk in
                try client.write(chunk)
            }
            if case .processed(let n) = result {
                sent += n
            } else if waitFor(fd, POLLOUT, timeout: .milliseconds(500)) == 0 {
                break
            }
        }
        let snapshot = try onReactor(server.handle) { _ in
            latest.value.map { ($0.isReadingPaused, $0.pendingOutputBytes) }
        }
        let bound = highWatermark + readBuffer
        #expect(sent < total, "the kernel took all \(total) bytes: nothing pushed back")
        #expect(snapshot?.0 == true, "server connection is not paused")
        // A real backlog remains while paused. On readiness backends, more than half the high
        // watermark. A completion backend pauses within one 16 KiB receive of the high
        // watermark and its sends keep draining into the peer's receive buffer while it does
        // not read, by an amount that varies with timing (190 KiB left under TSan): there the
        // bound is what pausing itself implies, a backlog above the low watermark (below it,
        // reading would have resumed).
        let backlog = S.completesIO ? lowWatermark : highWatermark / 2
        #expect((snapshot?.1 ?? 0) > backlog)
        #expect((snapshot?.1 ?? .max) <= bound)
        #expect(log.wasPaused)
        #expect(log.maxPendingBytes <= bound)

        // Phase 2: read everything, write the rest, then EOF.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var received = 0
        var ended = false
        var shut = false
        let deadline = ContinuousClock.now + .seconds(30)
        while !ended && ContinuousClock.now < deadline {
            while sent < total {
                let result = try Pattern.withChunk(at: sent, maxCount: total - sent) { chunk in
                    try client.write(chunk)
                }
                guard case .processed(let n) = result else { break }
                sent += n
            }
            if sent == total && !shut {
                try client.shutdown(.write)
                shut = true
            }
            reading: while true {
                switch try client.read(into: buffer) {
                case .wouldBlock: break reading
                case .processed(0):
                    ended = true
                    break reading
                case .processed(let n):
                    let data = UnsafeRawBufferPointer(rebasing: buffer[..<n])
                    guard Pattern.matches(data, at: received) else {
                        throw TestFailure("wrong bytes at \(received)")
                    }
                    received += n
                }
            }
            if !ended {
                _ = waitFor(fd, POLLIN | (sent < total ? POLLOUT : 0), timeout: .milliseconds(100))
            }
        }
        try client.close()
        #expect(ended)
        #expect(received == total)
        #expect(log.drainCount >= 1)
        #expect(log.maxPendingBytes <= bound)
        #expect(log.waitForCloses(1) == [.endOfFile])
    }
}
