// nio-async-echo: the SwiftNIO async/await reference for the echo benchmarks, written the way
// NIO's own NIOTCPEchoServer example writes it: one event-loop thread, ServerBootstrap's
// async `bind` wrapping every accepted channel in an `NIOAsyncChannel<ByteBuffer, ByteBuffer>`,
// `for try await connection in inbound` in a discarding task group, one child task per
// connection echoing its `inbound` sequence to its `outbound` writer (each write flushed).
// The tasks run on Swift's global concurrent executor (NIO 2.101 offers its event loop as no
// task executor), so every read and write hops between that pool and the event loop.
//
//     nio-async-echo [--port P]      (listens on 127.0.0.1; SIGINT/SIGTERM exit cleanly)
import Glibc
import NIOCore
import NIOPosix

/// Writes a line to stdout unbuffered (the runner waits for the "listening" line).
func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

/// Echoes everything one connection sends until it closes or fails.
func echo(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
    do {
        try await connection.executeThenClose { inbound, outbound in
            for try await buffer in inbound {
                try await outbound.write(buffer)
            }
        }
    } catch {
        // A reset or broken connection ends only that connection.
    }
}

/// Accepts connections until the server channel closes, one child task each.
func serve(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async {
    do {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { await echo(connection) }
                }
            }
        }
    } catch {
        say("nio-async-echo: \(error)")
    }
}

var port = 7004
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    if flag == "--port", let value = arguments.popFirst().flatMap(Int.init) { port = value }
}

// Block the stop signals before any thread starts so only sigwait below sees them.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGINT)
sigaddset(&stopSignals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

var limit = rlimit()
if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let serving = Task.detached { [port] in
    do {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel)
                }
            }
        say("nio-async-echo listening on \(server.channel.localAddress.map { "\($0)" } ?? "?")")
        await serve(server)
    } catch {
        say("nio-async-echo: \(error)")
        exit(1)
    }
}
// Top-level code stays synchronous, so the signals are blocked before the runtime starts any
// thread (an async main would let an early thread take SIGTERM's default action), and the
// main thread, which is none of the pool's threads, waits for them here.
var received: Int32 = 0
sigwait(&stopSignals, &received)
do {
    try group.syncShutdownGracefully()  // closes every channel: the server task ends
} catch {
    say("nio-async-echo: \(error)")
}
say("nio-async-echo stopped (signal \(received))")
