import Net
import SysCalls

/// The remote end of a test connection: sends what a client would, collects what the code
/// under test wrote, and ends the connection the ways a client can (EOF, reset, close).
///
/// It never blocks: `send` writes what the socket takes now and `receive` returns what has
/// arrived. `ConnectionHarness` pairs each call with the loop turns that let the other side
/// react.
public final class TestPeer {
    /// The peer's socket (loopback TCP).
    public let stream: TCPStream
    /// True once `receive()` read the end of the stream (the other side closed or shut down
    /// its output).
    public private(set) var sawEndOfStream = false
    /// The error `receive()` met (e.g. ECONNRESET), if any.
    public private(set) var receiveError: Errno?

    init(_ stream: TCPStream) { self.stream = stream }

    deinit { try? close() }

    /// Writes as much of `bytes` as the socket takes now; returns how many it took.
    @discardableResult
    public func send(_ bytes: some Collection<UInt8>) throws(Errno) -> Int {
        let array = Array(bytes)
        if array.isEmpty { return 0 }
        switch try stream.write(array) {
        case .processed(let count): return count
        case .wouldBlock: return 0
        }
    }

    /// Everything that has arrived and was not yet received (empty if nothing did). Notes the
    /// end of the stream in `sawEndOfStream` and an error in `receiveError`.
    public func receive() throws(Errno) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while !stream.isClosed {
            let result: IOResult<Int>
            do {
                result = try stream.read(into: &chunk)
            } catch {
                receiveError = error
                break
            }
            switch result {
            case .wouldBlock: return received
            case .processed(0):
                sawEndOfStream = true
                return received
            case .processed(let count): received += chunk[..<count]
            }
        }
        return received
    }

    /// Shuts down the peer's sending side: the other side reads EOF.
    public func sendEndOfStream() throws(Errno) { try stream.shutdown(.write) }

    /// Resets the connection (SO_LINGER 0, then close): the other side's next read or write
    /// fails with ECONNRESET or EPIPE. The peer is closed afterwards.
    public func reset() throws(Errno) {
        try stream.setLinger(.zero)
        try stream.close()
    }

    /// Closes the peer's socket (an orderly FIN); idempotent.
    public func close() throws(Errno) {
        if !stream.isClosed { try stream.close() }
    }
}
