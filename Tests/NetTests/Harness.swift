import Net
import Selector
import SysCalls
import Testing

/// One end of a stream under test: reads everything until would-block (edge semantics),
/// optionally echoes it, and writes what is queued until done or would-block, telling the
/// selector's drain hook each time it stops at would-block.
final class StreamEnd {
    let socket: any StreamSocket
    let echoes: Bool
    let hook: (any SelectorDrainHook)?
    var received: [UInt8] = []
    var outbound: [UInt8] = []
    var sent = 0
    var sawEndOfFile = false
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)

    init(_ socket: any StreamSocket, echoes: Bool, hook: (any SelectorDrainHook)?) {
        self.socket = socket
        self.echoes = echoes
        self.hook = hook
    }

    /// Reads until would-block or end of file, then flushes.
    func service() throws {
        reading: while !sawEndOfFile {
            switch try socket.read(into: &buffer) {
            case .wouldBlock:
                hook?.drained(socket.fileDescriptor, .readable)
                break reading
            case .processed(0): sawEndOfFile = true
            case .processed(let count):
                received += buffer[..<count]
                if echoes { outbound += buffer[..<count] }
            }
        }
        try flush()
    }

    /// Writes queued bytes until all are sent or the socket would block.
    func flush() throws {
        while sent < outbound.count {
            let result = try outbound[sent...].withUnsafeBytes { try socket.write($0) }
            guard case .processed(let count) = result else {
                return hook?.drained(socket.fileDescriptor, .writable) ?? ()
            }
            sent += count
        }
    }
}

/// Echoes `payload` from `client` through a server end and back, driven by `selector`.
///
/// `listener` (token 0) is drained with `accept` on each readable event; `server`, if given,
/// is the already-connected other end (a socketpair). The client (token 1) first waits for
/// its connect to finish (writable + SO_ERROR).
func echoStream<S: EventSelector>(
    _ type: S.Type, payload: [UInt8], client: any StreamSocket,
    listener: (any Socket)? = nil, accept: () throws -> (any StreamSocket)? = { nil },
    server: (any StreamSocket)? = nil
) throws {
    let selector = try S()
    defer { selector.close() }
    let hook = selector.drainHook
    let clientEnd = StreamEnd(client, echoes: false, hook: hook)
    clientEnd.outbound = payload
    var serverEnd: StreamEnd? = server.map { StreamEnd($0, echoes: true, hook: hook) }
    if let listener {
        try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
    }
    if let serverEnd {
        try selector.register(
            serverEnd.socket.fileDescriptor, token: 2, interest: [.readable, .writable])
    }
    try selector.register(client.fileDescriptor, token: 1, interest: [.readable, .writable])
    var connected = false
    try loop(selector, "echo of \(payload.count) bytes over \(S.backendName)") { event in
        switch event.token {
        case 0:
            while let stream = try accept() {
                #expect(serverEnd == nil, "one connection expected")
                let end = StreamEnd(stream, echoes: true, hook: hook)
                serverEnd = end
                try selector.register(
                    stream.fileDescriptor, token: 2, interest: [.readable, .writable])
                try end.service()
            }
            if let listener { hook?.drained(listener.fileDescriptor, .readable) }
        case 1:
            if !connected {
                if let error = try client.takeError() { throw error }
                connected = true
            }
            try clientEnd.service()
        case 2:
            try serverEnd?.service()
        default:
            Issue.record("unexpected \(event)")
        }
        return clientEnd.received.count >= payload.count
    }
    #expect(clientEnd.received == payload)
    try serverEnd?.socket.close()
    try client.close()
}

/// Sends `count` datagrams from `client` to `server`, which echoes each back to its sender,
/// and checks every one comes back intact. `serverAddress` nil means the client is connected.
func echoDatagrams<S: EventSelector>(
    _ type: S.Type, count: Int = 20, client: any DatagramSocket, server: any DatagramSocket,
    serverAddress: SocketAddress?
) throws {
    let selector = try S()
    defer { selector.close() }
    try selector.register(server.fileDescriptor, token: 0, interest: .readable)
    try selector.register(client.fileDescriptor, token: 1, interest: .readable)
    let messages = (0..<count).map { pattern(100 + $0, seed: UInt64($0 + 1)) }
    var sentCount = 0
    // At most 8 in flight: a Unix datagram receiver queues only 10 (net.unix.max_dgram_qlen)
    // and an unconnected sender is not woken when that queue drains.
    func sendMore(echoed: Int) throws {
        while sentCount < count, sentCount - echoed < 8 {
            let message = messages[sentCount]
            let result =
                try serverAddress.map { try client.send(message, to: $0) } ?? client.send(message)
            #expect(result == .processed(message.count))
            sentCount += 1
        }
    }
    try sendMore(echoed: 0)
    var buffer = [UInt8](repeating: 0, count: 2048)
    var echoed: [[UInt8]] = []
    try loop(selector, "\(count) datagrams over \(S.backendName)") { event in
        if event.token == 0 {
            while case .processed(let datagram) = try server.receive(into: &buffer) {
                #expect(!datagram.isTruncated)
                let bytes = Array(buffer[..<datagram.count])
                let sent =
                    serverAddress == nil
                    ? try server.send(bytes) : try server.send(bytes, to: datagram.sender)
                #expect(sent == .processed(bytes.count))
            }
            selector.drainHook?.drained(server.fileDescriptor, .readable)
        } else {
            while case .processed(let datagram) = try client.receive(into: &buffer) {
                echoed.append(Array(buffer[..<datagram.count]))
            }
            selector.drainHook?.drained(client.fileDescriptor, .readable)
            try sendMore(echoed: echoed.count)
        }
        return echoed.count >= count
    }
    #expect(echoed == messages)
}
