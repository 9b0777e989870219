import Glibc
import SysCalls
import TestSupport

/// A child process started with posix_spawn, its standard output on a pipe.
final class ChildProcess {
    /// How the child ended.
    enum Status: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    let pid: pid_t
    private var output: FileDescriptor?
    private var pendingText = ""
    private var reaped = false

    /// Starts `executable` with `arguments`; stdout goes to a pipe, stderr to /dev/null, no
    /// other descriptor is inherited, and signals start unblocked with default actions.
    init(executable: String, arguments: [String]) throws {
        let pipe = try Sys.pipe2(flags: O_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipe.write.rawValue, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // glibc 2.34+; the Glibc module does not import it, so look it up. A descriptor
        // inherited without close-on-exec would count against the child's limit.
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            typealias CloseFrom =
                @convention(c) (
                    UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32
                ) -> Int32
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            _ = withUnsafeMutablePointer(to: &actions) { closeFrom($0, 3) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        try? Sys.close(pipe.write)
        guard result == 0 else {
            try? Sys.close(pipe.read)
            throw Errno(result, call: "posix_spawn")
        }
        self.pid = pid
        self.output = pipe.read
    }

    deinit {
        kill()
        if let output { try? Sys.close(output) }
    }

    /// Reads standard output until a line containing `text` arrives; returns that line.
    func readLine(containing text: String, timeout: Duration) throws -> String {
        guard let output else { throw TestFailure("output closed") }
        let deadline = ContinuousClock.now + timeout
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        while ContinuousClock.now < deadline {
            while let newline = pendingText.firstIndex(of: "\n") {
                let line = String(pendingText[..<newline])
                pendingText = String(pendingText[pendingText.index(after: newline)...])
                if line.contains(text) { return line }
            }
            guard waitFor(output, POLLIN, timeout: .milliseconds(100)) != 0 else { continue }
            switch try Sys.read(output, into: buffer) {
            case .processed(0):
                throw TestFailure("the child closed its output before printing \"\(text)\"")
            case .processed(let count):
                pendingText += String(decoding: buffer[..<count], as: UTF8.self)
            case .wouldBlock: break
            }
        }
        throw TestFailure("no line with \"\(text)\" within \(timeout)")
    }

    /// User + system CPU time so far, in seconds, from /proc/<pid>/stat.
    func cpuSeconds() throws -> Double {
        Double(try cpuTicks(pid: pid)) / clockTicksPerSecond
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the child to exit; SIGKILL after that.
    func terminate(timeout: Duration) throws -> Status {
        Glibc.kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try reap(blocking: false) { return status }
            usleep(10_000)
        }
        kill()
        throw TestFailure("the child did not exit within \(timeout) of SIGTERM")
    }

    /// SIGKILLs and reaps the child if it is still running.
    func kill() {
        guard !reaped else { return }
        Glibc.kill(pid, SIGKILL)
        _ = try? reap(blocking: true)
    }

    private func reap(blocking: Bool) throws -> Status? {
        var status: Int32 = 0
        var result: pid_t
        repeat {
            result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        } while result == -1 && errno == EINTR
        if result == 0 { return nil }
        guard result == pid else { throw TestFailure("waitpid(\(pid)) failed: errno \(errno)") }
        reaped = true
        if let output {
            try? Sys.close(output)
            self.output = nil
        }
        if status & 0x7F == 0 { return .exited((status >> 8) & 0xFF) }
        return .signaled(status & 0x7F)
    }
}
