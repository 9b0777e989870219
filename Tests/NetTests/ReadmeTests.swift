import Net
import Selector
import TestSupport
import Testing

extension NetTests {
    /// The README's Net example (kept identical to /work/briefs/net-readme.md → README.md).
    @Suite("README example")
    struct ReadmeTests {
        @Test("the README accept loop accepts real clients (port 0, stops after three)")
        func readmeLoopRuns() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"))
                let selector = try DefaultSelector()
                defer { selector.close() }
                try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
                let clients = try (0..<3).map { _ in
                    try TCPStream.connect(to: try listener.localAddress)
                }
                var connections: [Token: TCPStream] = [:]
                var events = Events(capacity: 256)
                let deadline = ContinuousClock.now + .seconds(10)
                while connections.count < 3, ContinuousClock.now < deadline {
                    try selector.select(into: &events, timeout: .milliseconds(100))
                    for event in events where event.token == 0 {
                        while case .processed(let (stream, _)) = try listener.accept() {
                            let token = Token(connections.count + 1)
                            try selector.register(
                                stream.fileDescriptor, token: token, interest: .readable)
                            connections[token] = stream
                        }
                        selector.drainHook?.drained(listener.fileDescriptor, .readable)
                    }
                }
                #expect(connections.count == 3)
                _ = clients
            }
        }
    }
}

/// The README snippet verbatim: compiled here, never run (it serves forever on port 8080).
func readmeSnippet() throws {
    let listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:8080"))
    let selector = try DefaultSelector()  // or PollSelector(): same edge-triggered semantics
    try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
    var connections: [Token: TCPStream] = [:]
    var events = Events(capacity: 256)
    while true {
        try selector.select(into: &events, timeout: nil)
        for event in events where event.token == 0 {
            // Edge-triggered: one event, so accept until the backlog is empty.
            while case .processed(let (stream, peer)) = try listener.accept() {
                let token = Token(connections.count + 1)
                try selector.register(stream.fileDescriptor, token: token, interest: .readable)
                connections[token] = stream  // closed when dropped, or by stream.close()
                print("accepted", peer)
            }
            // Would block: a backend that emulates edges (poll) watches the listener again.
            selector.drainHook?.drained(listener.fileDescriptor, .readable)
        }
    }
}
