import Foundation
import Glibc
import SysCalls
import TestSupport
import Testing

// Helpers for the http-hello tests: the server as a child process, a blocking raw-socket
// HTTP client, external tools (curl, wrk) as child processes, and a tracker proving every
// socket a test opened was closed. Names start with "HTTP" because other examples' tests
// share this target.

/// Sockets a test opened and has not closed yet; shared by the threads of one test.
final class HTTPSocketTracker: @unchecked Sendable {
    // Invariant: `open` is only read or written with `lock` held.
    private let lock = Lock()
    private var open: Set<Int32> = []
    private var failedCloses = 0

    func opened(_ fd: Int32) { lock.withLock { _ = open.insert(fd) } }

    /// Records a close; a failing close(2) means the descriptor was not ours any more.
    func closed(_ fd: Int32, result: Int32) {
        lock.withLock {
            open.remove(fd)
            if result != 0 { failedCloses += 1 }
        }
    }

    /// Records an issue unless every socket was closed exactly once.
    func expectAllClosed(sourceLocation: SourceLocation = #_sourceLocation) {
        DescriptorGate.expectHeld(sourceLocation: sourceLocation)
        let (left, failed) = lock.withLock { (open.count, failedCloses) }
        #expect(left == 0, "sockets left open", sourceLocation: sourceLocation)
        #expect(failed == 0, "close(2) failed", sourceLocation: sourceLocation)
    }
}

/// One HTTP response as read off the wire.
struct HTTPWireResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// The first value of header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// How reading to the end of a connection ended.
enum HTTPStreamEnd: Equatable {
    case endOfFile
    case reset
    case timeout
}

/// A blocking TCP client on loopback with a receive timeout, for byte-exact requests.
final class HTTPRawClient {
    private(set) var fd: Int32 = -1
    private var pending: [UInt8] = []
    private let tracker: HTTPSocketTracker

    /// Connects to 127.0.0.1:`port`; reads time out after `timeout`.
    init(port: UInt16, tracker: HTTPSocketTracker, timeout: Duration = .seconds(5)) throws {
        self.tracker = tracker
        fd = try connectBlockingLoopback(port: port, timeout: timeout)
        tracker.opened(fd)
    }

    deinit { close() }

    /// Sends every byte; false if the connection failed.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Sends the UTF-8 of `text`.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Shuts down the sending side (the server reads EOF).
    func shutdownOutput() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Sets SO_LINGER 0, so `close()` resets the connection.
    func setResetOnClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    /// Reads one response (a HEAD response has no body); nil if the stream ended first.
    func readResponse(toHead: Bool = false) -> HTTPWireResponse? {
        var headEnd: Int?
        while true {
            if let end = Self.find([13, 10, 13, 10], in: pending) {
                headEnd = end
                break
            }
            guard fill() else { return nil }
        }
        guard let headEnd else { return nil }
        let lines = String(decoding: pending[..<headEnd], as: UTF8.self)
            .components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1",
            let status = Int(statusParts[1])
        else { return nil }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append(
                (
                    String(line[..<colon]),
                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                ))
        }
        pending.removeFirst(headEnd + 4)
        var response = HTTPWireResponse(status: status, headers: headers, body: [])
        let length = toHead ? 0 : Int(response.header("Content-Length") ?? "0") ?? 0
        while pending.count < length {
            guard fill() else { return nil }
        }
        response.body = Array(pending[..<length])
        pending.removeFirst(length)
        return response
    }

    /// Reads until the stream ends; returns how, and any bytes that were still unread.
    func readToEnd() -> (HTTPStreamEnd, [UInt8]) {
        while true {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                pending.append(contentsOf: chunk[..<n])
                continue
            }
            let code = errno
            defer { pending = [] }
            if n == 0 { return (.endOfFile, pending) }
            if code == EINTR { continue }
            return (code == EAGAIN || code == EWOULDBLOCK ? .timeout : .reset, pending)
        }
    }

    /// Closes the socket (once).
    func close() {
        guard fd >= 0 else { return }
        let result = Glibc.close(fd)
        tracker.closed(fd, result: result)
        fd = -1
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                pending.append(contentsOf: chunk[..<n])
                return true
            }
            if n < 0 && errno == EINTR { continue }
            return false
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// The built http-hello binary as a child process on a kernel-chosen loopback port.
final class HTTPHelloProcess {
    let process = Process()
    let port: UInt16
    private let outputURL: URL

    /// Starts `http-hello --port 0 <arguments>` and waits until it says where it listens.
    init(_ arguments: [String] = []) throws {
        let binary = URL(fileURLWithPath: try siblingExecutable("http-hello"))
        outputURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("http-hello-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }
        process.executableURL = binary
        process.arguments = ["--host", "127.0.0.1", "--port", "0"] + arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        var found: UInt16?
        while found == nil && ContinuousClock.now < deadline && process.isRunning {
            let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on 127.0.0.1:") {
                found = UInt16(text[range.upperBound...].prefix { $0.isNumber })
            }
            if found == nil { usleep(20_000) }
        }
        guard let found else {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            throw TestFailure("http-hello did not start: \(Self.read(outputURL))")
        }
        port = found
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: outputURL)
    }

    /// The URL of `path` on this server.
    func url(_ path: String = "/") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// The server's resident memory (VmRSS) in KiB.
    func residentKiB() -> Int? { TestSupport.residentKiB(pid: process.processIdentifier) }

    /// How many descriptors the server has open.
    func openDescriptorCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(
            atPath: "/proc/\(process.processIdentifier)/fd"))?
            .count ?? -1
    }

    /// Sends SIGTERM and waits; returns the exit status and everything the server printed.
    func stop() -> (status: Int32, output: String) {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return (process.terminationStatus, Self.read(outputURL))
    }

    private static func read(_ url: URL) -> String {
        (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

}

/// Runs a tool found on PATH; returns its exit status, standard output and standard error.
func httpRunTool(_ tool: String, _ arguments: [String]) throws -> (
    status: Int32, output: String, errors: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Drain stderr on another thread so neither pipe can fill up and stall the tool.
    let errorData = HTTPDataBox()
    let reader = Thread { errorData.set(errors.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errorData.isSet { usleep(1000) }
    try? output.fileHandleForReading.close()
    try? errors.fileHandleForReading.close()
    return (
        process.terminationStatus, String(decoding: outputData, as: UTF8.self),
        String(decoding: errorData.value, as: UTF8.self)
    )
}

/// Data handed from one thread to another.
final class HTTPDataBox: @unchecked Sendable {
    // Invariant: `data` and `done` are only read or written with `lock` held.
    private let lock = Lock()
    private var data = Data()
    private var done = false

    func set(_ value: Data) {
        lock.withLock {
            data = value
            done = true
        }
    }

    var isSet: Bool { lock.withLock { done } }
    var value: Data { lock.withLock { data } }
}
