import Net
import SysCalls

/// Command-line options of echo-load.
struct Options {
    var address = "127.0.0.1:7000"
    /// Connections kept open at once.
    var connections = 64
    /// Bytes per message.
    var size = 64
    /// Messages in flight per connection.
    var pipeline = 1
    /// Seconds of load before the measured window.
    var warmup = 1.0
    /// Seconds in the measured window.
    var duration = 3.0
    /// When set: echoes per connection, then stop (no warm-up, the whole run is measured).
    var count: Int?
    /// After the run, keep the connections open until standard input closes.
    var hold = false
    /// Connects in progress at once.
    var connectBatch = 128

    static let usage = """
        usage: echo-load [--host H] [--port P] [--connections N] [--size BYTES]
                         [--pipeline DEPTH] [--warmup S] [--duration S] [--count ECHOES]
                         [--hold] [--connect-batch N]
        Closed loop: each connection keeps DEPTH messages of BYTES in flight and sends a new one
        for each echo received. Prints JSON lines: window-start, window-end, result.
        --count: every connection does ECHOES echoes, then the run ends (no warm-up).
        --hold: after the result line, keep connections open until stdin reaches end of file.
        """

    /// Parses `arguments` (without the program name); exits with the usage on an error.
    init(_ arguments: [String]) {
        var host = "127.0.0.1"
        var port = 7000
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            if flag == "--hold" {
                hold = true
                continue
            }
            guard let value = rest.popFirst() else { Self.fail("missing value for \(flag)") }
            switch flag {
            case "--host": host = value
            case "--port": port = Self.integer(flag, value)
            case "--connections": connections = Self.integer(flag, value)
            case "--size": size = Self.integer(flag, value)
            case "--pipeline": pipeline = Self.integer(flag, value)
            case "--warmup": warmup = Self.number(flag, value)
            case "--duration": duration = Self.number(flag, value)
            case "--count": count = Self.integer(flag, value)
            case "--connect-batch": connectBatch = Self.integer(flag, value)
            default: Self.fail("unknown flag \(flag)")
            }
        }
        if connections < 1 || size < 1 || pipeline < 1 || connectBatch < 1 {
            Self.fail("--connections, --size, --pipeline and --connect-batch must be positive")
        }
        address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func integer(_ flag: String, _ value: String) -> Int {
        guard let number = Int(value), number >= 0 else { fail("bad value for \(flag): \(value)") }
        return number
    }

    private static func number(_ flag: String, _ value: String) -> Double {
        guard let number = Double(value), number >= 0 else {
            fail("bad value for \(flag): \(value)")
        }
        return number
    }

    private static func fail(_ message: String) -> Never {
        writeLine("echo-load: \(message)\n\(usage)", to: FileDescriptor(2))
        Sys.exit(2)
    }
}

/// Writes `text` and a newline straight to `fd` (unbuffered: the runner reads lines live).
func writeLine(_ text: String, to fd: FileDescriptor = FileDescriptor(1)) {
    var line = text + "\n"
    line.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty {
            guard case .processed(let written)? = try? Sys.write(fd, from: rest), written > 0
            else { return }
            rest = UnsafeRawBufferPointer(rebasing: rest[written...])
        }
    }
}
