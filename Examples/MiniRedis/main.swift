// mini-redis: a RESP2 server for string keys on the Reactor, enough for redis-cli and
// redis-benchmark.
//
//     swift run -c release mini-redis [--host 127.0.0.1] [--port 6379] [--backend epoll|poll|kqueue|uring]
//                                     [--max-bulk BYTES] [--output-hard-limit BYTES]
//                                     [--output-soft-limit BYTES] [--output-soft-seconds S]
//                                     [--max-output-memory BYTES]
//
// Commands: PING ECHO SET (EX/PX/NX/XX/KEEPTTL/GET) GET DEL EXISTS INCR DECR INCRBY DECRBY MGET
// MSET EXPIRE PEXPIRE TTL PTTL PERSIST DBSIZE FLUSHALL COMMAND CONFIG GET SELECT QUIT, in RESP
// or inline (telnet) form, pipelined. Keys expire lazily on access and through a sampled
// sweep ten times a second. The key space lives on one reactor thread, so `--threads` must be
// 1 (a store shared by several reactors would need a lock on every command). Prints where it
// listens; SIGINT or SIGTERM stops it cleanly.
//
// Replies stream: a large value is written from the stored value itself, about a megabyte at
// a time as the client reads, so a client that reads gets any reply whole and costs the server
// about 1 MiB of queued output; its next commands wait until its output drains. Output limits,
// as Redis's client-output-buffer-limit (hard, soft, seconds) and maxmemory-clients: a client
// whose held output (what its replies make the server hold beyond the stored values they
// share) passes the hard limit is cut off at once; one whose unsent output stays above the
// soft limit while the kernel takes none of it for the soft seconds is cut off; and when the
// held output of all clients, plus the stored values that were overwritten or deleted while
// queued replies still reference them (each counted once), passes --max-output-memory, the
// clients that went longest without taking bytes are cut off until it fits. A client that
// keeps reading is never cut off (unless the values its own replies still reference, after
// others overwrote them, pass the global limit by themselves).
import ExampleSupport
import Net
import Reactor
import Selector
import Synchronization
import SysCalls

let usage = """
    usage: mini-redis [--host H] [--port P] [--backend epoll|poll|kqueue|uring] [--threads 1]
                      [--max-bulk BYTES] [--output-hard-limit BYTES]
                      [--output-soft-limit BYTES] [--output-soft-seconds S]
                      [--max-output-memory BYTES]
      --max-bulk             largest bulk string accepted (default 64 MiB)
      --output-hard-limit    a client holding more reply memory than this (beyond stored
                             values it shares) is cut off at once (default 256 MiB, at least
                             2 MiB; --max-output is the old name)
      --output-soft-limit    a client with more reply bytes unsent than this ...
      --output-soft-seconds  ... that takes none of them for this long is cut off (defaults
                             16 MiB and 60 s; fractions of a second allowed)
      --max-output-memory    reply memory of all clients together, including values
                             overwritten or deleted while replies still reference them; past
                             it the clients that went longest without reading are cut off
                             (default 1 GiB, at least 2 MiB)
    A client that keeps reading is never cut off, however large its replies.
    """
let arguments = ServerArguments(
    defaultPort: 6379, usage: usage,
    extraFlags: [
        "max-bulk", "max-output", "output-hard-limit", "output-soft-limit",
        "output-soft-seconds", "max-output-memory",
    ])

if arguments.threads != 1 {
    printError(
        "mini-redis: the key space lives on one reactor thread; --threads must be 1"
            + " (got \(arguments.threads))")
    Sys.exit(2)
}

func badFlag(_ flag: String, _ text: String) -> Never {
    printError("mini-redis: bad --\(flag): \(text)\n\(usage)")
    Sys.exit(2)
}

var limits = ServerLimits()
let sizeFlags: [(String, WritableKeyPath<ServerLimits, Int>, Int)] = [
    ("max-bulk", \.maxBulk, 1), ("max-output", \.outputHardLimit, ServerLimits.minimumOutputLimit),
    ("output-hard-limit", \.outputHardLimit, ServerLimits.minimumOutputLimit),
    ("output-soft-limit", \.outputSoftLimit, 1),
    ("max-output-memory", \.maxOutputMemory, ServerLimits.minimumOutputLimit),
]
for (flag, keyPath, minimum) in sizeFlags {
    guard let text = arguments.extra[flag] else { continue }
    guard let value = Int(text), value >= minimum, value <= 1 << 40 else { badFlag(flag, text) }
    limits[keyPath: keyPath] = value
}
if let text = arguments.extra["output-soft-seconds"] {
    guard let seconds = Double(text), seconds > 0, seconds <= 1e6 else {
        badFlag("output-soft-seconds", text)
    }
    limits.outputSoftNanoseconds = UInt64(seconds * 1e9)
}

/// Serves the connections of the one reactor with one `RedisServer` (which also sweeps
/// expired keys on it).
struct RedisService: ReactorService {
    let limits: ServerLimits
    var settings: ConnectionSettings {
        ConnectionSettings(
            ConnectionOptions(
                highWatermark: limits.highWatermark, lowWatermark: limits.lowWatermark,
                maxBufferedInput: limits.maxQuery))
    }

    func makeDelegate<Backend: EventSelector>(
        for reactor: Reactor<Backend>
    ) -> any ConnectionDelegate<Backend> {
        let server = RedisServer<Backend>(reactor: reactor, limits: limits)
        server.startExpiryCycle()
        return server
    }
}

prepareForTermination()
runReactorServer("mini-redis", arguments, RedisService(limits: limits))
