import Foundation
import Glibc
import Net
import SysCalls
import TestSupport
import Testing

/// The chat-server example (Selector + Net, no Reactor), driven as a child process by real
/// TCP clients: Swift sockets, `nc` and `socat`. Serialized: several tests load the machine.
@Suite("ChatServer", .serialized, .opensDescriptors)
struct ChatServerTests {
    /// Starts a server with `arguments`, runs `body`, then stops it with SIGTERM and checks it
    /// exited 0 and that every descriptor the test opened is closed.
    func withServer(
        _ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (ChatTestServer, DescriptorTracker) throws -> Void
    ) throws {
        try Backend.cancelIfUnavailable(arguments: arguments)
        let tracker = DescriptorTracker()
        let server = try ChatTestServer(arguments, tracker: tracker)
        var failure: (any Error)?
        do { try body(server, tracker) } catch { failure = error }
        let status = server.stop()
        #expect(status == 0, "chat-server exit status", sourceLocation: sourceLocation)
        tracker.expectAllClosed(sourceLocation: sourceLocation)
        if let failure { throw failure }
    }

    @Test(
        "a line reaches every other client, not its sender; joins and leaves are announced",
        arguments: ["epoll", "poll", "uring"])
    func broadcastAndNotices(backend: String) throws {
        try withServer(["--backend", backend]) { server, tracker in
            let alice = try server.connect(tracker: tracker)
            let bob = try server.connect(tracker: tracker)
            alice.expect("* \(bob.id) joined")
            let carol = try server.connect(tracker: tracker)
            alice.expect("* \(carol.id) joined")
            bob.expect("* \(carol.id) joined")

            try alice.send("hello, room\n")
            bob.expect("\(alice.id): hello, room")
            carol.expect("\(alice.id): hello, room")
            // Alice's next line is Bob's message: her own never came back to her.
            try bob.send("hi alice\n")
            #expect(alice.next().text == "\(bob.id): hi alice")

            carol.close()
            alice.expect("* \(carol.id) left")
            bob.expect("* \(carol.id) left")
            alice.close()
            bob.expect("* \(alice.id) left")
            bob.close()
        }
    }

    @Test("nc and socat clients chat with each other and with a Swift client")
    func netcatAndSocat() throws {
        try withServer { server, tracker in
            let watcher = try server.connect(tracker: tracker)
            let port = "\(server.port)"
            let nc = try ChatChildProcess(
                "/usr/bin/nc", ["-N", "127.0.0.1", port], tracker: tracker)
            guard let ncWelcome = nc.reader.next().text, ncWelcome.hasPrefix("* you are ") else {
                Issue.record("nc got no welcome")
                nc.stop()
                return
            }
            let ncID = String(ncWelcome.dropFirst("* you are ".count))
            watcher.expect("* \(ncID) joined")
            let socat = try ChatChildProcess(
                "/usr/bin/socat", ["-", "TCP:127.0.0.1:\(port)"], tracker: tracker)
            guard let socatWelcome = socat.reader.next().text,
                socatWelcome.hasPrefix("* you are ")
            else {
                Issue.record("socat got no welcome")
                nc.stop()
                socat.stop()
                return
            }
            let socatID = String(socatWelcome.dropFirst("* you are ".count))
            nc.expect("* \(socatID) joined")

            nc.send("hello from nc\n")
            socat.expect("\(ncID): hello from nc")
            watcher.expect("\(ncID): hello from nc")
            socat.send("hello from socat\n")
            nc.expect("\(socatID): hello from socat")
            watcher.expect("\(socatID): hello from socat")
            try watcher.send("hello from swift\n")
            nc.expect("\(watcher.id): hello from swift")
            socat.expect("\(watcher.id): hello from swift")

            // socat ends on end of input: its departure is announced.
            socat.closeInput()
            nc.expect("* \(socatID) left")
            watcher.expect("* \(socatID) left")
            #expect(socat.waitForExit(timeout: .seconds(10)))
            socat.stop()
            // nc -N likewise shuts the connection down at end of input. (Children of the test
            // process inherit a mask that blocks SIGTERM, so ending them by signal would not
            // work.)
            nc.closeInput()
            watcher.expect("* \(ncID) left")
            #expect(nc.waitForExit(timeout: .seconds(10)))
            nc.stop()
            watcher.close()
        }
    }

