import Reactor
import SysCalls

// The string and expiry commands, on the key space.
extension RedisServer {
    func get(_ key: UnsafeRawBufferPointer, on connection: Connection<Backend>) {
        guard let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now) else {
            reply.null()
            return
        }
        sendValue(at: entry, on: connection)
    }

    /// SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL].
    func set(_ arguments: [UnsafeRawBufferPointer], on connection: Connection<Backend>) {
        var onlyIfAbsent = false
        var onlyIfPresent = false
        var returnOld = false
        var keepTTL = false
        var expiry: (amount: UnsafeRawBufferPointer, milliseconds: Bool)?
        var index = 3
        while index < arguments.count {
            let option = arguments[index]
            let hasNext = index + 1 < arguments.count
            if option.matches("nx") && !onlyIfPresent {
                onlyIfAbsent = true
            } else if option.matches("xx") && !onlyIfAbsent {
                onlyIfPresent = true
            } else if option.matches("get") {
                returnOld = true
            } else if option.matches("keepttl") && expiry == nil {
                keepTTL = true
            } else if (option.matches("ex") || option.matches("px")) && !keepTTL && expiry == nil
                && hasNext
            {
                expiry = (arguments[index + 1], option.matches("px"))
                index += 1
            } else {
                reply.error("syntax error")
                return
            }
            index += 1
        }
        var deadline: Int64?
        if let expiry {
            guard let amount = Decimal.parse(expiry.amount) else {
                reply.error("value is not an integer or out of range")
                return
            }
            guard amount > 0, let at = self.deadline(amount, milliseconds: expiry.milliseconds)
            else {
                reply.error("invalid expire time in 'set' command")
                return
            }
            deadline = at
        }
        let key = arguments[1]
        let value = arguments[2]
        let hash = keyspace.hash(key)
        let existing = keyspace.lookup(key, hash: hash, now: now)
        if returnOld {
            if let existing {
                // A reference to the old storage: the replacement below leaves it alone.
                sendValue(at: existing, on: connection)
            } else {
                reply.null()
            }
        }
        if (onlyIfAbsent && existing != nil) || (onlyIfPresent && existing == nil) {
            if !returnOld { reply.null() }
            return
        }
        if let existing {
            keyspace.replaceValue(at: existing, with: value)
            if !keepTTL { keyspace.setDeadline(at: existing, deadline) }
        } else {
            let entry = keyspace.insert(key, hash: hash, value: value)
            if deadline != nil { keyspace.setDeadline(at: entry, deadline) }
        }
        if !returnOld { reply.ok() }
    }

    /// `now` plus `amount` seconds or milliseconds; nil where Redis says "invalid expire
    /// time": the span overflows, or adding it to the Unix time in milliseconds would (Redis
    /// keeps deadlines on the wall clock; mini-redis on the monotonic one, but refuses the
    /// same amounts).
    func deadline(_ amount: Int64, milliseconds: Bool) -> Int64? {
        var span = amount
        if !milliseconds {
            let (product, overflow) = amount.multipliedReportingOverflow(by: 1000)
            if overflow { return nil }
            span = product
        }
        let wall = Sys.wallClock()
        let wallMilliseconds = wall.seconds &* 1000 &+ wall.nanoseconds / 1_000_000
        if span > 0 && span > Int64.max - wallMilliseconds { return nil }
        let (sum, overflow) = now.addingReportingOverflow(span)
        return overflow ? nil : sum
    }

    func del(_ arguments: [UnsafeRawBufferPointer]) {
        var removed: Int64 = 0
        for key in arguments[1...] {
            if let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now) {
                keyspace.remove(at: entry)
                removed += 1
            }
        }
        reply.integer(removed)
    }

    func exists(_ arguments: [UnsafeRawBufferPointer]) {
        var found: Int64 = 0
        for key in arguments[1...]
        where keyspace.lookup(key, hash: keyspace.hash(key), now: now) != nil {
            found += 1
        }
        reply.integer(found)
    }

    func incrementBy(_ arguments: [UnsafeRawBufferPointer], negate: Bool) {
        guard var amount = Decimal.parse(arguments[2]) else {
            reply.error("value is not an integer or out of range")
            return
        }
        if negate {
            guard amount != .min else {
                reply.error("decrement would overflow")
                return
            }
            amount = -amount
        }
        increment(arguments[1], by: amount)
    }

    /// INCR and friends: the value must hold a decimal Int64; the key's deadline stays.
    func increment(_ key: UnsafeRawBufferPointer, by amount: Int64) {
        let hash = keyspace.hash(key)
        let existing = keyspace.lookup(key, hash: hash, now: now)
        var current: Int64 = 0
        if let existing {
            guard let value = keyspace.withValue(at: existing, Decimal.parse) else {
                reply.error("value is not an integer or out of range")
                return
            }
            current = value
        }
        let (result, overflow) = current.addingReportingOverflow(amount)
        guard !overflow else {
            reply.error("increment or decrement would overflow")
            return
        }
        withUnsafeTemporaryAllocation(byteCount: 24, alignment: 8) { digits in
            let length = Decimal.format(result, into: digits.baseAddress!)
            let text = UnsafeRawBufferPointer(rebasing: digits[..<length])
            if let existing {
                keyspace.replaceValue(at: existing, with: text)
            } else {
                keyspace.insert(key, hash: hash, value: text)
            }
        }
        reply.integer(result)
    }

    func mget(_ arguments: [UnsafeRawBufferPointer], on connection: Connection<Backend>) {
        reply.arrayHeader(arguments.count - 1)
        for key in arguments[1...] {
            if let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now) {
                sendValue(at: entry, on: connection)
            } else {
                reply.null()
            }
            if reply.count >= 32 << 10 { flush(connection) }
            // Past the watermark the rest of the reply is queued, not copied.
            if streaming == nil && connection.pendingOutputBytes > limits.highWatermark {
                _ = startStreaming(connection, header: nil)
            }
        }
    }

    func mset(_ arguments: [UnsafeRawBufferPointer]) {
        var index = 1
        while index + 1 < arguments.count {
            let key = arguments[index]
            let hash = keyspace.hash(key)
            if let entry = keyspace.lookup(key, hash: hash, now: now) {
                keyspace.replaceValue(at: entry, with: arguments[index + 1])
                keyspace.setDeadline(at: entry, nil)
            } else {
                keyspace.insert(key, hash: hash, value: arguments[index + 1])
            }
            index += 2
        }
        reply.ok()
    }

    /// EXPIRE / PEXPIRE key amount [NX|XX|GT|LT].
    func expire(_ arguments: [UnsafeRawBufferPointer], milliseconds: Bool) {
        var nx = false
        var xx = false
        var gt = false
        var lt = false
        for option in arguments[3...] {
            if option.matches("nx") {
                nx = true
            } else if option.matches("xx") {
                xx = true
            } else if option.matches("gt") {
                gt = true
            } else if option.matches("lt") {
                lt = true
            } else {
                let name = String(decoding: option.prefix(128), as: UTF8.self)
                reply.error(text: "ERR Unsupported option \(name)")
                return
            }
        }
        if nx && (xx || gt || lt) {
            reply.error("NX and XX, GT or LT options at the same time are not compatible")
            return
        }
        if gt && lt {
            reply.error("GT and LT options at the same time are not compatible")
            return
        }
        guard let amount = Decimal.parse(arguments[2]) else {
            reply.error("value is not an integer or out of range")
            return
        }
        guard let at = deadline(amount, milliseconds: milliseconds) else {
            reply.error(
                text: "ERR invalid expire time in '\(milliseconds ? "pexpire" : "expire")' command")
            return
        }
        let key = arguments[1]
        guard let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now) else {
            reply.integer(0)
            return
        }
        let current = keyspace.deadline(at: entry)
        // No deadline counts as infinitely far for GT and LT, as in Redis.
        if (nx && current != nil) || (xx && current == nil)
            || (gt && (current == nil || at <= current!))
            || (lt && current != nil && at >= current!)
        {
            reply.integer(0)
            return
        }
        if at <= now {
            keyspace.remove(at: entry)
        } else {
            keyspace.setDeadline(at: entry, at)
        }
        reply.integer(1)
    }

    func ttl(_ key: UnsafeRawBufferPointer, milliseconds: Bool) {
        guard let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now) else {
            reply.integer(-2)
            return
        }
        guard let at = keyspace.deadline(at: entry) else {
            reply.integer(-1)
            return
        }
        let left = max(0, at - now)
        reply.integer(milliseconds ? left : (left + 500) / 1000)
    }

    func persist(_ key: UnsafeRawBufferPointer) {
        guard let entry = keyspace.lookup(key, hash: keyspace.hash(key), now: now),
            keyspace.deadline(at: entry) != nil
        else {
            reply.integer(0)
            return
        }
        keyspace.setDeadline(at: entry, nil)
        reply.integer(1)
    }
}
