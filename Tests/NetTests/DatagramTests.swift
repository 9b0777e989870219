import Net
import Selector
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Datagram specifics: truncation, multicast, broadcast.
    @Suite("Datagrams")
    struct DatagramTests {
        @Test("a UDP datagram larger than the buffer is reported truncated", arguments: Backend.all)
        func udpTruncation(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                let receiver = try UDPSocket(binding: .v4(.loopback, port: 0))
                let sender = try UDPSocket(binding: .v4(.loopback, port: 0))
                try truncationScenario(
                    type, receiver: receiver, sender: sender, to: try receiver.localAddress,
                    senderAddress: try sender.localAddress)
                try receiver.close()
                try sender.close()
            }
        }

        @Test(
            "a Unix datagram larger than the buffer is reported truncated", arguments: Backend.all)
        func unixTruncation(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                let (receiver, sender) = try UnixDatagram.pair()
                try truncationScenario(
                    type, receiver: receiver, sender: sender, to: nil, senderAddress: .unixUnnamed)
            }
        }

        func truncationScenario<S: EventSelector>(
            _ type: S.Type, receiver: any DatagramSocket, sender: any DatagramSocket,
            to address: SocketAddress?, senderAddress: SocketAddress
        ) throws {
            let selector = try S()
            defer { selector.close() }
            try selector.register(receiver.fileDescriptor, token: 0, interest: .readable)
            let big = pattern(1000)
            let small = pattern(10, seed: 7)
            for message in [big, small] {
                let sent =
                    try address.map { try sender.send(message, to: $0) } ?? sender.send(message)
                #expect(sent == .processed(message.count))
            }
            var buffer = [UInt8](repeating: 0, count: 100)
            var received: [(Datagram, [UInt8])] = []
            try loop(selector, "truncation over \(S.backendName)") { _ in
                while case .processed(let datagram) = try receiver.receive(into: &buffer) {
                    received.append((datagram, Array(buffer[..<datagram.count])))
                }
                return received.count >= 2
            }
            try #require(received.count == 2)
            let (first, firstBytes) = received[0]
            #expect(first.isTruncated)
            #expect(first.count == 100)
            #expect(first.length == 1000)
            #expect(first.sender == senderAddress)
            #expect(firstBytes == Array(big.prefix(100)))
            // The tail of a truncated datagram is gone; the next one arrives whole.
            let (second, secondBytes) = received[1]
            #expect(!second.isTruncated)
            #expect(second.length == 10)
            #expect(secondBytes == small)
        }

        @Test("IPv4 multicast joined on the loopback interface delivers, and leave works")
        func multicastOnLoopback() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let selector = try EpollSelector()
                defer { selector.close() }
                let lo = try NetworkInterface.index(named: "lo")
                let group = IPv4Address(239, 255, 77, 1)
                let receiver = try UDPSocket(binding: .v4(.any, port: 0), reuseAddress: true)
                let port = try receiver.localAddress.port!
                try receiver.joinMulticastGroup(group, interfaceIndex: lo)
                let sender = try UDPSocket(binding: .v4(.loopback, port: 0))
                try sender.setMulticastInterface(lo)
                try sender.setMulticastLoop(true)
                try sender.setMulticastTTL(1)
                try selector.register(receiver.fileDescriptor, token: 0, interest: .readable)
                let message = Array("to the group".utf8)
                #expect(try sender.send(message, to: .v4(group, port: port)) == .processed(12))
                var buffer = [UInt8](repeating: 0, count: 64)
                var got: Datagram?
                try loop(selector, "multicast datagram") { _ in
                    if case .processed(let datagram) = try receiver.receive(into: &buffer) {
                        got = datagram
                    }
                    return got != nil
                }
                #expect(got?.sender == (try sender.localAddress))
                #expect(Array(buffer[..<(got?.count ?? 0)]) == message)
                try receiver.leaveMulticastGroup(group, interfaceIndex: lo)
                // Leaving twice: the kernel says the membership is gone.
                #expect(throws: Errno.EADDRNOTAVAIL) {
                    try receiver.leaveMulticastGroup(group, interfaceIndex: lo)
                }
                try receiver.close()
                try sender.close()
            }
        }

        @Test("IPv6 multicast join and leave on the loopback interface")
        func multicastV6Membership() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let lo = try NetworkInterface.index(named: "lo")
                let socket = try UDPSocket(binding: .v6(.any, port: 0))
                let group = IPv6Address("ff02::1:3")!
                try socket.joinMulticastGroup(group, interfaceIndex: lo)
                try socket.leaveMulticastGroup(group, interfaceIndex: lo)
                try socket.close()
            }
        }

        @Test("an unknown interface name is ENODEV")
        func unknownInterface() {
            #expect(throws: Errno(19)) { try NetworkInterface.index(named: "no-such-if0") }
        }

        @Test("the broadcast option can be set and read back")
        func broadcastOption() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let socket = try UDPSocket(binding: .v4(.any, port: 0))
                #expect(try socket.broadcast() == false)
                try socket.setBroadcast(true)
                #expect(try socket.broadcast() == true)
                // Without SO_BROADCAST the kernel refuses a broadcast destination (EACCES).
                try socket.setBroadcast(false)
                #expect(throws: Errno.EACCES) {
                    try socket.send([1], to: .v4(.broadcast, port: 9))
                }
                try socket.close()
            }
        }
    }
}
