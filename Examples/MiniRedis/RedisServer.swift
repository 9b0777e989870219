import Reactor
import Selector
import SysCalls

/// Limits that keep any input from making the server allocate without bound.
///
/// Output follows Redis's `client-output-buffer-limit` (hard, soft, seconds) and
/// `maxmemory-clients`, adapted to streamed replies (see `RedisServer+Output.swift`): what a
/// client's replies make the server hold beyond the stored values they share (bytes queued
/// in its connection, bytes built for queued replies, copies) is its *held* output; all reply
/// bytes the kernel has not taken yet, shared values included, are its *unsent* output. A
/// shared value the key space has since let go of is *orphaned* (`PinnedValue`): reply memory
/// of no one client, counted once against the global limit.
struct ServerLimits {
    /// Largest bulk string (`--max-bulk`, default 64 MiB; Redis allows 512 MB).
    var maxBulk = 64 << 20
    /// Held output of one client beyond which it is cut off at once (`--output-hard-limit`,
    /// also `--max-output`; default 256 MiB). A client that reads never gets near it: its
    /// held output stays about one watermark plus what one command builds (about 40 bytes per
    /// value an MGET references).
    var outputHardLimit = 256 << 20
    /// Unsent output above which a client that takes no bytes for `outputSoftNanoseconds` is cut
    /// off (`--output-soft-limit`, default 16 MiB).
    var outputSoftLimit = 16 << 20
    /// How long a client may stay above the soft limit without the kernel taking any of its
    /// bytes, in nanoseconds (`--output-soft-seconds`, default 60; fractions allowed).
    var outputSoftNanoseconds: UInt64 = 60_000_000_000
    /// Held output of all clients together, plus the orphaned values their replies still
    /// reference, beyond which those that went longest without taking bytes are cut off
    /// (`--max-output-memory`, default 1 GiB).
    var maxOutputMemory = 1 << 30
    /// Queued output at which a connection stops reading and further pieces of a reply wait.
    var highWatermark = 1 << 20
    /// Queued output at which they go on.
    var lowWatermark = 256 << 10
    /// Unconsumed input a connection may buffer: room for a few maximal arguments.
    var maxQuery: Int { 2 * maxBulk + (1 << 20) }
    /// Smallest hard and global limit accepted: a watermark of queued output and some.
    static var minimumOutputLimit: Int { 2 << 20 }
}

/// The RESP2 server: one instance per reactor serves all its connections and owns the key
/// space, so commands run one at a time without locks.
///
/// Each read is parsed in place: as many complete commands as it holds run in order, their
/// replies gather in one buffer sent with one write, and the incomplete tail is left to the
/// `Connection` to keep. Large replies stream (`ClientOutput`); while a client's output is
/// backed up past the watermark its further commands wait unparsed.
final class RedisServer<Backend: EventSelector>: ConnectionDelegate {
    unowned(unsafe) let reactor: Reactor<Backend>
    // Unchecked exclusivity: touched only on the reactor thread, never by overlapping
    // accesses (no closure or callback here re-enters it); the runtime checks cost ~5% of
    // the server's CPU on the GET/SET path.
    @exclusivity(unchecked) var keyspace = Keyspace()
    let reply = ReplyBuffer()
    let parser: RequestParser
    let limits: ServerLimits
    /// The reactor's clock in milliseconds, read once per batch of commands.
    @exclusivity(unchecked) var now: Int64 = 0
    /// Set by QUIT: close once the replies so far are sent.
    @exclusivity(unchecked) var quitRequested = false
    /// Output state of clients that had output queued, by `Connection.userInfo` - 1.
    @exclusivity(unchecked) var clients: [ClientOutput<Backend>?] = []
    /// Free indices in `clients`.
    @exclusivity(unchecked) var freeSlots: [Int] = []
    /// The sum of the clients' `accounted` held output: at least what they really hold (a
    /// connection's queue only shrinks between the server's writes into it).
    @exclusivity(unchecked) var heldTotal = 0
    /// The client whose current command streams its reply, if any.
    @exclusivity(unchecked) var streaming: ClientOutput<Backend>?

    /// A server for the connections of `reactor`.
    init(reactor: Reactor<Backend>, limits: ServerLimits) {
        self.reactor = reactor
        self.limits = limits
        parser = RequestParser(maxBulk: limits.maxBulk)
    }

    /// Starts the active expiry cycle, which also checks the clients' output against the soft
    /// limit: ten times a second, like Redis's default `hz`.
    func startExpiryCycle() {
        reactor.schedule(after: .milliseconds(100), repeating: .milliseconds(100)) {
            [unowned self] reactor in
            self.expireSome(reactor: reactor)
            self.checkOutputLimits()
        }
    }

