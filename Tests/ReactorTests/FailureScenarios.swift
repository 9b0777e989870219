import Glibc
import Net
import Reactor
import Selector
import Synchronization
import SysCalls
import Testing

/// Failure modes other event loops have had: EOF with queued output, writes after a reset,
/// half-closed connections.
enum FailureScenarios {
    // MARK: EOF with queued output

    /// Answers every byte `b` with 1 KiB: `b, b+1, b+2, …` (wrapping).
    final class Amplifier<B: EventSelector>: ConnectionDelegate {
        typealias Backend = B
        let log: ServerLog
        private var answer = [UInt8](repeating: 0, count: 1024)

        init(log: ServerLog) { self.log = log }

        func connection(_ connection: Connection<B>, didRead bytes: UnsafeRawBufferPointer)
            -> Int
        {
            for byte in bytes {
                for index in answer.indices {
                    answer[index] = byte &+ UInt8(truncatingIfNeeded: index)
                }
                connection.write(answer)
            }
            return bytes.count
        }

        func connectionDidReadEOF(_ connection: Connection<B>) {
            log.note(connection.pendingOutputBytes)
            connection.close()
        }

        func connectionDidClose(_ connection: Connection<B>, reason: CloseReason) {
            log.closed(reason)
        }
    }

    /// The client sends 512 bytes and shuts down writing before reading anything; the
    /// server's 512 KiB answer is still mostly queued when it reads the EOF. The client then
    /// reads every byte of it, in order, before end of file.
    static func eofWithQueuedOutputFlushesFirst<S: EventSelector>(_: S.Type) throws {
        let requests = 512
        let log = ServerLog()
        let server = try ServerThread<S> { reactor in
            // A fixed small send buffer (no autotuning) keeps the answer in the output queue.
            try serve(on: reactor, log: log, delegate: Amplifier<S>(log: log)) { stream in
                try? stream.setSendBufferSize(16 << 10)
            }
        }
        defer { server.stop() }

        let client = try connectClient(port: server.port)
        // Small, but above loopback's 64 KiB MSS (below it TCP itself stalls).
        try client.setReceiveBufferSize(128 << 10)
        let request = (0..<requests).map { UInt8($0 % 251) }
        try sendAll(client, request)
        try client.shutdown(.write)
        // Let the server read the request and the EOF while its answer is stuck.
        usleep(300_000)
        var received: [UInt8] = []
        let ending = try readUntilEnd(client, into: &received, timeout: .seconds(10))
        try client.close()

        var expected: [UInt8] = []
        expected.reserveCapacity(requests * 1024)
        for byte in request {
            for index in 0..<1024 { expected.append(byte &+ UInt8(truncatingIfNeeded: index)) }
        }
        #expect(ending == .endOfFile)
        #expect(received.count == expected.count)
        #expect(received == expected)
        let pendingAtEOF = log.noted
        #expect(pendingAtEOF.count == 1)
        #expect(pendingAtEOF.first ?? 0 > 0, "no output was queued when the EOF was read")
        #expect(log.waitForCloses(1) == [.endOfFile])
    }

    // MARK: Write after reset

    /// Writes 64 KiB every 2 ms once the client has said something, until the connection
    /// closes.
    final class Firehose<B: EventSelector>: ConnectionDelegate {
        typealias Backend = B
        let log: ServerLog
        unowned let reactor: Reactor<B>
        private var timer: TimerID?

        init(log: ServerLog, reactor: Reactor<B>) {
            self.log = log
            self.reactor = reactor
        }

        func connection(_ connection: Connection<B>, didRead bytes: UnsafeRawBufferPointer)
            -> Int
        {
            guard timer == nil else { return bytes.count }
            let chunk = Pattern.bytes(at: 0, count: 64 << 10)
            timer = reactor.schedule(after: .zero, repeating: .milliseconds(2)) { [log] _ in
                guard connection.isOpen else { return }
                connection.write(chunk)
                log.writes.add(1, ordering: .relaxed)
                log.observe(
                    pending: connection.pendingOutputBytes, paused: connection.isReadingPaused)
            }
            return bytes.count
        }

        func connectionDidClose(_ connection: Connection<B>, reason: CloseReason) {
            if let timer { reactor.cancel(timer) }
            timer = nil
            log.closed(reason)
        }
    }

