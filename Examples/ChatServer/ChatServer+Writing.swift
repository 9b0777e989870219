import Net
import Selector
import SysCalls

// Writing: broadcasts and notices are queued, and each member is written to once per turn
// within a byte budget, so no input can multiply the work of a turn.
extension ChatServer {
    /// Queues `message` for every member but `sender`; it is written at the end of the turn.
    func broadcast(_ message: Message, except sender: Client?) {
        for index in slots.indices {
            guard let client = slots[index].client, client !== sender, client.state == .member
            else { continue }
            deliver(message, to: client)
        }
    }

    /// Queues `message` (from byte `offset` on) for `client`, to be written at the end of the
    /// turn; drops the client if its backlog passes the limit.
    func deliver(_ message: Message, to client: Client, from offset: Int = 0) {
        client.enqueue(message, from: offset)
        if client.backlogBytes > limits.maxBacklog {
            tooSlow(client)
        } else {
            markForFlush(client)
        }
    }

    /// Notes that `client` has output to write this turn.
    func markForFlush(_ client: Client) {
        guard !client.wantsFlush else { return }
        client.wantsFlush = true
        toFlush.append(client)
    }

    /// One write for each client with output, within the turn's byte budget: what a write
    /// leaves, and big backlogs once the budget is spent, wait for the next turn. So a turn
    /// costs at most one write per member and a bounded number of bytes.
    func flushAll() {
        guard !toFlush.isEmpty else { return }
        let clients = toFlush
        toFlush.removeAll(keepingCapacity: true)
        var deferred: [Client] = []
        var budget = limits.turnWriteBudget
        for client in clients where client.wantsFlush {
            guard lookup(client.token) === client else {
                client.wantsFlush = false
                continue
            }
            if budget <= 0 && client.backlogBytes > limits.smallWrite {
                deferred.append(client)  // still marked
                continue
            }
            client.wantsFlush = false
            let before = client.backlogBytes
            flush(client)
            budget -= before - client.backlogBytes
        }
        // The deferred go first next turn, before those marked since.
        if !deferred.isEmpty { toFlush = deferred + toFlush }
    }

    private func flush(_ client: Client) {
        let outcome: Client.FlushOutcome
        do {
            outcome = try client.flush()
        } catch {
            remove(client)
            return
        }
        let drained = outcome == .drained
        if outcome == .more { markForFlush(client) }
        if outcome == .blocked {
            selector.drainHook?.drained(client.stream.fileDescriptor, .writable)
        }
        if drained && client.state == .leaving {
            try? client.stream.shutdown(.write)  // the goodbye is out: send FIN after it
            if client.peerClosed { return remove(client) }
        }
        // Writable interest only while the kernel has pushed back; `.more` comes back next
        // turn by itself.
        let wanted: Interest = outcome == .blocked ? [.readable, .writable] : .readable
        if wanted != client.interest {
            do {
                try selector.reregister(
                    client.stream.fileDescriptor, token: client.token, interest: wanted)
                client.interest = wanted
            } catch {
                remove(client)
            }
        }
    }

    private func tooSlow(_ client: Client) {
        log("client \(client.id): over \(limits.maxBacklog) bytes unread; disconnecting")
        // Reset rather than close gracefully: what the kernel still holds for it is dropped too.
        try? client.stream.setLinger(.zero)
        remove(client)
    }

    /// Adds a line to this turn's notices.
    func addNotice(_ text: String) {
        notices += Array(text.utf8)
    }

    /// Sends this turn's notices as one message: each member gets the part after its own
    /// arrival (all of it if it was there before the turn). Departures it causes (a member
    /// over its backlog) go out in a next round, so broadcasts never nest.
    func sendNotices() {
        while !notices.isEmpty {
            let message = notices.withUnsafeBytes { Message($0) }
            notices.removeAll(keepingCapacity: true)
            for index in slots.indices {
                guard let client = slots[index].client else { continue }
                let from = client.noticesFrom
                client.noticesFrom = 0
                if client.state == .member && from < message.bytes.count {
                    deliver(message, to: client, from: from)
                }
            }
        }
    }
}
