// http-hello: a minimal HTTP/1.1 server on the Reactor that answers "Hello, World!".
//
//     swift run -c release http-hello [--host 127.0.0.1] [--port 8080] [--threads N]
//                                     [--backend epoll|poll|kqueue|uring] [--max-header-bytes 8192]
//                                     [--max-body-bytes 1048576] [--idle-timeout 60]
//                                     [--header-timeout 10]
//
// GET / → 200 "Hello, World!" (text/plain); HEAD / → the same headers without the body;
// other paths → 404; other methods on / → 405 with Allow. Keep-alive and pipelining (the
// responses to the requests of one read leave in one write). Malformed requests → 400,
// heads over --max-header-bytes → 431, Content-Length over --max-body-bytes → 413, a head not
// complete within --header-timeout seconds of its first byte → 408 (however slowly its bytes
// keep arriving: the idle timeout alone restarts on each one), bytes that can never begin a
// request line → 400 as soon as they arrive; request
// bodies within the limit are read and ignored. Transfer-Encoding (chunked bodies) → 501:
// a deliberate choice, since this server never needs a body. Every error response closes
// the connection gracefully (FIN after the response, then the rest of the input is read
// and dropped for a moment, so the client sees the response rather than a reset).
//
// With --threads N, N reactors share the port through SO_REUSEPORT. Prints where it
// listens; SIGINT or SIGTERM stops it cleanly.
import ExampleSupport
import Net
import Reactor
import Selector
import Synchronization
import SysCalls

let usage = """
    usage: http-hello [--host H] [--port P] [--threads N] [--backend epoll|poll|kqueue|uring]
                      [--max-header-bytes N] [--max-body-bytes N] [--idle-timeout SECONDS]
                      [--header-timeout SECONDS]
    """
let arguments = ServerArguments(
    defaultPort: 8080, usage: usage,
    extraFlags: ["max-header-bytes", "max-body-bytes", "idle-timeout", "header-timeout"])

func positiveFlag(_ name: String, default value: Int) -> Int {
    guard let text = arguments.extra[name] else { return value }
    // Capped so that no size derived from a flag can overflow.
    guard let number = Int(text), number > 0, number <= 1 << 62 else {
        printError("http-hello: bad value for --\(name): \(text)\n\(usage)")
        Sys.exit(2)
    }
    return number
}

let maxHeaderBytes = positiveFlag("max-header-bytes", default: 8 << 10)
let maxBodyBytes = positiveFlag("max-body-bytes", default: 1 << 20)
let idleSeconds = positiveFlag("idle-timeout", default: 60)
let headerSeconds = positiveFlag("header-timeout", default: 10)

/// Serves every connection of one reactor: parses requests in place from the bytes the
/// connection hands over and answers from the reactor's `ResponseCache`.
///
/// Per-connection state lives in `Connection.userInfo`: 0 between requests, a positive count
/// of request-body bytes still to skip, or, once the connection is closing after an error or
/// `Connection: close`, minus the number of input bytes it may still drop before giving up.
/// A connection part-way through a request head also has a header deadline in
/// `headDeadlines`.
final class HTTPHello<Backend: EventSelector>: ConnectionDelegate {
    private let parser: RequestParser
    private let headerTimeout: Duration
    /// The header-deadline timers of connections holding an incomplete head (few at a time:
    /// a head usually arrives in one read).
    private var headDeadlines: [ObjectIdentifier: TimerID] = [:]
    private let responses: ResponseCache
    /// Responses to the requests of one read, sent with one write.
    private let batch: UnsafeMutableRawBufferPointer
    private var batched = 0
    private unowned(unsafe) let reactor: Reactor<Backend>

    /// How long a closing connection may keep sending before it is cut off.
    private static var lingerTime: Duration { .seconds(2) }
    /// How much a closing connection may send before it is cut off.
    private static var lingerBytes: Int { 1 << 20 }

    /// Serves on `reactor`; starts the once-a-second Date refresh there.
    init(reactor: Reactor<Backend>, parser: RequestParser, headerTimeout: Duration) {
        self.reactor = reactor
        self.parser = parser
        self.headerTimeout = headerTimeout
        let clock = Sys.wallClock()
        let responses = ResponseCache(now: clock.seconds)
        self.responses = responses
        batch = .allocate(byteCount: 32 << 10, alignment: 16)
        // Aligned just past each wall-clock second, so the Date field is never a second late.
        let untilNextSecond = 1_000_000_000 - clock.nanoseconds + 1_000_000
        reactor.schedule(after: .nanoseconds(untilNextSecond), repeating: .seconds(1)) { _ in
            responses.refresh(now: Sys.wallClock().seconds)
        }
    }

