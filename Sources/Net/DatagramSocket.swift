import CSysCalls
import SysCalls

/// What one `receive` got: how many bytes landed in the buffer, how long the datagram really
/// was, and who sent it.
public struct Datagram: Hashable, Sendable {
    /// Bytes copied into the buffer.
    public var count: Int
    /// The datagram's full length; larger than `count` when it was truncated.
    public var length: Int
    /// The sender (`.unixUnnamed` for an unbound Unix sender).
    public var sender: SocketAddress

    /// True when the datagram did not fit and its tail was discarded.
    public var isTruncated: Bool { length > count }

    /// Describes a received datagram.
    public init(count: Int, length: Int, sender: SocketAddress) {
        self.count = count
        self.length = length
        self.sender = sender
    }
}

/// A message-oriented socket (UDP or Unix datagram): send to an address or to the connected
/// peer, receive with the sender and truncation reported.
///
/// ```swift
/// _ = try socket.send(Array("ping".utf8), to: peer)
/// var buffer = [UInt8](repeating: 0, count: 1500)
/// if case .processed(let datagram) = try socket.receive(into: &buffer) {
///     print(datagram.sender, datagram.count, datagram.isTruncated)
/// }
/// ```
public protocol DatagramSocket: Socket {}

extension DatagramSocket {
    /// Sets the default destination and filters incoming datagrams to those from `address`.
    public func connect(to address: SocketAddress) throws(NetError) {
        do {
            _ = try address.withSockaddr("connect") { (raw) throws(Errno) in
                try Sys.connect(fileDescriptor, raw)
            }
        } catch {
            throw NetError(error, address: address)
        }
    }

    /// Sends one datagram to `address`; `.wouldBlock` when the send buffer is full.
    public func send(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress) throws(Errno)
        -> IOResult<Int>
    {
        try address.withSockaddr("sendto") { (raw) throws(Errno) -> IOResult<Int> in
            try Sys.sendto(fileDescriptor, buffer, to: raw)
        }
    }

    /// Sends `bytes` as one datagram to `address`.
    public func send(_ bytes: [UInt8], to address: SocketAddress) throws(Errno) -> IOResult<Int> {
        try bytes.withBytes { (raw) throws(Errno) -> IOResult<Int> in
            try self.send(raw, to: address)
        }
    }

    /// Sends one datagram to the connected peer.
    public func send(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try Sys.send(fileDescriptor, buffer)
    }

    /// Sends `bytes` as one datagram to the connected peer.
    public func send(_ bytes: [UInt8]) throws(Errno) -> IOResult<Int> {
        try bytes.withBytes { (raw) throws(Errno) -> IOResult<Int> in
            try Sys.send(fileDescriptor, raw)
        }
    }

    /// Receives one datagram into `buffer`. A datagram longer than the buffer is truncated
    /// (the rest is lost) and reported through `Datagram.isTruncated`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno)
        -> IOResult<Datagram>
    {
        var storage = sockaddr_storage()
        var vector = IOVector(buffer)
        var message = msghdr()
        let result = try withUnsafeMutablePointer(to: &storage) {
            (name) throws(Errno) -> IOResult<Int> in
            try withUnsafeMutablePointer(to: &vector) { (iov) throws(Errno) -> IOResult<Int> in
                message.msg_name = UnsafeMutableRawPointer(name)
                message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                message.msg_iov = iov
                message.msg_iovlen = 1
                // MSG_TRUNC as an input flag makes recvmsg return the datagram's full length.
                return try Sys.recvmsg(fileDescriptor, &message, flags: Int32(MSG_TRUNC))
            }
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .processed(let length):
            // An unbound Unix sender leaves msg_namelen 0: the decoder reports it unnamed.
            let sender = try SocketAddress(
                storage: storage, length: message.msg_namelen, call: "recvmsg")
            return .processed(
                Datagram(count: min(length, buffer.count), length: length, sender: sender))
        }
    }

    /// Receives one datagram into the start of `bytes` (up to `bytes.count`).
    public func receive(into bytes: inout [UInt8]) throws(Errno) -> IOResult<Datagram> {
        try bytes.withMutableBytes { (raw) throws(Errno) -> IOResult<Datagram> in
            try receive(into: raw)
        }
    }

    /// The connected peer's address (ENOTCONN if not connected).
    public var peerAddress: SocketAddress {
        get throws(Errno) { try SocketSetup.peerAddress(fileDescriptor) }
    }
}
