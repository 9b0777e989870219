import Glibc
import Net
import SysCalls
import TestSupport

// The client side of the Reactor integration suite: blocking loopback clients (poll with
// timeouts over non-blocking TCPStreams) and a pseudo-random byte pattern.

// MARK: - Blocking clients

/// How a stream ended.
enum StreamEnding: Equatable {
    /// An orderly end of file.
    case endOfFile
    /// ECONNRESET (or EPIPE).
    case reset
}

/// Waits up to `timeout` for `events` (POLLIN, POLLOUT) on `fd`; returns revents, 0 on timeout.
func waitFor(_ fd: FileDescriptor, _ events: Int32, timeout: Duration) -> Int32 {
    var entry = Sys.PollFD(fd: fd.rawValue, events: Int16(events), revents: 0)
    let ready = withUnsafeMutablePointer(to: &entry) { pointer in
        (try? Sys.poll(
            UnsafeMutableBufferPointer(start: pointer, count: 1),
            timeoutMilliseconds: Sys.milliseconds(timeout))) ?? 0
    }
    return ready > 0 ? Int32(entry.revents) : 0
}

/// Connects to 127.0.0.1:`port` and waits (up to five seconds) until the connection is up.
func connectClient(port: UInt16) throws -> TCPStream {
    let stream = try TCPStream.connect(to: .v4(.loopback, port: port))
    guard waitFor(stream.fileDescriptor, POLLOUT, timeout: .seconds(5)) != 0 else {
        throw TestFailure("connect to port \(port) did not finish within 5 s")
    }
    if let error = try stream.takeError() { throw error }
    return stream
}

/// Sends all of `bytes`, waiting for room as needed (up to `timeout` in all).
func sendAll(_ stream: TCPStream, _ bytes: [UInt8], timeout: Duration = .seconds(5)) throws {
    let deadline = ContinuousClock.now + timeout
    var sent = 0
    while sent < bytes.count {
        let result = try bytes.withUnsafeBytes { (raw) throws(Errno) in
            try stream.write(UnsafeRawBufferPointer(rebasing: raw[sent...]))
        }
        switch result {
        case .processed(let count): sent += count
        case .wouldBlock:
            guard ContinuousClock.now < deadline else {
                throw TestFailure("send stalled after \(sent) of \(bytes.count) bytes")
            }
            _ = waitFor(stream.fileDescriptor, POLLOUT, timeout: .milliseconds(100))
        }
    }
}

/// Reads exactly `count` bytes (up to `timeout`); throws on end of file or timeout.
func receive(_ stream: TCPStream, count: Int, timeout: Duration = .seconds(5)) throws -> [UInt8] {
    var received: [UInt8] = []
    let ending = try readUntilEnd(stream, into: &received, limit: count, timeout: timeout)
    guard received.count == count else {
        throw TestFailure(
            "got \(received.count) of \(count) bytes, then \(String(describing: ending))")
    }
    return received
}

/// One read into `buffer`; nil when the connection was reset (ECONNRESET or EPIPE).
func readOnce(_ stream: TCPStream, _ buffer: UnsafeMutableRawBufferPointer) throws
    -> IOResult<Int>?
{
    do {
        return try stream.read(into: buffer)
    } catch let error {
        guard error == .ECONNRESET || error == .EPIPE else { throw error }
        return nil
    }
}

/// Reads into `received` until end of file, a reset, `limit` bytes in all, or `timeout`
/// (which throws). Returns how the stream ended, or nil when `limit` was reached.
@discardableResult
func readUntilEnd(
    _ stream: TCPStream, into received: inout [UInt8], limit: Int = .max,
    timeout: Duration = .seconds(5)
) throws -> StreamEnding? {
    let deadline = ContinuousClock.now + timeout
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    defer { buffer.deallocate() }
    while received.count < limit {
        let room = min(buffer.count, limit - received.count)
        switch try readOnce(stream, UnsafeMutableRawBufferPointer(rebasing: buffer[..<room])) {
        case nil: return .reset
        case .processed(0)?: return .endOfFile
        case .processed(let count)?: received.append(contentsOf: buffer[..<count])
        case .wouldBlock?:
            guard ContinuousClock.now < deadline else {
                throw TestFailure(
                    "no end of file within \(timeout) (\(received.count) bytes read)")
            }
            _ = waitFor(stream.fileDescriptor, POLLIN, timeout: .milliseconds(100))
        }
    }
    return nil
}

/// Sends `message` and checks the same bytes come back.
func roundTrip(_ stream: TCPStream, _ message: [UInt8], timeout: Duration = .seconds(5)) throws {
    try sendAll(stream, message, timeout: timeout)
    let echoed = try receive(stream, count: message.count, timeout: timeout)
    guard echoed == message else { throw TestFailure("echo differs from what was sent") }
}

// MARK: - Test data

/// A fixed pseudo-random byte stream: position p holds `pool[p % size]`. The size is prime,
/// so chunk boundaries never line up with the period.
enum Pattern {
    static let size = 1_048_573
    static let pool: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: size + 8)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset + 8 <= raw.count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                raw.storeBytes(of: state, toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
        }
        return Array(bytes[..<size])
    }()

    /// Calls `body` with the contiguous run of the stream that starts at `position`
    /// (at most `maxCount` bytes).
    static func withChunk<R>(
        at position: Int, maxCount: Int, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        let start = position % size
        let count = min(maxCount, size - start)
        return try pool.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + count)]))
        }
    }

    /// Whether `data` equals the stream's bytes from `position` on.
    static func matches(_ data: UnsafeRawBufferPointer, at position: Int) -> Bool {
        var done = 0
        while done < data.count {
            let equal = withChunk(at: position + done, maxCount: data.count - done) { chunk in
                memcmp(chunk.baseAddress!, data.baseAddress! + done, chunk.count) == 0
                    ? chunk.count : -1
            }
            if equal < 0 { return false }
            done += equal
        }
        return true
    }

    /// `count` bytes of the stream from `position` on.
    static func bytes(at position: Int, count: Int) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            withChunk(at: position + result.count, maxCount: count - result.count) {
                result.append(contentsOf: $0)
            }
        }
        return result
    }
}
