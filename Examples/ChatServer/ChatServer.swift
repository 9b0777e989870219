import ExampleSupport
import Net
import Selector
import SysCalls

/// The limits that keep one client from costing the server unbounded memory.
struct ChatLimits {
    /// The longest line accepted, without its newline; a longer one ends the connection.
    var maxLine = 64 << 10
    /// The most bytes queued for one client that does not read; past it, it is disconnected.
    var maxBacklog = 1 << 20
    /// How long a leaving client gets to take its last lines before it is closed anyway.
    var lingerTime = Duration.seconds(2)
    /// How long accepting pauses when the process runs out of descriptors.
    var acceptPause = Duration.milliseconds(100)
    /// Bytes written to clients per loop turn, beyond which big backlogs wait for the next
    /// turn (small ones, up to `smallWrite`, always go): a turn stays short, so newcomers
    /// and other events are served between the writes a flood causes.
    var turnWriteBudget = 2 << 20
    /// A backlog this small is written even when the turn's budget is spent.
    var smallWrite = 4 << 10
}

/// A line-based chat room on one thread: a selector, a listener and a table of clients.
///
/// Every complete line a client sends goes to every other client as `"<id>: line\n"`; joins
/// and departures are announced as `"* <id> joined\n"` and `"* <id> left\n"`. Readiness is
/// edge-triggered, so each event is followed by reads, accepts or writes until would-block.
///
/// Output is coalesced so that what one client sends cannot multiply the work of a turn: the
/// complete lines of one read become one shared message, the notices of one turn another,
/// and each member is written to at most once per turn (the rest waits for the next turn).
/// A turn's work is bounded by the events it handles and the members it writes to, never by
/// lines × members.
final class ChatServer<Backend: EventSelector> {
    /// The address the listener is bound to (with the real port after binding port 0).
    let localAddress: SocketAddress

    private static var listenerToken: Token { Token(0) }
    private static var wakerToken: Token { Token(1) }
    /// Client tokens start here; lower ones are the listener and the waker.
    static var firstClientToken: Int { 2 }

