import Foundation
import Glibc
import Net
import SysCalls
import TestSupport
import Testing

// Hostile clients against chat-server (issue 16): the descriptor limit, broadcast floods.
extension ChatServerTests {
    @Test("at the descriptor limit every surplus client is turned away with EOF, promptly")
    func surplusClientsSeeEOF() throws {
        try withServer(["--max-open-files", "64"]) { server, tracker in
            var readers: [ChatLineReader] = []
            var streams: [TCPStream] = []
            for _ in 0..<100 {
                let stream = try TCPStream.connect(to: .v4(.loopback, port: server.port))
                tracker.note(stream.fileDescriptor.rawValue)
                streams.append(stream)
                readers.append(ChatLineReader(fd: stream.fileDescriptor.rawValue))
            }
            // Each client is either admitted ("* you are N" first) or turned away (EOF);
            // none may be left hanging in the listen queue.
            let deadline = ContinuousClock.now + .seconds(3)
            var admitted = 0
            var turnedAway = 0
            var hanging = 0
            for index in readers.indices {
                switch readers[index].next(timeout: max(.zero, deadline - .now)) {
                case .line(let bytes) where bytes.starts(with: Array("* you are ".utf8)):
                    admitted += 1
                case .end: turnedAway += 1
                default: hanging += 1
                }
            }
            #expect(hanging == 0, "admitted \(admitted), turned away \(turnedAway)")
            #expect(admitted > 0 && admitted < 64, "admitted \(admitted)")
            #expect(admitted + turnedAway == 100)
            for stream in streams { try? stream.close() }
            // With descriptors free again, newcomers are admitted and served.
            var peers: [ChatTestPeer] = []
            let deadlineToJoin = ContinuousClock.now + .seconds(10)
            while peers.count < 2 && ContinuousClock.now < deadlineToJoin {
                if let peer = try? server.connect(tracker: tracker) {
                    peers.append(peer)
                } else {
                    usleep(50_000)
                }
            }
            try #require(peers.count == 2)
            try peers[0].send("after the crowd\n")
            peers[1].expect("\(peers[0].id): after the crowd")
            for peer in peers { peer.close() }
        }
    }

    /// How long a fresh client waits for its "* you are N" welcome.
    func greetingTime(_ server: ChatTestServer, _ tracker: DescriptorTracker) throws -> Duration {
        let start = ContinuousClock.now
        let peer = try server.connect(tracker: tracker)
        let elapsed = ContinuousClock.now - start
        peer.close()
        return elapsed
    }

    @Test("a flood of short lines to 500 members never keeps a newcomer waiting")
    func broadcastAmplification() throws {
        try ensureOpenFileLimit(2048)
        try withServer { server, tracker in
            var members: [ChatTestPeer] = []
            for _ in 0..<500 { members.append(try server.connect(tracker: tracker)) }
            // 64 KiB of 32,768 one-byte lines, in one write, three times over; the other
            // members do not read (their backlogs stay under the 1 MiB limit).
            let flood = [UInt8](repeating: 0, count: 65_536).indices.map {
                $0 % 2 == 0 ? UInt8(ascii: "x") : UInt8(ascii: "\n")
            }
            var greetings: [Duration] = []
            for _ in 0..<3 {
                try members[0].send(flood)
                greetings.append(try greetingTime(server, tracker))
                usleep(20_000)
            }
            #expect(greetings.allSatisfy { $0 < .milliseconds(100) }, "greeted after \(greetings)")
            // The flood did arrive, in order, at a member that reads.
            let reader = members[1]
            var lines = 0
            while lines < 3 * 32_768, case .line(let bytes) = reader.next(timeout: .seconds(20)) {
                if bytes == Array("\(members[0].id): x".utf8) { lines += 1 }
            }
            #expect(lines == 3 * 32_768)
            for member in members { member.close() }
        }
    }

    @Test("1,000 clients arriving and leaving at once never keep a newcomer waiting")
    func massJoinAndLeave() throws {
        try ensureOpenFileLimit(4096)
        try withServer { server, tracker in
            let watcher = try server.connect(tracker: tracker)
            var crowd: [TCPStream] = []
            for _ in 0..<1000 {
                let stream = try TCPStream.connect(to: .v4(.loopback, port: server.port))
                tracker.note(stream.fileDescriptor.rawValue)
                crowd.append(stream)
            }
            let afterJoins = try greetingTime(server, tracker)
            for stream in crowd { try? stream.close() }
            let afterLeaves = try greetingTime(server, tracker)
            #expect(afterJoins < .milliseconds(100), "greeted \(afterJoins) after 1,000 joins")
            #expect(afterLeaves < .milliseconds(100), "greeted \(afterLeaves) after 1,000 leaves")
            // The watcher hears of every arrival and departure.
            var joined = 0
            var left = 0
            while joined < 1002 || left < 1002,
                case .line(let bytes) = watcher.next(timeout: .seconds(20))
            {
                let text = String(decoding: bytes, as: UTF8.self)
                if text.hasSuffix(" joined") { joined += 1 }
                if text.hasSuffix(" left") { left += 1 }
            }
            #expect(joined == 1002 && left == 1002, "joined \(joined), left \(left)")
            watcher.close()
        }
    }
}
