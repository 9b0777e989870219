import Net
import Selector
import SysCalls

// Accepting: admit each new client, and survive the descriptor limit without spinning.
extension ChatServer {
    /// Accepts until would-block (or until accepting is paused at the descriptor limit).
    func acceptAll() {
        while acceptPausedUntil == nil {
            do {
                switch try listener.accept() {
                case .wouldBlock:
                    selector.drainHook?.drained(listener.fileDescriptor, .readable)
                    return
                case .processed(let (stream, _)):
                    admit(stream)
                }
            } catch let error {
                switch error.code {
                case Errno.ECONNABORTED.code, Errno.EPERM.code, Errno.EPROTO.code:
                    continue  // that client gave up while queued; take the next one
                case Errno.EMFILE.code, Errno.ENFILE.code:
                    // Out of descriptors: turn one queued client away (free the reserve,
                    // accept, close) so the backlog drains instead of hanging; pause if that
                    // fails. The edge has fired, so the pause ends by timeout, not by event.
                    // Linux reports EMFILE before it looks at the queue, so an empty queue
                    // shows only once the reserve is freed.
                    logLimit(error)
                    switch reserve.turnAwayOne(from: listener) {
                    case .turnedAway: continue
                    case .queueEmpty:
                        selector.drainHook?.drained(listener.fileDescriptor, .readable)
                        return
                    case .failed: pauseAccepting()
                    }
                default:
                    logLimit(error)
                    pauseAccepting()
                }
            }
        }
    }

    private func admit(_ stream: TCPStream) {
        let slot = freeSlots.popLast() ?? appendSlot()
        let token = Token(
            rawValue: UInt64(slots[slot].generation) << 32 | UInt64(slot + Self.firstClientToken))
        let client = Client(id: nextID, stream: stream, token: token)
        do {
            try selector.register(stream.fileDescriptor, token: token, interest: .readable)
        } catch {
            try? stream.close()
            freeSlots.append(slot)
            return
        }
        nextID += 1
        try? stream.setNoDelay(true)
        slots[slot].client = client
        // Announced with the turn's other notices; the newcomer hears only those after its own
        // arrival (not its own, nor earlier arrivals of this turn).
        addNotice("* \(client.id) joined\n")
        client.noticesFrom = notices.count
        deliver(Message("* you are \(client.id)\n"), to: client)
    }

    private func appendSlot() -> Int {
        slots.append((0, nil))
        return slots.count - 1
    }

    private func pauseAccepting() {
        acceptPausedUntil = ContinuousClock.now + limits.acceptPause
    }

    private func logLimit(_ error: Errno) {
        let now = ContinuousClock.now
        if let last = lastLimitLog, now - last < .seconds(1) { return }
        lastLimitLog = now
        log("accept: \(error.message) (\(error.name)); turning clients away")
    }
}
