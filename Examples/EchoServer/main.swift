// echo-server: every byte a client sends comes back, on the Reactor.
//
//     swift run -c release echo-server [--host 127.0.0.1] [--port 7000] [--threads N] [--async]
//                                      [--backend epoll|poll|kqueue|uring] [--max-open-files N]
//
// With --async, the same server written with async/await: one task per connection, on the
// reactor's executor (`Task(executorPreference: loop.handle)`), reading with `read(into:)`
// and writing back what it read; one reactor thread (--threads is ignored).
// With --threads N, N reactors share the port through SO_REUSEPORT. --max-open-files lowers
// the soft RLIMIT_NOFILE (to try the descriptor-limit handling). Prints where it listens;
// SIGINT or SIGTERM stops it cleanly.
import ExampleSupport
import Net
import Reactor
import Selector
import SysCalls

let usage = """
    usage: echo-server [--host H] [--port P] [--threads N] [--async]
                       [--backend epoll|poll|kqueue|uring] [--max-open-files N]
    """
var commandLine = CommandLine.arguments
let asyncMode = commandLine.contains("--async")
commandLine.removeAll { $0 == "--async" }
let arguments = ServerArguments(
    defaultPort: 7000, usage: usage, extraFlags: ["max-open-files"], commandLine: commandLine)

/// Echoes whatever arrives; one instance serves every connection.
final class Echo<Backend: EventSelector>: ConnectionDelegate {
    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        connection.write(bytes)
        return bytes.count
    }
}

/// Serves every connection of a reactor with one `Echo`.
struct EchoService: ReactorService {
    func makeDelegate<Backend: EventSelector>(
        for reactor: Reactor<Backend>
    ) -> any ConnectionDelegate<Backend> {
        Echo<Backend>()
    }
}

prepareForTermination()
if let limit = arguments.extra["max-open-files"].flatMap(UInt64.init) {
    do {
        let (_, hard) = try Sys.openFileLimit()
        try Sys.setOpenFileLimit(soft: limit, hard: hard)
    } catch {
        printError("echo-server: cannot set the open-file limit: \(error)")
        Sys.exit(1)
    }
}
if asyncMode {
    runAsyncEchoServer(arguments)
} else {
    runReactorServer("echo-server", arguments, EchoService())
}
