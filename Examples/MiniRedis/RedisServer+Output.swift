import Reactor
import Selector

// Output limits, in the spirit of Redis's `client-output-buffer-limit` and
// `maxmemory-clients`, for replies that stream (`ClientOutput`):
//
// - A client's *held* output is what its replies make the server hold beyond the stored
//   values they share: bytes queued in its connection, bytes built for queued pieces and
//   their bookkeeping, copies (ECHO). Streaming keeps it near one watermark (1 MiB) for a
//   client however large its replies, reading or not, since its next commands wait unparsed
//   while its output is backed up.
// - Its *unsent* output is every reply byte the kernel has not taken yet, shared stored
//   values included.
// - Hard limit: held output above it cuts the client off at once.
// - Soft limit: unsent output above it for the soft seconds, with the kernel taking none of
//   the client's bytes all that time, cuts it off. A client that keeps reading makes progress
//   and is never cut off, however large the reply.
// - Orphaned values: a stored value that queued replies stream from and that the key space
//   then let go of (SET over it, DEL, expiry, FLUSHALL…) lives on only for those replies. Its
//   storage is reply memory too, counted once however many replies reference it, until the
//   last of them is written or dropped (`PinnedValue`, `OrphanLedger`).
// - Global limit: when the held output of all clients together plus the orphaned values
//   passes it, the clients that went longest without the kernel taking their bytes are cut
//   off until it fits (cutting a client off drops its replies, and so its pins).
extension RedisServer {
    /// Begins (or continues) streaming the current command's reply for `connection`, first
    /// appending a bulk header for `header` bytes if given. Replies gathered so far go
    /// straight to the connection; what follows is queued in the returned client's pieces.
    func startStreaming(_ connection: Connection<Backend>, header: Int?) -> ClientOutput<Backend> {
        if let header { reply.appendHeader(UInt8(ascii: "$"), Int64(header)) }
        if let streaming {
            flush(connection)
            return streaming
        }
        let client = output(of: connection) ?? makeOutput(for: connection)
        if !client.hasPieces { flush(connection) }
        streaming = client
        flush(connection)
        return client
    }

    /// After a command that streamed or backed up the output: queues the rest of its reply,
    /// pumps, and accounts. False if the client was cut off.
    func endCommandOutput(_ connection: Connection<Backend>) -> Bool {
        if let client = streaming {
            flush(connection)
            client.closeOwnedRun()
            streaming = nil
            client.pump(highWatermark: limits.highWatermark)
        }
        guard connection.isOpen else { return false }
        return account(output(of: connection) ?? makeOutput(for: connection))
    }

    /// Whether further commands of `connection` must wait for its output to drain.
    func isBackedUp(_ connection: Connection<Backend>) -> Bool {
        connection.pendingOutputBytes > limits.highWatermark
            || output(of: connection)?.hasPieces == true
    }

    /// After a batch of commands: accounts the client's output if it has any, and enforces
    /// the global limit if the batch orphaned values past it.
    @inline(__always)
    func noteOutput(of connection: Connection<Backend>) {
        if isOverOutputMemory { enforceGlobalLimit() }
        guard connection.userInfo != 0 || connection.pendingOutputBytes > 0 else { return }
        noteQueuedOutput(of: connection)
    }

    /// Whether the reply memory (held output and orphaned values) passed the global limit.
    @inline(__always)
    var isOverOutputMemory: Bool {
        heldTotal &+ keyspace.orphans.bytes > limits.maxOutputMemory
    }

    @inline(never)
    private func noteQueuedOutput(of connection: Connection<Backend>) {
        guard connection.isOpen else { return }
        account(output(of: connection) ?? makeOutput(for: connection))
    }

    /// The output state of `connection`, if it has one.
    func output(of connection: Connection<Backend>) -> ClientOutput<Backend>? {
        let slot = connection.userInfo - 1
        return slot >= 0 && slot < clients.count ? clients[slot] : nil
    }

    private func makeOutput(for connection: Connection<Backend>) -> ClientOutput<Backend> {
        let slot = freeSlots.popLast() ?? clients.count
        let client = ClientOutput(connection: connection, slot: slot)
        client.lastProgress = reactor.now
        if slot == clients.count { clients.append(client) } else { clients[slot] = client }
        connection.userInfo = slot + 1
        return client
    }

    /// Recounts what `client` holds; cuts it off above the hard limit, and clients (maybe
    /// it) above the global one. Returns whether `client` is still open.
    @discardableResult
    func account(_ client: ClientOutput<Backend>) -> Bool {
        let held = client.heldBytes
        if client.accounted == 0 && held > 0 { client.lastProgress = reactor.now }
        heldTotal += held - client.accounted
        client.accounted = held
        if held > limits.outputHardLimit {
            cutOff(client)
            return false
        }
        if isOverOutputMemory { enforceGlobalLimit() }
        return client.connection.isOpen
    }

