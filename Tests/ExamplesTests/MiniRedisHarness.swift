import Foundation
import Glibc
import TestSupport
import Testing

// Helpers for the mini-redis tests: the server and redis-cli / redis-benchmark as child
// processes, a raw RESP client on a blocking socket, and a descriptor tracker. Names start
// with "Redis" because other examples' tests share this target.

/// Test set-up failures.
enum RedisTestError: Error {
    /// The server's first line was not "mini-redis listening on …".
    case badBanner(String)
}

/// A finished child process: exit status and everything it wrote.
struct RedisToolResult {
    /// Exit status (nil if it died of a signal or was killed).
    var status: Int32?
    /// Standard output.
    var output: String
    /// Standard error.
    var errorOutput: String
}

/// Runs `executable` with `arguments` to completion (killed after `timeout`).
func redisRunTool(
    _ executable: String, _ arguments: [String], tracker: DescriptorTracker,
    timeout: Duration = .seconds(60)
) throws -> RedisToolResult {
    let process = Process()
    let output = Pipe()
    let errors = Pipe()
    for handle in [
        output.fileHandleForReading, output.fileHandleForWriting, errors.fileHandleForReading,
        errors.fileHandleForWriting,
    ] {
        tracker.note(handle.fileDescriptor)
    }
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try? output.fileHandleForWriting.close()
    try? errors.fileHandleForWriting.close()
    // Read stderr on another thread so neither pipe can fill up and stall the child.
    let errorBox = RedisDataBox()
    let errorReader = Thread {
        errorBox.data = errors.fileHandleForReading.readDataToEndOfFile()
        errorBox.done.signal()
    }
    errorReader.start()
    let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, 9) } }
    DispatchQueue.global().asyncAfter(
        deadline: .now() + .seconds(Int(timeout.components.seconds)), execute: killer)
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    errorBox.done.wait()
    try? output.fileHandleForReading.close()
    try? errors.fileHandleForReading.close()
    return RedisToolResult(
        status: process.terminationReason == .exit ? process.terminationStatus : nil,
        output: String(decoding: data, as: UTF8.self),
        errorOutput: String(decoding: errorBox.data, as: UTF8.self))
}

/// Data handed from a reader thread.
final class RedisDataBox: @unchecked Sendable {
    // Invariant: `data` is written before `done` is signalled and read only after waiting.
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

/// The mini-redis binary as a child process on a kernel-chosen port.
final class RedisTestServer {
    /// The process.
    let process = Process()
    /// The port it listens on.
    private(set) var port: UInt16 = 0
    private let output = Pipe()

    /// The built mini-redis, next to the test bundle.
    static var executable: String { get throws { try siblingExecutable("mini-redis") } }

    /// Starts the server with `arguments` (plus `--port 0`) and reads where it listens.
    init(_ arguments: [String] = [], tracker: DescriptorTracker) throws {
        tracker.note(output.fileHandleForReading.fileDescriptor)
        tracker.note(output.fileHandleForWriting.fileDescriptor)
        process.executableURL = URL(fileURLWithPath: try Self.executable)
        process.arguments = ["--port", "0"] + arguments
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? output.fileHandleForWriting.close()
        // "mini-redis listening on 127.0.0.1:PORT (epoll)"
        var line: [UInt8] = []
        var byte: UInt8 = 0
        let fd = output.fileHandleForReading.fileDescriptor
        while read(fd, &byte, 1) == 1 && byte != 10 { line.append(byte) }
        let first = String(decoding: line, as: UTF8.self)
        guard let port = listeningPort(in: first, name: "mini-redis") else {
            _ = stop(signal: SIGKILL)
            throw RedisTestError.badBanner(first)
        }
        self.port = port
    }

    /// The process id.
    var pid: Int32 { process.processIdentifier }

    /// Whether it still runs.
    var isRunning: Bool { process.isRunning }

    /// Resident set size in KiB (VmRSS), 0 if unreadable.
    var residentKiB: Int { TestSupport.residentKiB(pid: pid) ?? 0 }