    /// The server keeps writing to a client that resets the connection (SO_LINGER 0). The
    /// test process does not ignore SIGPIPE, and the reactor thread blocks it so that a
    /// raised SIGPIPE stays pending where the test can see it (blocked signals are queued even
    /// when ignored); the connection must close with EPIPE or ECONNRESET, and no SIGPIPE may
    /// be pending.
    static func writeAfterResetNeverRaisesSIGPIPE<S: EventSelector>(_: S.Type) throws {
        let log = ServerLog()
        let options = ConnectionOptions(highWatermark: 64 << 10, lowWatermark: 16 << 10)
        let server = try ServerThread<S> { reactor in
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            return try serve(
                on: reactor, log: log, delegate: Firehose<S>(log: log, reactor: reactor),
                settings: ConnectionSettings(options))
        }
        defer { server.stop() }

        let client = try connectClient(port: server.port)
        try client.setReceiveBufferSize(128 << 10)
        try sendAll(client, Array("go".utf8))
        let deadline = ContinuousClock.now + .seconds(5)
        while !log.wasPaused && ContinuousClock.now < deadline { usleep(5_000) }
        // Reading is paused: the server now only writes, so the reset is met by a write.
        #expect(log.wasPaused, "the server never filled its queue")
        try client.setLinger(.zero)
        try client.close()

        let reasons = log.waitForCloses(1)
        #expect(reasons.count == 1)
        if case .error(let error)? = reasons.first {
            #expect(error == .EPIPE || error == .ECONNRESET, "closed with \(error)")
        } else {
            Issue.record("expected a write or read error, got \(reasons)")
        }
        #expect(log.writeCount > 0)
        let sigpipePending = try onReactor(server.handle) { _ in
            var pending = sigset_t()
            sigpending(&pending)
            return sigismember(&pending, SIGPIPE) == 1
        }
        #expect(!sigpipePending, "a write raised SIGPIPE")
    }

    // MARK: Half-close

    /// Reads the request; after the peer's EOF writes eight 32 KiB chunks of the pattern,
    /// one per millisecond, then closes.
    final class LateWriter<B: EventSelector>: ConnectionDelegate {
        typealias Backend = B
        static var chunk: Int { 32 << 10 }
        static var chunks: Int { 8 }
        let log: ServerLog
        unowned let reactor: Reactor<B>
        private var received = 0

        init(log: ServerLog, reactor: Reactor<B>) {
            self.log = log
            self.reactor = reactor
        }

        func connection(_ connection: Connection<B>, didRead bytes: UnsafeRawBufferPointer)
            -> Int
        {
            received += bytes.count
            return bytes.count
        }

        func connectionDidReadEOF(_ connection: Connection<B>) {
            log.note(received)
            var written = 0
            var timer: TimerID?
            timer = reactor.schedule(after: .milliseconds(1), repeating: .milliseconds(1)) {
                reactor in
                guard written < Self.chunks, connection.isOpen else {
                    reactor.cancel(timer!)
                    connection.close()
                    return
                }
                connection.write(Pattern.bytes(at: written * Self.chunk, count: Self.chunk))
                written += 1
            }
        }

        func connectionDidClose(_ connection: Connection<B>, reason: CloseReason) {
            log.closed(reason)
        }
    }

    /// The client sends a request and shuts down writing; the server answers after the EOF,
    /// over several loop iterations, then closes: the client reads the whole answer, then EOF.
    static func halfCloseKeepsWriting<S: EventSelector>(_: S.Type) throws {
        let log = ServerLog()
        let server = try ServerThread<S> { reactor in
            try serve(on: reactor, log: log, delegate: LateWriter<S>(log: log, reactor: reactor))
        }
        defer { server.stop() }

        let client = try connectClient(port: server.port)
        let request = Array("request".utf8)
        try sendAll(client, request)
        try client.shutdown(.write)
        var received: [UInt8] = []
        let ending = try readUntilEnd(client, into: &received, timeout: .seconds(5))
        try client.close()

        let total = LateWriter<S>.chunk * LateWriter<S>.chunks
        #expect(ending == .endOfFile)
        #expect(received.count == total)
        #expect(received == Pattern.bytes(at: 0, count: total))
        #expect(log.noted == [request.count])
        let reasons = log.waitForCloses(1)
        #expect(reasons == [.closed] || reasons == [.endOfFile])
    }
}
