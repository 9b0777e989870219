import Glibc
import Net
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// The spare descriptor servers free at the descriptor limit to turn clients away.
    @Suite("DescriptorReserve")
    struct DescriptorReserveTests {
        @Test("turnAwayOne accepts and closes one queued client and takes the spare back")
        func turnsOneClientAway() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try TCPListener(binding: .v4(.loopback, port: 0))
                // (#expect cannot look into a ~Copyable value: results go through locals.)
                var reserve = DescriptorReserve()
                let heldAtFirst = reserve.isHeld
                #expect(heldAtFirst)
                let nobodyQueued = reserve.turnAwayOne(from: listener)
                #expect(nobodyQueued == .queueEmpty)
                let client = try TCPStream.connect(to: try listener.localAddress)
                // The connection is queued once the handshake is done.
                var outcome = DescriptorReserve.Outcome.queueEmpty
                let deadline = ContinuousClock.now + .seconds(5)
                while outcome == .queueEmpty && ContinuousClock.now < deadline {
                    outcome = reserve.turnAwayOne(from: listener)
                    if outcome == .queueEmpty { usleep(1000) }
                }
                #expect(outcome == .turnedAway)
                let count = reserve.turnedAwayCount
                #expect(count == 1)
                let heldAgain = reserve.isHeld
                #expect(heldAgain)
                var entry = pollfd(
                    fd: client.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
                #expect(poll(&entry, 1, 5000) == 1)
                var buffer = [UInt8](repeating: 0, count: 8)
                #expect(try client.read(into: &buffer) == .processed(0), "the client sees EOF")
                let queueNowEmpty = reserve.turnAwayOne(from: listener)
                #expect(queueNowEmpty == .queueEmpty)
                reserve.close()
                let heldAfterClose = reserve.isHeld
                #expect(!heldAfterClose)
                try client.close()
                try listener.close()
            }
        }
    }
}