    /// Sends `signal` and waits (SIGKILL after 10 s); the exit status, nil if killed.
    func stop(signal: Int32 = SIGTERM) -> Int32? {
        if process.isRunning { kill(pid, signal) }
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        var killed = false
        if process.isRunning {
            kill(pid, SIGKILL)
            killed = true
        }
        process.waitUntilExit()
        try? output.fileHandleForReading.close()
        guard !killed, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }
}

/// One RESP2 reply.
indirect enum RedisReply: Equatable, CustomStringConvertible {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RedisReply]?)
    /// The connection ended (EOF or reset) before a whole reply arrived.
    case closed
    /// Nothing (more) arrived in time.
    case timeout

    /// A bulk reply holding `text`.
    static func bulk(_ text: String) -> RedisReply { .bulk(Array(text.utf8)) }

    var description: String {
        switch self {
        case .status(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(nil): "(nil)"
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self).debugDescription
        case .array(nil): "(nil array)"
        case .array(let items?): "[\(items.map(\.description).joined(separator: ", "))]"
        case .closed: "(closed)"
        case .timeout: "(timeout)"
        }
    }
}

/// A RESP client on a blocking socket with a receive timeout, for exact wire-level checks.
final class RedisRawClient {
    /// The socket.
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false

    /// Connects to 127.0.0.1:`port`.
    init(port: UInt16, tracker: DescriptorTracker, timeout: Int = 10) throws {
        fd = try connectBlockingLoopback(port: port, timeout: .seconds(timeout))
        tracker.note(fd)
    }

    /// Sends all of `bytes`; false if the peer is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    /// Sends the UTF-8 of `text`.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Sends one command as a RESP array of bulk strings.
    @discardableResult
    func command(_ words: String...) -> Bool { send(Self.encode(words)) }

    /// A command as a RESP array of bulk strings.
    static func encode(_ words: [String]) -> [UInt8] {
        var out = Array("*\(words.count)\r\n".utf8)
        for word in words {
            out += Array("$\(word.utf8.count)\r\n".utf8) + Array(word.utf8) + [13, 10]
        }
        return out
    }

    /// The next reply.
    func reply() -> RedisReply {
        guard let line = readLine() else { return ended ? .closed : .timeout }
        guard let type = line.first else { return .error("empty line") }
        let text = String(decoding: line.dropFirst(), as: UTF8.self)
        switch type {
        case UInt8(ascii: "+"): return .status(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"): return Int64(text).map(RedisReply.integer) ?? .error("bad int")
        case UInt8(ascii: "$"):
            guard let length = Int(text) else { return .error("bad bulk length \(text)") }
            if length < 0 { return .bulk(nil) }
            guard let bytes = readExactly(length + 2) else { return ended ? .closed : .timeout }
            return .bulk(Array(bytes.prefix(length)))
        case UInt8(ascii: "*"):
            guard let count = Int(text) else { return .error("bad array length \(text)") }
            if count < 0 { return .array(nil) }
            var items: [RedisReply] = []
            for _ in 0..<count {
                let item = reply()
                if item == .closed || item == .timeout { return item }
                items.append(item)
            }
            return .array(items)
        default:
            return .error("unexpected reply type \(type)")
        }
    }

    /// Reads until the peer closes; true if it did (false on timeout).
    func waitForClose() -> Bool {
        while !ended {
            if !fill() && !ended { return false }
        }
        return true
    }

    /// Closes the socket.
    func close() { Glibc.close(fd) }

    private func readLine() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 10) {
                var end = newline
                if end > start && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[start..<end])
                consume(newline + 1 - start)
                return line
            }
            guard fill() else { return nil }
        }
    }

    private func readExactly(_ count: Int) -> [UInt8]? {
        while buffer.count - start < count {
            guard fill() else { return nil }
        }
        let bytes = Array(buffer[start..<(start + count)])
        consume(count)
        return bytes
    }

    private func consume(_ count: Int) {
        start += count
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
    }

    /// One recv; false on EOF, error or timeout (`ended` tells which).
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
                return true
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
            ended = true
            return false
        }
    }
}
