// echo-load: the closed-loop load generator of the echo benchmarks (see ../../run).
//
//     echo-load --port 7000 --connections 64 --size 64 --pipeline 1 --warmup 1 --duration 3
//
// One thread, one EpollSelector. Each connection keeps `pipeline` messages in flight and sends
// a new message for every echo that completes. Output: JSON lines on stdout, written the
// moment they happen so a runner can sample the server exactly over the measured window:
//   {"event":"window-start"}  {"event":"window-end"}  {"event":"result", ...}
// With --count N, every connection does N echoes and the whole run is measured.
import Net
import Selector
import SysCalls

let options = Options(Array(CommandLine.arguments.dropFirst()))
Sys.ignoreSIGPIPE()
if let (soft, hard) = try? Sys.openFileLimit(), soft < hard {
    try? Sys.setOpenFileLimit(soft: hard, hard: hard)
}

func json(_ fields: [(String, String)]) -> String {
    "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

func micros(_ nanoseconds: UInt64) -> String {
    String(Double(nanoseconds / 10) / 100)
}

do {
    let load = try LoadGenerator(options)
    let started = Sys.monotonicNanoseconds()
    try load.connectMore()
    let windowStart: UInt64
    let windowEnd: UInt64
    if options.count != nil {
        // Fixed work: everything is measured, from the first connect to the last echo.
        load.measuring = true
        windowStart = started
        writeLine(json([("event", "\"window-start\"")]))
        try load.run { load.finished == options.connections }
        windowEnd = Sys.monotonicNanoseconds()
        writeLine(json([("event", "\"window-end\"")]))
    } else {
        try load.run { load.established + load.errors >= options.connections }
        let warm = Sys.monotonicNanoseconds() + UInt64(options.warmup * 1e9)
        try load.run(deadline: warm) { load.finished == options.connections }
        load.measuring = true
        windowStart = Sys.monotonicNanoseconds()
        writeLine(json([("event", "\"window-start\"")]))
        let end = windowStart + UInt64(options.duration * 1e9)
        try load.run(deadline: end) { load.finished == options.connections }
        windowEnd = Sys.monotonicNanoseconds()
        load.measuring = false
        writeLine(json([("event", "\"window-end\"")]))
    }
    let seconds = Double(windowEnd - windowStart) / 1e9
    let histogram = load.histogram
    writeLine(
        json([
            ("event", "\"result\""),
            ("connections", "\(options.connections)"),
            ("established", "\(load.established)"),
            ("size", "\(options.size)"),
            ("pipeline", "\(options.pipeline)"),
            ("messages", "\(load.windowMessages)"),
            ("seconds", "\(seconds)"),
            ("msgs_per_s", "\(Double(load.windowMessages) / max(seconds, 1e-9))"),
            ("p50_us", micros(histogram.percentile(0.50))),
            ("p99_us", micros(histogram.percentile(0.99))),
            ("max_us", micros(histogram.maximum)),
            ("errors", "\(load.errors)"),
        ]))
    if options.hold {
        // Keep the connections open (idle) until the runner closes our standard input.
        var byte: UInt8 = 0
        while case .processed(let n)? = try? withUnsafeMutableBytes(
            of: &byte,
            { raw in
                try Sys.read(FileDescriptor(0), into: raw)
            }), n > 0
        {}
    }
    load.closeAll()
} catch {
    writeLine("echo-load: \(error)", to: FileDescriptor(2))
    Sys.exit(1)
}