    /// Closes `client` now, dropping its queued replies.
    private func cutOff(_ client: ClientOutput<Backend>) {
        client.reset()
        client.connection.abort()
    }

    /// Recounts every client, then cuts off clients (`nextVictim`) until the held output and
    /// the orphaned values together fit; cutting one off unpins what its replies referenced.
    @inline(never)
    private func enforceGlobalLimit() {
        recount()
        while isOverOutputMemory {
            guard let victim = nextVictim() else { break }
            cutOff(victim)
        }
    }

    /// The client to cut off next: among those with reply bytes unsent (any holding output if
    /// none has: a client that read all its replies keeps only a few kilobytes of
    /// bookkeeping), the one that went longest without the kernel taking its bytes; among
    /// equals, the one whose cutting off gives back most (held output and the orphaned
    /// values its replies reference).
    private func nextVictim() -> ClientOutput<Backend>? {
        var victim: ClientOutput<Backend>?
        var victimHasUnsent = false
        for case let client? in clients where client.accounted > 0 {
            let hasUnsent = client.unsentBytes > 0
            guard let chosen = victim else {
                victim = client
                victimHasUnsent = hasUnsent
                continue
            }
            if hasUnsent != victimHasUnsent {
                if hasUnsent {
                    victim = client
                    victimHasUnsent = true
                }
                continue
            }
            if client.lastProgress < chosen.lastProgress
                || (client.lastProgress == chosen.lastProgress
                    && client.accounted + client.orphanedBytesPinned
                        > chosen.accounted + chosen.orphanedBytesPinned)
            {
                victim = client
            }
        }
        return victim
    }

    /// Sets every client's `accounted` to what it holds now.
    private func recount() {
        heldTotal = 0
        for case let client? in clients {
            client.accounted = client.heldBytes
            heldTotal += client.accounted
        }
    }

    /// The periodic check (ten times a second): notes which clients' output the kernel took
    /// bytes of, and cuts off those above the soft limit for the soft seconds without any.
    func checkOutputLimits() {
        guard clients.count > freeSlots.count else { return }
        let now = reactor.now
        let softNanoseconds = limits.outputSoftNanoseconds
        var victims: [ClientOutput<Backend>] = []
        heldTotal = 0
        for case let client? in clients {
            client.accounted = client.heldBytes
            heldTotal += client.accounted
            let unsent = client.unsentBytes
            if unsent < client.lastUnsent { client.lastProgress = now }
            client.lastUnsent = unsent
            guard unsent > limits.outputSoftLimit else {
                client.overSoftSince = 0
                continue
            }
            if client.overSoftSince == 0 { client.overSoftSince = now }
            if now &- max(client.overSoftSince, client.lastProgress) >= softNanoseconds {
                victims.append(client)
            }
        }
        for client in victims { cutOff(client) }
        if isOverOutputMemory { enforceGlobalLimit() }
    }

    /// DEBUG OUTPUTSTATS: the clients with output state, their held and unsent output
    /// (recounted now), the orphaned values (bytes and count), and the limits, so tests can
    /// check them from outside.
    func outputStatistics() {
        recount()
        var unsent = 0
        var live = 0
        for case let client? in clients {
            unsent += client.unsentBytes
            live += 1
        }
        var text = "clients: \(live)\n"
        text += "held: \(heldTotal)\n"
        text += "unsent: \(unsent)\n"
        text += "orphaned: \(keyspace.orphans.bytes)\n"
        text += "orphaned values: \(keyspace.orphans.values)\n"
        text += "max output memory: \(limits.maxOutputMemory)\n"
        Array(text.utf8).withUnsafeBytes { reply.bulk($0) }
    }

    // MARK: ConnectionDelegate

    /// The client took most of its queued output: pump more of its reply, and once all of it
    /// is in the connection, run the commands that waited.
    func connectionDidDrain(_ connection: Connection<Backend>) {
        guard let client = output(of: connection) else {
            connection.redeliverBufferedInput()
            return
        }
        client.lastProgress = reactor.now
        client.pump(highWatermark: limits.highWatermark)
        guard account(client), !isBackedUp(connection) else { return }
        now = Int64(reactor.now / 1_000_000)
        connection.redeliverBufferedInput()
        if client.closeWhenWritten && connection.isOpen && !isBackedUp(connection) {
            connection.close()
        }
    }

    /// EOF: close once every queued reply is written (the connection then sends the rest).
    func connectionDidReadEOF(_ connection: Connection<Backend>) {
        if let client = output(of: connection), isBackedUp(connection) {
            client.closeWhenWritten = true
            return
        }
        connection.close()
    }

    /// Forgets the client's output state.
    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
        guard let client = output(of: connection) else { return }
        heldTotal -= client.accounted
        client.accounted = 0
        client.reset()
        if streaming === client { streaming = nil }
        clients[client.slot] = nil
        freeSlots.append(client.slot)
        connection.userInfo = 0
    }
}