    @Test(
        "a line split across reads is delivered once, whole", arguments: ["epoll", "poll", "uring"])
    func splitLinesReassemble(backend: String) throws {
        try withServer(["--backend", backend]) { server, tracker in
            let sender = try server.connect(tracker: tracker)
            let receiver = try server.connect(tracker: tracker)
            sender.expect("* \(receiver.id) joined")
            try sender.send("hel")
            usleep(200_000)
            try sender.send("lo\nsecond ")
            usleep(100_000)
            try sender.send("line\n")
            #expect(receiver.next().text == "\(sender.id): hello")
            #expect(receiver.next().text == "\(sender.id): second line")
            // End of file ends an unterminated last line.
            try sender.send("tail")
            try sender.stream.shutdown(.write)
            #expect(receiver.next().text == "\(sender.id): tail")
            #expect(receiver.next().text == "* \(sender.id) left")
            sender.close()
            receiver.close()
        }
    }

    @Test(
        "a client that never reads is disconnected and the server's memory stays bounded",
        arguments: ["epoll", "poll", "uring"])
    func slowClientIsDisconnected(backend: String) throws {
        try withServer(["--backend", backend]) { server, tracker in
            let slow = try server.connect(tracker: tracker, receiveBuffer: 4096)
            let reader = try server.connect(tracker: tracker, receiveBuffer: 1 << 20)
            let flooder = try server.connect(tracker: tracker)
            try flooder.stream.setSendBufferSize(128 << 10)  // keeps bursts short
            reader.expect("* \(flooder.id) joined")
            let baseline = server.residentKiB

            // 48 MiB of 16 KiB lines: an unbounded backlog would cost the server that much.
            // The reader reads on its own thread, so only the slow client falls behind.
            let collector = try ChatLineCollector(peer: reader, until: "\(flooder.id): done")
            let line = Array(repeating: UInt8(ascii: "x"), count: 16383) + [10]
            let chunk = Array([[UInt8]](repeating: line, count: 8).joined())
            var peak = baseline
            for round in 0..<384 {
                try flooder.send(chunk)
                flooder.reader.drain()
                // Paced so the reader stays within 512 KiB of the flood even on a busy
                // machine: only the slow client may fall behind.
                collector.waitUntilReceived(8 * (round + 1) - 32)
                if round % 16 == 0 { peak = max(peak, server.residentKiB) }
            }
            try flooder.send("done\n")
            let (notices, sawDone) = collector.finish()
            peak = max(peak, server.residentKiB)
            #expect(sawDone, "the reading client kept up and got the last line")
            #expect(notices.contains("* \(slow.id) left"), "notices: \(notices)")
            #expect(!notices.contains("* \(reader.id) left"))
            #expect(peak - baseline < 24 * 1024, "RSS grew from \(baseline) KiB to \(peak) KiB")

            // The slow client finds its connection closed (after what the kernel held).
            let drainDeadline = ContinuousClock.now + .seconds(30)
            var last = slow.next()
            while case .line = last, ContinuousClock.now < drainDeadline { last = slow.next() }
            #expect(last == .end, "the slow client was disconnected")
            slow.close()
            reader.close()
            flooder.close()
        }
    }

    @Test(
        "an overlong line earns an error line and a disconnect",
        arguments: ["epoll", "poll", "uring"])
    func overlongLine(backend: String) throws {
        try withServer(["--backend", backend, "--max-line", "1000"]) { server, tracker in
            let talker = try server.connect(tracker: tracker)
            let other = try server.connect(tracker: tracker)
            talker.expect("* \(other.id) joined")
            try talker.send(Array(repeating: UInt8(ascii: "a"), count: 1000) + [10])
            #expect(other.next().text == "\(talker.id): " + String(repeating: "a", count: 1000))
            try talker.send(Array(repeating: UInt8(ascii: "b"), count: 3000))
            #expect(talker.next().text == "error: line too long")
            #expect(talker.next() == .end)
            // The overlong line never reached anyone; only the departure did.
            #expect(other.next().text == "* \(talker.id) left")
            talker.close()
            other.close()
        }
        // The default limit is 64 KiB: a 64 KiB line passes, a longer one does not.
        try withServer { server, tracker in
            let talker = try server.connect(tracker: tracker)
            let other = try server.connect(tracker: tracker)
            talker.expect("* \(other.id) joined")
            try talker.send(Array(repeating: UInt8(ascii: "c"), count: 65536) + [10])
            #expect(other.next().text == "\(talker.id): " + String(repeating: "c", count: 65536))
            try talker.send(Array(repeating: UInt8(ascii: "d"), count: 70000) + [10])
            #expect(talker.next().text == "error: line too long")
            #expect(talker.next() == .end)
            #expect(other.next().text == "* \(talker.id) left")
            talker.close()
            other.close()
        }
    }

