// mini-redis: a RESP2 server for string keys on the Reactor, enough for redis-cli and
// redis-benchmark.
//
//     swift run -c release mini-redis [--host 127.0.0.1] [--port 6379] [--backend epoll|poll|kqueue]
//                                     [--max-bulk BYTES] [--max-output BYTES]
//
// Commands: PING ECHO SET (EX/PX/NX/XX/KEEPTTL/GET) GET DEL EXISTS INCR DECR INCRBY DECRBY MGET
// MSET EXPIRE PEXPIRE TTL PTTL PERSIST DBSIZE FLUSHALL COMMAND CONFIG GET SELECT QUIT, in RESP
// or inline (telnet) form, pipelined. Keys expire lazily on access and through a sampled
// sweep ten times a second. The key space lives on one reactor thread, so `--threads` must be
// 1 (a store shared by several reactors would need a lock on every command). Prints where it
// listens; SIGINT or SIGTERM stops it cleanly.
import ExampleSupport
import Net
import Reactor
import Selector
import Synchronization
import SysCalls

let usage = """
    usage: mini-redis [--host H] [--port P] [--backend epoll|poll|kqueue] [--threads 1]
                      [--max-bulk BYTES] [--max-output BYTES]
    """
let arguments = ServerArguments(
    defaultPort: 6379, usage: usage, extraFlags: ["max-bulk", "max-output"])

if arguments.threads != 1 {
    printError(
        "mini-redis: the key space lives on one reactor thread; --threads must be 1"
            + " (got \(arguments.threads))")
    Sys.exit(2)
}

var limits = ServerLimits()
for (flag, keyPath) in [("max-bulk", \ServerLimits.maxBulk), ("max-output", \.maxOutput)] {
    guard let text = arguments.extra[flag] else { continue }
    guard let value = Int(text), value > 0, value <= 1 << 40 else {
        printError("mini-redis: bad --\(flag): \(text)\n\(usage)")
        Sys.exit(2)
    }
    limits[keyPath: keyPath] = value
}

/// Serves the connections of the one reactor with one `RedisServer` (which also sweeps
/// expired keys on it).
struct RedisService: ReactorService {
    let limits: ServerLimits
    var settings: ConnectionSettings {
        ConnectionSettings(ConnectionOptions(maxBufferedInput: limits.maxQuery))
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
