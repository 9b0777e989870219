import Net
import Selector
import SysCalls

/// The per-connection state of the closed loop.
struct Peer {
    /// Bytes still to send (all payload bytes are equal, so a count is enough).
    var owed = 0
    /// Bytes of the message currently arriving.
    var partial = 0
    /// Messages sent so far.
    var sent = 0
    /// Echoes completed so far.
    var completed = 0
    /// Send times of the messages in flight: a ring of `pipeline` slots starting here.
    var ringStart = 0
    var ringHead = 0
    var inFlight = 0
    var connected = false
    var done = false
}

/// A single-threaded, closed-loop echo client on one EpollSelector.
final class LoadGenerator {
    let options: Options
    let address: SocketAddress
    let selector: EpollSelector
    var events = Events(capacity: 1024)
    var streams: [TCPStream?]
    var peers: [Peer]
    /// Send timestamps, `pipeline` per connection.
    var sendTimes: [UInt64]
    var histogram = Histogram()
    let payload: UnsafeMutableRawBufferPointer
    let inbox: UnsafeMutableRawBufferPointer

    var nextToConnect = 0
    var connecting = 0
    var established = 0
    var finished = 0
    var errors = 0
    var measuring = false
    var windowMessages = 0

    init(_ options: Options) throws {
        self.options = options
        address = try SocketAddress(parsing: options.address)
        selector = try EpollSelector()
        streams = [TCPStream?](repeating: nil, count: options.connections)
        peers = [Peer](repeating: Peer(), count: options.connections)
        for index in peers.indices { peers[index].ringStart = index * options.pipeline }
        sendTimes = [UInt64](repeating: 0, count: options.connections * options.pipeline)
        payload = .allocate(byteCount: max(options.size * options.pipeline, 1 << 16), alignment: 64)
        payload.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
        inbox = .allocate(byteCount: 1 << 18, alignment: 64)
        inbox.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        payload.deallocate()
        inbox.deallocate()
    }

    /// Starts connects until `connectBatch` are in progress or all are started.
    func connectMore() throws {
        while connecting < options.connectBatch && nextToConnect < options.connections {
            let index = nextToConnect
            nextToConnect += 1
            let stream = try TCPStream.connect(to: address)
            try selector.register(
                stream.fileDescriptor, token: Token(index), interest: [.readable, .writable])
            streams[index] = stream
            connecting += 1
        }
    }

    /// Runs the select loop until `until()` is true or `deadline` (monotonic ns) passes.
    func run(deadline: UInt64? = nil, until: () -> Bool) throws {
        while !until() {
            var timeout: Duration? = nil
            if let deadline {
                let now = Sys.monotonicNanoseconds()
                if now >= deadline { return }
                timeout = .nanoseconds(Int64(deadline - now))
            }
            try selector.select(into: &events, timeout: timeout)
            for event in events { handle(event) }
            if connecting < options.connectBatch && nextToConnect < options.connections {
                try connectMore()
            }
        }
    }

    @inline(__always)
    func handle(_ event: Event) {
        let index = event.token.intValue
        guard let stream = streams[index], !peers[index].done else { return }
        if !peers[index].connected {
            guard event.isWritable || event.isError || event.isWriteClosed else { return }
            connecting -= 1
            if (try? stream.takeError()) ?? nil != nil || event.isError {
                fail(index)
                return
            }
            peers[index].connected = true
            established += 1
            try? stream.setNoDelay(true)
            queueMessages(index, max(1, min(options.pipeline, remaining(index))))
            flush(index, stream)
            return
        }
        if event.isReadable || event.isReadClosed || event.isError { receive(index, stream) }
        if event.isWritable && peers[index].owed > 0 { flush(index, stream) }
    }

    /// Messages this connection may still send (count mode), or effectively unlimited.
    @inline(__always)
    func remaining(_ index: Int) -> Int {
        guard let count = options.count else { return Int.max }
        return count - peers[index].sent
    }

    @inline(__always)
    func queueMessages(_ index: Int, _ messages: Int) {
        guard messages > 0 else { return }
        let now = Sys.monotonicNanoseconds()
        var peer = peers[index]
        for _ in 0..<messages {
            sendTimes[peer.ringStart + (peer.ringHead + peer.inFlight) % options.pipeline] = now
            peer.inFlight += 1
        }
        peer.sent += messages
        peer.owed += messages * options.size
        peers[index] = peer
    }

    func flush(_ index: Int, _ stream: TCPStream) {
        while peers[index].owed > 0 {
            let chunk = min(peers[index].owed, payload.count)
            do {
                switch try stream.write(UnsafeRawBufferPointer(rebasing: payload[..<chunk])) {
                case .processed(let written): peers[index].owed -= written
                case .wouldBlock: return  // the writable edge brings us back
                }
            } catch {
                fail(index)
                return
            }
        }
    }

    func receive(_ index: Int, _ stream: TCPStream) {
        while true {
            let result: IOResult<Int>
            do {
                result = try stream.read(into: inbox)
            } catch {
                fail(index)
                return
            }
            guard case .processed(let count) = result else { break }
            if count == 0 {
                fail(index)
                return
            }
            arrived(index, count)
            if peers[index].done || count < inbox.count { break }  // epoll: short read drained
        }
        if !peers[index].done && peers[index].owed > 0 { flush(index, stream) }
    }

    @inline(__always)
    func arrived(_ index: Int, _ bytes: Int) {
        var peer = peers[index]
        let total = peer.partial + bytes
        let messages = total / options.size
        peer.partial = total % options.size
        guard messages > 0 else {
            peers[index] = peer
            return
        }
        let now = Sys.monotonicNanoseconds()
        for _ in 0..<min(messages, peer.inFlight) {
            let sentAt = sendTimes[peer.ringStart + peer.ringHead]
            peer.ringHead = (peer.ringHead + 1) % options.pipeline
            peer.inFlight -= 1
            if measuring { histogram.record(now &- sentAt) }
        }
        peer.completed += messages
        if measuring { windowMessages += messages }
        peers[index] = peer
        if let count = options.count, peer.completed >= count {
            peers[index].done = true
            finished += 1
            return
        }
        queueMessages(index, min(messages, remaining(index)))
    }

    func fail(_ index: Int) {
        errors += 1
        peers[index].done = true
        finished += 1
        if let stream = streams[index] {
            try? selector.deregister(stream.fileDescriptor)
            try? stream.close()
        }
        streams[index] = nil
    }

    /// Closes every connection with a reset (SO_LINGER 0): no TIME_WAIT left behind to
    /// exhaust ephemeral ports over many runs.
    func closeAll() {
        for index in streams.indices {
            guard let stream = streams[index] else { continue }
            try? stream.setLinger(.zero)
            try? stream.close()
            streams[index] = nil
        }
    }
}