    deinit { batch.deallocate() }

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        var offset = 0
        let state = connection.userInfo
        if state != 0 {
            if state < 0 {
                let budget = -state - bytes.count
                if budget <= 0 { connection.abort() } else { connection.userInfo = -budget }
                return bytes.count
            }
            offset = min(state, bytes.count)
            connection.userInfo = state - offset
        }
        while offset < bytes.count {
            switch parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .incomplete:
                armHeadDeadline(connection)
                flush(connection)
                return offset
            case .failure(let failure):
                disarmHeadDeadline(connection)
                append(responses.response(Self.status(failure), .close, head: false), connection)
                flush(connection)
                closeGracefully(connection)
                return bytes.count
            case .request(let head):
                disarmHeadDeadline(connection)
                offset += head.length
                let status: Status =
                    !head.isRoot ? .notFound : head.method == .other ? .methodNotAllowed : .ok
                append(
                    responses.response(status, head.mode, head: head.method == .head), connection)
                let body = min(head.contentLength, bytes.count - offset)
                offset += body
                if body < head.contentLength { connection.userInfo = head.contentLength - body }
                if head.mode == .close {
                    flush(connection)
                    closeGracefully(connection)
                    return bytes.count
                }
            }
        }
        flush(connection)
        return offset
    }

    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
        disarmHeadDeadline(connection)
    }

    /// Starts the header deadline of the head `connection` has begun, unless it runs already.
    private func armHeadDeadline(_ connection: Connection<Backend>) {
        let key = ObjectIdentifier(connection)
        guard headDeadlines[key] == nil else { return }
        headDeadlines[key] = reactor.schedule(after: headerTimeout) { [unowned self] _ in
            self.headDeadlinePassed(connection)
        }
    }

    private func disarmHeadDeadline(_ connection: Connection<Backend>) {
        guard !headDeadlines.isEmpty,
            let timer = headDeadlines.removeValue(forKey: ObjectIdentifier(connection))
        else { return }
        _ = reactor.cancel(timer)
    }

    /// The head is still incomplete at its deadline: 408, then close.
    private func headDeadlinePassed(_ connection: Connection<Backend>) {
        headDeadlines[ObjectIdentifier(connection)] = nil
        guard connection.isOpen, connection.userInfo == 0 else { return }
        append(responses.response(.requestTimeout, .close, head: false), connection)
        flush(connection)
        closeGracefully(connection)
    }

    private static func status(_ failure: RequestFailure) -> Status {
        switch failure {
        case .badRequest: .badRequest
        case .payloadTooLarge: .payloadTooLarge
        case .headersTooLarge: .headersTooLarge
        case .notImplemented: .notImplemented
        }
    }

    @inline(__always)
    private func append(_ response: UnsafeRawBufferPointer, _ connection: Connection<Backend>) {
        if batched + response.count > batch.count { flush(connection) }
        (batch.baseAddress! + batched).copyMemory(
            from: response.baseAddress!, byteCount: response.count)
        batched += response.count
    }

    @inline(__always)
    private func flush(_ connection: Connection<Backend>) {
        guard batched > 0 else { return }
        connection.write(UnsafeRawBufferPointer(rebasing: batch[..<batched]))
        batched = 0
    }

    /// Sends FIN after the response, then drops whatever the client still sends until it
    /// closes (or the linger budget runs out): closing with unread input would reset the
    /// connection and could destroy the response before the client reads it.
    private func closeGracefully(_ connection: Connection<Backend>) {
        guard connection.isOpen else { return }
        connection.userInfo = -Self.lingerBytes
        connection.shutdownOutput()
        reactor.schedule(after: Self.lingerTime) { _ in connection.abort() }
    }
}

/// Serves every connection of a reactor with one `HTTPHello`.
struct HelloService: ReactorService {
    let parser = RequestParser(maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
    let settings = ConnectionSettings(
        ConnectionOptions(
            maxBufferedInput: max(1 << 20, maxHeaderBytes + (128 << 10)),
            idleTimeout: .seconds(idleSeconds)))

    func makeDelegate<Backend: EventSelector>(
        for reactor: Reactor<Backend>
    ) -> any ConnectionDelegate<Backend> {
        HTTPHello(reactor: reactor, parser: parser, headerTimeout: .seconds(headerSeconds))
    }
}

prepareForTermination()
runReactorServer("http-hello", arguments, HelloService())
