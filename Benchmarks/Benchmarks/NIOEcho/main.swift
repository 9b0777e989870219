// nio-echo: the SwiftNIO reference for the echo benchmarks, written the way NIO's own
// examples write it: one event-loop thread, ServerBootstrap, a handler that writes each read
// back and flushes once per read burst (channelReadComplete).
//
//     nio-echo [--port P]      (listens on 127.0.0.1; SIGINT/SIGTERM exit cleanly)
import Glibc
import NIOCore
import NIOPosix

/// Writes every inbound buffer back; flushes when the read burst ends.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Writes a line to stdout unbuffered (the runner waits for the "listening" line).
func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

var port = 7002
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
let handler = EchoHandler()
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }
do {
    let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
    say("nio-echo listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
    var received: Int32 = 0
    sigwait(&stopSignals, &received)
    try channel.close().wait()
    try group.syncShutdownGracefully()
    say("nio-echo stopped (signal \(received))")
} catch {
    say("nio-echo: \(error)")
    exit(1)
}