    @Test("binary garbage, NULs and invalid UTF-8 pass through as bytes")
    func binaryInput() throws {
        try withServer { server, tracker in
            let sender = try server.connect(tracker: tracker)
            let receiver = try server.connect(tracker: tracker)
            sender.expect("* \(receiver.id) joined")
            var random = TestRandom(seed: 0x5eed)
            for _ in 0..<50 {
                let body = random.bytes(Int(random.next() % 2000)).filter { $0 != 10 }
                try sender.send(body + [10])
                #expect(receiver.next() == .line(Array("\(sender.id): ".utf8) + body))
            }
            let special: [UInt8] = [0, 0, 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 13]
            try sender.send(special + [10])
            #expect(receiver.next() == .line(Array("\(sender.id): ".utf8) + special))
            sender.close()
            receiver.close()
        }
    }

    @Test(
        "2000 hostile connections come and go while two clients keep chatting",
        arguments: ["epoll", "poll", "uring"])
    func connectionChurn(backend: String) throws {
        try withServer(["--backend", backend]) { server, tracker in
            let alice = try server.connect(tracker: tracker)
            let bob = try server.connect(tracker: tracker)
            alice.expect("* \(bob.id) joined")
            var random = TestRandom(seed: UInt64(backend.utf8.count) * 7919)
            let baseline = server.residentKiB
            var peak = baseline
            for batch in 0..<20 {
                var hostile: [TCPStream] = []
                for _ in 0..<100 {
                    let stream = try TCPStream.connect(to: .v4(.loopback, port: server.port))
                    tracker.note(stream.fileDescriptor.rawValue)
                    hostile.append(stream)
                }
                for (index, stream) in hostile.enumerated() {
                    _ = chatWaitWritable(stream.fileDescriptor.rawValue, until: .now + .seconds(5))
                    var garbage = random.bytes(Int(random.next() % 600))
                    if index % 3 == 0 { garbage.append(10) }
                    _ = try? stream.write(garbage)
                    if index % 2 == 0 { try? stream.setLinger(.zero) }  // reset, not FIN
                }
                for stream in hostile { try? stream.close() }
                try alice.send("ping \(batch)\n")
                guard bob.expect("\(alice.id): ping \(batch)", timeout: .seconds(30)) else { break }
                alice.reader.drain()
                peak = max(peak, server.residentKiB)
            }
            try bob.send("still here\n")
            alice.expect("\(bob.id): still here", timeout: .seconds(30))
            #expect(peak - baseline < 32 * 1024, "RSS grew from \(baseline) KiB to \(peak) KiB")
            alice.close()
            bob.close()
        }
    }

    @Test("running out of descriptors neither stops the chat nor spins the CPU")
    func descriptorExhaustion() throws {
        try withServer(["--max-open-files", "40"]) { server, tracker in
            let alice = try server.connect(tracker: tracker)
            let bob = try server.connect(tracker: tracker)
            alice.expect("* \(bob.id) joined")
            var crowd: [TCPStream] = []
            for _ in 0..<80 {
                let stream = try TCPStream.connect(to: .v4(.loopback, port: server.port))
                tracker.note(stream.fileDescriptor.rawValue)
                crowd.append(stream)
            }
            usleep(300_000)
            let ticksBefore = server.cpuTicks
            usleep(1_000_000)
            let ticks = server.cpuTicks - ticksBefore
            #expect(ticks < 50, "server used \(ticks) ticks of CPU in 1 s at the descriptor limit")
            try alice.send("over the limit\n")
            bob.expect("\(alice.id): over the limit", timeout: .seconds(20))
            for stream in crowd { try? stream.close() }
            usleep(300_000)
            // With descriptors free again, newcomers are admitted.
            let carol = try server.connect(tracker: tracker)
            try alice.send("welcome back\n")
            carol.expect("\(alice.id): welcome back", timeout: .seconds(20))
            alice.close()
            bob.close()
            carol.close()
        }
    }

    @Test(
        "SIGTERM and SIGINT stop the server with status 0, closing its clients",
        arguments: [SIGTERM, SIGINT])
    func signalsStopCleanly(signal: Int32) throws {
        let tracker = DescriptorTracker()
        let server = try ChatTestServer(tracker: tracker)
        let client = try server.connect(tracker: tracker)
        try client.send("partial line without newline")
        #expect(server.stop(signal: signal) == 0)
        #expect(
            server.reader.next(timeout: .seconds(5)).text
                == "chat-server stopped (signal \(signal))")
        #expect(client.next() == .end)
        client.close()
        tracker.expectAllClosed()
    }
}
