/// The commands mini-redis knows, with Redis's names and arities (COMMAND COUNT counts
/// `allCases`).
enum Command: CaseIterable {
    case ping, echo, get, set, del, exists, incr, decr, incrby, decrby, mget, mset
    case expire, pexpire, ttl, pttl, persist, dbsize, flushall, command, config, select, quit
    case debug

    /// The lower-case name, as error replies quote it.
    var name: StaticString {
        switch self {
        case .ping: "ping"
        case .echo: "echo"
        case .get: "get"
        case .set: "set"
        case .del: "del"
        case .exists: "exists"
        case .incr: "incr"
        case .decr: "decr"
        case .incrby: "incrby"
        case .decrby: "decrby"
        case .mget: "mget"
        case .mset: "mset"
        case .expire: "expire"
        case .pexpire: "pexpire"
        case .ttl: "ttl"
        case .pttl: "pttl"
        case .persist: "persist"
        case .dbsize: "dbsize"
        case .flushall: "flushall"
        case .command: "command"
        case .config: "config"
        case .select: "select"
        case .quit: "quit"
        case .debug: "debug"
        }
    }

    /// Redis's arity: the exact argument count (name included) when positive, the minimum
    /// when negative.
    var arity: Int {
        switch self {
        case .ping, .flushall, .command, .quit: -1
        case .echo, .get, .incr, .decr, .ttl, .pttl, .persist, .select: 2
        case .set, .expire, .pexpire: -3
        case .del, .exists, .mget, .config, .debug: -2
        case .incrby, .decrby: 3
        case .mset: -3
        case .dbsize: 1
        }
    }

    /// Whether `count` arguments fit the arity (and MSET's key/value pairs).
    func accepts(_ count: Int) -> Bool {
        let fits = arity > 0 ? count == arity : count >= -arity
        return fits && (self != .mset || count % 2 == 1)
    }

    /// The command named by `name`, matched without regard to case.
    @inline(__always)
    static func named(_ name: UnsafeRawBufferPointer) -> Command? {
        switch name.count {
        case 3:
            if name.matches("get") { return .get }
            if name.matches("set") { return .set }
            if name.matches("del") { return .del }
            if name.matches("ttl") { return .ttl }
        case 4:
            if name.matches("ping") { return .ping }
            if name.matches("incr") { return .incr }
            if name.matches("mget") { return .mget }
            if name.matches("mset") { return .mset }
            if name.matches("echo") { return .echo }
            if name.matches("decr") { return .decr }
            if name.matches("pttl") { return .pttl }
            if name.matches("quit") { return .quit }
        case 5:
            if name.matches("debug") { return .debug }
        case 6:
            if name.matches("exists") { return .exists }
            if name.matches("expire") { return .expire }
            if name.matches("incrby") { return .incrby }
            if name.matches("decrby") { return .decrby }
            if name.matches("dbsize") { return .dbsize }
            if name.matches("config") { return .config }
            if name.matches("select") { return .select }
        case 7:
            if name.matches("pexpire") { return .pexpire }
            if name.matches("persist") { return .persist }
            if name.matches("command") { return .command }
        case 8:
            if name.matches("flushall") { return .flushall }
        default:
            break
        }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes spell `word` (lower-case letters only) in any case.
    @inline(__always)
    func matches(_ word: StaticString) -> Bool {
        guard count == word.utf8CodeUnitCount else { return false }
        let letters = word.utf8Start
        for index in 0..<count where self[index] | 0x20 != letters[index] { return false }
        return true
    }
}