    /// Line and backlog limits.
    let limits: ChatLimits
    /// The readiness source for everything below.
    let selector: Backend
    /// The listening socket.
    let listener: TCPListener
    private let waker: Backend.Waker
    private var events = Events(capacity: 256)
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 64 << 10, alignment: 16)

    /// The token → client table. A token carries a slot index and the slot's generation,
    /// which moves on each removal: a late event for a closed client never reaches the next.
    var slots: [(generation: UInt32, client: Client?)] = []
    /// Slots free for reuse.
    var freeSlots: [Int] = []
    /// The id the next client gets.
    var nextID = 1
    private var leaving: [Client] = []
    // Clients that used up their read budget with input still waiting: resumed next turn.
    private var unfinishedReads: [Client] = []
    // The notices of this turn ("* 3 joined\n* 5 left\n…"), sent as one message at its end;
    // a client admitted during the turn hears only those after its own (`noticesFrom`).
    var notices: [UInt8] = []
    // Clients with output to write this turn (`Client.wantsFlush`).
    var toFlush: [Client] = []

    /// A spare descriptor, freed at the descriptor limit for one accept-and-close (the
    /// same `DescriptorReserve` the Reactor's `Acceptor` uses).
    var reserve = DescriptorReserve()
    /// Set while accepting pauses because even the reserve did not help.
    var acceptPausedUntil: ContinuousClock.Instant?
    /// When the descriptor limit was last logged (at most once a second).
    var lastLimitLog: ContinuousClock.Instant?
    private var stopping = false

    /// Binds `address`, registers the listener and a waker; `wake()` on `stopper` stops `run()`.
    init(address: SocketAddress, limits: ChatLimits) throws {
        self.limits = limits
        selector = try Backend()
        listener = try TCPListener(binding: address)
        localAddress = try listener.localAddress
        try selector.register(
            listener.fileDescriptor, token: Self.listenerToken, interest: .readable)
        waker = try selector.makeWaker(token: Self.wakerToken)
    }

    deinit { readBuffer.deallocate() }

    /// The Sendable handle that makes `run()` return: wake it from any thread.
    var stopper: Backend.Waker { waker }

    /// Serves until the waker fires, then closes every client, the listener and the selector.
    func run() throws(Errno) {
        while !stopping {
            try selector.select(into: &events, timeout: nextTimeout())
            for index in events.indices { dispatch(events[index]) }
            if let until = acceptPausedUntil, ContinuousClock.now >= until {
                acceptPausedUntil = nil
                acceptAll()
            }
            resumeReads()
            expireLeaving()
            sendNotices()
            flushAll()
        }
        for index in slots.indices { if let client = slots[index].client { remove(client) } }
        try? listener.close()
        selector.close()
    }

    private func dispatch(_ event: Event) {
        switch event.token {
        case Self.listenerToken: acceptAll()
        case Self.wakerToken: stopping = true
        default:
            guard let client = lookup(event.token) else { return }  // closed since: stale
            if event.isReadable || event.isReadClosed || event.isError { readAll(client) }
            if event.isWritable || event.isWriteClosed, lookup(event.token) === client {
                markForFlush(client)
            }
        }
    }

    func lookup(_ token: Token) -> Client? {
        let slot = Int(token.rawValue & 0xFFFF_FFFF) - Self.firstClientToken
        guard slot >= 0, slot < slots.count, slots[slot].generation == UInt32(token.rawValue >> 32)
        else { return nil }
        return slots[slot].client
    }

    // MARK: - Reading

    /// Reads until would-block, or until this turn's budget is spent: a client that sends
    /// without pause must not starve the others, so it waits for the next turn (no new event
    /// would come for it: the edge has fired already).
    private func readAll(_ client: Client) {
        var budget = 16
        while !client.stream.isClosed {
            if budget == 0 {
                if !client.readUnfinished {
                    client.readUnfinished = true
                    unfinishedReads.append(client)
                }
                return
            }
            budget -= 1
            let result: IOResult<Int>
            do {
                result = try client.stream.read(into: readBuffer)
            } catch {
                remove(client)
                return
            }
            switch result {
            case .wouldBlock:
                selector.drainHook?.drained(client.stream.fileDescriptor, .readable)
                return
            case .processed(0):
                peerClosed(client)
                return
            case .processed(let count):
                // A leaving client's input is read only to be thrown away.
                if client.state == .member {
                    receive(UnsafeRawBufferPointer(rebasing: readBuffer[..<count]), from: client)
                }
            }
        }
    }

    private func resumeReads() {
        guard !unfinishedReads.isEmpty else { return }
        let clients = unfinishedReads
        unfinishedReads.removeAll(keepingCapacity: true)
        for client in clients where lookup(client.token) === client && client.readUnfinished {
            client.readUnfinished = false
            readAll(client)
        }
    }

    /// Splits `bytes` into lines, completing the one `client` had started, and broadcasts
    /// the complete ones as one message: the work is linear in the bytes, however many lines
    /// they hold.
    private func receive(_ bytes: UnsafeRawBufferPointer, from client: Client) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let scan = LineSplitter.scan(
            bytes, pending: client.partialLine.count, maxLine: limits.maxLine)
        if scan.lines > 0 {
            broadcastLines(base, through: scan.end, count: scan.lines, from: client)
        }
        if scan.overlong { return tooLong(client) }
        client.partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[scan.end...]))
    }

    /// Broadcasts, as one message, `client`'s unfinished line completed by the `lines`
    /// newline-terminated lines in `base[0..<end]`, each behind the client's prefix.
    private func broadcastLines(
        _ base: UnsafePointer<UInt8>, through end: Int, count lines: Int, from client: Client
    ) {
        let prefix = client.prefix
        let size = LineSplitter.messageSize(
            lines: lines, prefix: prefix.count, pending: client.partialLine.count, end: end)
        let message = Message(count: size) { out in
            prefix.withUnsafeBytes { prefix in
                client.partialLine.withUnsafeBytes { pending in
                    _ = LineSplitter.compose(
                        into: out, prefix: prefix, pending: pending,
                        lines: UnsafeRawBufferPointer(start: base, count: end))
                }
            }
        }
        client.partialLine.removeAll(keepingCapacity: client.partialLine.capacity <= 4096)
        broadcast(message, except: client)
    }

    private func peerClosed(_ client: Client) {
        client.peerClosed = true
        if client.state == .member, !client.partialLine.isEmpty {
            // The last line needs no newline: end of file ends it.
            withUnsafeBytes(of: UInt8(ascii: "\n")) { newline in
                broadcastLines(
                    newline.baseAddress!.assumingMemoryBound(to: UInt8.self), through: 1, count: 1,
                    from: client)
            }
        }
        if client.state == .member || client.isDrained { remove(client) }
    }

    private func tooLong(_ client: Client) {
        log("client \(client.id): line over \(limits.maxLine) bytes; disconnecting")
        client.partialLine = []
        startLeaving(client)
        // Flushed like any output; once it is out, flush() sends FIN (see startLeaving).
        deliver(Message("error: line too long\n"), to: client)
    }

    // MARK: - Leaving

    /// Announces `client`'s departure and stops relaying to and from it. Its connection stays
    /// open until its queued output is out (then FIN), the peer closes, or `lingerTime` ends.
    private func startLeaving(_ client: Client) {
        client.state = .leaving
        client.deadline = ContinuousClock.now + limits.lingerTime
        leaving.append(client)
        addNotice("* \(client.id) left\n")
    }

    private func expireLeaving() {
        guard !leaving.isEmpty else { return }
        let now = ContinuousClock.now
        leaving.removeAll { client in
            guard lookup(client.token) === client else { return true }
            guard let deadline = client.deadline, now >= deadline else { return false }
            remove(client)
            return true
        }
    }

    /// Closes `client` now and frees its slot; others hear it left if it was still a member.
    func remove(_ client: Client) {
        let slot = Int(client.token.rawValue & 0xFFFF_FFFF) - Self.firstClientToken
        guard slots[slot].client === client else { return }
        slots[slot].client = nil
        slots[slot].generation &+= 1
        freeSlots.append(slot)
        try? selector.deregister(client.stream.fileDescriptor)
        try? client.stream.close()
        client.discardBacklog()
        if client.state == .member {
            client.state = .leaving
            addNotice("* \(client.id) left\n")
        }
    }

    private func nextTimeout() -> Duration? {
        if !unfinishedReads.isEmpty || !toFlush.isEmpty { return .zero }
        var earliest = acceptPausedUntil
        for client in leaving {
            if let deadline = client.deadline, earliest.map({ deadline < $0 }) ?? true {
                earliest = deadline
            }
        }
        guard let earliest else { return nil }
        return max(.zero, earliest - ContinuousClock.now)
    }
}

/// Writes `text` to standard error as one `chat-server:` line.
func log(_ text: String) {
    printError("chat-server: \(text)")
}
