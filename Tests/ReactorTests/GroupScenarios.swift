import Glibc
import Net
import Reactor
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

/// ReactorGroup with SO_REUSEPORT listeners, as in Examples/EchoServer.
enum GroupScenarios {
    /// Two reactors listen on one port with SO_REUSEPORT; 64 clients each echo a message.
    /// Both reactors accept some; stopping the group with the clients still connected closes
    /// every server connection (the clients read EOF) and returns.
    static func twoReactorsShareThePort<S: EventSelector>(_: S.Type) throws {
        let count = 64
        let log = ServerLog()
        let port = SharedPort()
        let group = try ReactorGroup<S>(threads: 2) { reactor, index in
            try setUp(reactor, index: index, log: log, port: port)
        }
        var stopped = false
        defer { if !stopped { group.stop() } }
        let serverPort = UInt16(port.value.load(ordering: .acquiring))
        #expect(serverPort != 0)
        DescriptorLeaks.own(port: serverPort)

        var clients: [TCPStream] = []
        for index in 0..<count {
            let client = try connectClient(port: serverPort)
            try roundTrip(client, Array("hello from client \(index)".utf8))
            clients.append(client)
        }
        let perReactor = log.acceptsPerReactor
        #expect(perReactor.values.reduce(0, +) == count)
        #expect(perReactor[0, default: 0] > 0, "reactor 0 served nothing: \(perReactor)")
        #expect(perReactor[1, default: 0] > 0, "reactor 1 served nothing: \(perReactor)")

        group.stop()
        stopped = true
        for (index, client) in clients.enumerated() {
            var rest: [UInt8] = []
            let ending = try readUntilEnd(client, into: &rest, timeout: .seconds(2))
            #expect(ending != nil && rest.isEmpty, "client \(index): \(String(describing: ending))")
            try client.close()
        }
        let reasons = log.closeReasons
        #expect(reasons.count == count)
        #expect(reasons.allSatisfy { $0 == .aborted })
    }

    /// One reactor's share: a SO_REUSEPORT listener on the group's port and an echo acceptor
    /// that notes its reactor's index.
    private static func setUp<S: EventSelector>(
        _ reactor: Reactor<S>, index: Int, log: ServerLog, port: SharedPort
    ) throws {
        let address = SocketAddress.v4(
            .loopback, port: UInt16(port.value.load(ordering: .acquiring)))
        let listener = try TCPListener(binding: address, reusePort: true)
        if index == 0 {
            port.value.store(Int(try listener.localAddress.port ?? 0), ordering: .releasing)
        }
        let echo = RecordingEcho<S>(log: log)
        let acceptor = Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
            log.accepted.add(1, ordering: .relaxed)
            log.acceptedBy(index)
            try? Connection(socket: stream, reactor: reactor, delegate: echo).start()
        }
        try acceptor.start()
    }
}

/// The port reactor 0 bound, for the reactors set up after it.
final class SharedPort: Sendable {
    let value = Atomic<Int>(0)
}