    /// Removes expired keys by sampling, spending at most about a millisecond per tick.
    private func expireSome(reactor: Reactor<Backend>) {
        let start = Sys.monotonicNanoseconds()
        now = Int64(reactor.now / 1_000_000)
        while keyspace.sweep(now: now, maxRounds: 16) > 0 {
            if Sys.monotonicNanoseconds() &- start > 1_000_000 { break }
        }
    }

    // MARK: ConnectionDelegate

    /// Runs every complete command in `bytes`; returns how far it got. Stops early, leaving
    /// the rest to the connection, while the client's output is backed up.
    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        now = Int64(reactor.now / 1_000_000)
        var offset = 0
        while offset < bytes.count {
            switch parser.parse(bytes, from: offset) {
            case .command(let consumed):
                offset += consumed
                execute(parser.arguments, on: connection)
            case .nothing(let consumed):
                offset += consumed
            case .needMore:
                flush(connection)
                noteOutput(of: connection)
                return offset
            case .failed(let error):
                reply.error(text: error.message)
                flush(connection)
                connection.close()
                return bytes.count
            }
            if quitRequested {
                quitRequested = false
                flush(connection)
                connection.close()
                return bytes.count
            }
            if reply.count >= 32 << 10 { flush(connection) }
            if streaming != nil || connection.pendingOutputBytes > limits.highWatermark {
                guard endCommandOutput(connection) else {
                    reply.reset()
                    return bytes.count
                }
                if isBackedUp(connection) {
                    flush(connection)
                    return offset
                }
            }
            if !connection.isOpen {
                reply.reset()
                return bytes.count
            }
        }
        flush(connection)
        noteOutput(of: connection)
        return offset
    }

    /// Sends the gathered replies (into the streaming client's queue while a reply streams).
    @inline(__always)
    func flush(_ connection: Connection<Backend>) {
        guard reply.count > 0 else { return }
        if let streaming {
            streaming.append(owned: reply.bytes)
        } else {
            connection.write(reply.bytes)
        }
        reply.reset()
    }

    /// Replies with a bulk string from the request (PING, ECHO); a big one is copied once
    /// and streamed.
    @inline(__always)
    func sendBulk(_ value: UnsafeRawBufferPointer, on connection: Connection<Backend>) {
        if value.count <= Self.copiedValueLimit || (streaming == nil && value.count < 16 << 10) {
            reply.bulk(value)
            return
        }
        let client = startStreaming(connection, header: value.count)
        client.append(copy: Array(value), start: 0, count: value.count)
        reply.append("\r\n")
    }

    /// Replies with the value of `entry`; a big one (or any but a tiny one once the reply
    /// streams) is queued as a reference to the stored value, which it pins, not copied.
    @inline(__always)
    func sendValue(at entry: Int, on connection: Connection<Backend>) {
        let count = keyspace.valueCount(at: entry)
        if count <= Self.copiedValueLimit || (streaming == nil && count < 16 << 10) {
            keyspace.withValue(at: entry) { reply.bulk($0) }
            return
        }
        let client = startStreaming(connection, header: count)
        let (value, start) = keyspace.pinValue(at: entry)
        client.append(pinned: value, start: start, count: count)
        reply.append("\r\n")
    }

    /// Values up to this size are copied even into a streamed reply: cheaper than a piece.
    static var copiedValueLimit: Int { 64 }

    // MARK: Dispatch

    private func execute(
        _ arguments: [UnsafeRawBufferPointer], on connection: Connection<Backend>
    ) {
        guard let command = Command.named(arguments[0]) else {
            unknownCommand(arguments)
            return
        }
        guard command.accepts(arguments.count) else {
            wrongArity(command.name)
            return
        }
        switch command {
        case .get: get(arguments[1], on: connection)
        case .set: set(arguments, on: connection)
        case .ping:
            if arguments.count == 1 {
                reply.append("+PONG\r\n")
            } else if arguments.count == 2 {
                sendBulk(arguments[1], on: connection)
            } else {
                wrongArity(command.name)
            }
        case .echo: sendBulk(arguments[1], on: connection)
        case .del: del(arguments)
        case .exists: exists(arguments)
        case .incr: increment(arguments[1], by: 1)
        case .decr: increment(arguments[1], by: -1)
        case .incrby, .decrby: incrementBy(arguments, negate: command == .decrby)
        case .mget: mget(arguments, on: connection)
        case .mset: mset(arguments)
        case .expire, .pexpire: expire(arguments, milliseconds: command == .pexpire)
        case .ttl, .pttl: ttl(arguments[1], milliseconds: command == .pttl)
        case .persist: persist(arguments[1])
        case .dbsize: reply.integer(Int64(keyspace.count))
        case .flushall: flushall(arguments)
        case .command: commandCommand(arguments)
        case .config: config(arguments)
        case .select: select(arguments[1])
        case .debug: debug(arguments)
        case .quit:
            reply.ok()
            quitRequested = true
        }
    }

    func wrongArity(_ name: StaticString) {
        reply.append("-ERR wrong number of arguments for '")
        reply.append(name)
        reply.append("' command\r\n")
    }

    /// Redis's wording: the name and the first arguments, each quoted, within ~128 bytes.
    private func unknownCommand(_ arguments: [UnsafeRawBufferPointer]) {
        var text: [UInt8] = Array("-ERR unknown command '".utf8)
        text += arguments[0].prefix(128)
        text += Array("', with args beginning with: ".utf8)
        var listed = 0
        for argument in arguments.dropFirst() where listed < 128 {
            let quoted = [UInt8(ascii: "'")] + argument.prefix(128 - listed) + Array("' ".utf8)
            text += quoted
            listed += quoted.count
        }
        for index in text.indices where text[index] == 0x0D || text[index] == 0x0A {
            text[index] = 0x20
        }
        text += [0x0D, 0x0A]
        text.withUnsafeBytes { reply.append($0) }
    }

    // MARK: Keyspace-free commands

    private func flushall(_ arguments: [UnsafeRawBufferPointer]) {
        guard
            arguments.count == 1
                || (arguments.count == 2
                    && (arguments[1].matches("async") || arguments[1].matches("sync")))
        else {
            reply.error("syntax error")
            return
        }
        keyspace.removeAll()
        reply.ok()
    }

    /// Enough of COMMAND for redis-cli's hints and redis-benchmark: empty answers.
    private func commandCommand(_ arguments: [UnsafeRawBufferPointer]) {
        guard arguments.count > 1 else {
            reply.arrayHeader(0)
            return
        }
        let sub = arguments[1]
        if sub.matches("docs") || sub.matches("info") || sub.matches("list") {
            reply.arrayHeader(0)
        } else if sub.matches("count") {
            reply.integer(Int64(Command.allCases.count))
        } else {
            unknownSubcommand(sub, of: "COMMAND")
        }
    }

    /// CONFIG GET answers `save` and `appendonly` (what redis-benchmark asks); nothing else.
    private func config(_ arguments: [UnsafeRawBufferPointer]) {
        let sub = arguments[1]
        guard sub.matches("get") else {
            unknownSubcommand(sub, of: "CONFIG")
            return
        }
        guard arguments.count >= 3 else {
            wrongArity("config|get")
            return
        }
        var pairs = 0
        for name in arguments[2...] where name.matches("save") || name.matches("appendonly") {
            pairs += 1
        }
        reply.arrayHeader(pairs * 2)
        for name in arguments[2...] {
            if name.matches("save") {
                reply.append("$4\r\nsave\r\n$0\r\n\r\n")
            } else if name.matches("appendonly") {
                reply.append("$10\r\nappendonly\r\n$2\r\nno\r\n")
            }
        }
    }

    private func unknownSubcommand(_ sub: UnsafeRawBufferPointer, of command: String) {
        let name = String(decoding: sub.prefix(128), as: UTF8.self)
        reply.error(text: "ERR unknown subcommand '\(name)'. Try \(command) HELP.")
    }

    /// DEBUG HTSTATS 0: the key table's size, entries and longest probe distance (how far
    /// the farthest key sits from its home slot: what a lookup may have to walk), so the
    /// hash's spread can be checked from outside.
    private func debug(_ arguments: [UnsafeRawBufferPointer]) {
        if arguments[1].matches("outputstats") && arguments.count == 2 {
            outputStatistics()
            return
        }
        guard arguments[1].matches("htstats") else {
            unknownSubcommand(arguments[1], of: "DEBUG")
            return
        }
        guard arguments.count == 3, Decimal.parse(arguments[2]) == 0 else {
            reply.error("syntax error")
            return
        }
        let stats = keyspace.statistics()
        var text = "table size: \(stats.slots)\n"
        text += "number of elements: \(stats.entries)\n"
        text += "longest probe distance: \(stats.longestProbe)\n"
        Array(text.utf8).withUnsafeBytes { reply.bulk($0) }
    }

    private func select(_ index: UnsafeRawBufferPointer) {
        switch Decimal.parse(index) {
        case nil: reply.error("value is not an integer or out of range")
        case 0: reply.ok()
        default: reply.error("DB index is out of range")
        }
    }
}
