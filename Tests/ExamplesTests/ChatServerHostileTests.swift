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
}
