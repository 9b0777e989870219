/// An IPv4 address, e.g. `127.0.0.1`.
///
/// ```swift
/// let ip = IPv4Address(127, 0, 0, 1)   // == .loopback
/// ip.description                        // "127.0.0.1"
/// ```
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    /// The address as a host-order integer: `a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`.
    public var rawValue: UInt32

    /// Wraps a host-order integer.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// `0.0.0.0`: every local interface, when binding.
    public static let any = IPv4Address(rawValue: 0)
    /// `127.0.0.1`.
    public static let loopback = IPv4Address(127, 0, 0, 1)
    /// `255.255.255.255`.
    public static let broadcast = IPv4Address(rawValue: .max)

    /// The four bytes in network order.
    public var bytes: [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (24 - 8 * $0)) }
    }

    /// Dotted-quad form, e.g. `"10.0.0.1"`.
    public var description: String { bytes.map(String.init).joined(separator: ".") }

    /// Parses a dotted quad (`"10.0.0.1"`); nil if `text` is not exactly one.
    ///
    /// Leading zeros are refused: `010` means 8 to some parsers and 10 to others.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit),
                part == "0" || part.first != "0", let byte = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(byte)
        }
        rawValue = value
    }
}

/// An IPv6 address, e.g. `::1`.
///
/// ```swift
/// let ip = IPv6Address("fe80::1")!
/// ip.description   // "fe80::1" (RFC 5952 form: lowercase, longest zero run compressed)
/// ```
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    /// The first 64 bits, the first byte in the most significant position.
    public var high: UInt64
    /// The last 64 bits, in the same order.
    public var low: UInt64

    /// Builds an address from its two 64-bit halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Builds an address from 16 bytes in network order.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "an IPv6 address is 16 bytes")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// Builds an address from eight 16-bit groups.
    public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address is 8 groups")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
        self.init(high: high, low: low)
    }

    /// `::`: every local interface, when binding.
    public static let any = IPv6Address(high: 0, low: 0)
    /// `::1`.
    public static let loopback = IPv6Address(high: 0, low: 1)

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// The eight 16-bit groups.
    public var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) }
            + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
    }

    /// The IPv4 address inside an IPv4-mapped address (`::ffff:a.b.c.d`), if it is one.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0, low >> 32 == 0xffff else { return nil }
        return IPv4Address(rawValue: UInt32(truncatingIfNeeded: low))
    }

    /// RFC 5952 text: lowercase hex, the longest run (2+) of zero groups as `::`, and
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`.
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        let groups = self.groups
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > best.length { best = (index, end - index) }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
        }
        guard best.length >= 2 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    /// Parses the textual forms of RFC 4291 (`"::1"`, `"fe80::1"`, `"::ffff:10.0.0.1"`, full
    /// eight groups); nil for anything else. No brackets, no zone (`%…`): `SocketAddress`
    /// handles those.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count <= 2, !(halves.count == 2 && halves[1].contains("::")) else {
            return nil
        }
        func parseGroups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            var groups: [UInt16] = []
            for (index, field) in fields.enumerated() {
                if allowIPv4Tail, index == fields.count - 1, field.contains(".") {
                    guard let v4 = IPv4Address(field) else { return nil }
                    groups.append(UInt16(truncatingIfNeeded: v4.rawValue >> 16))
                    groups.append(UInt16(truncatingIfNeeded: v4.rawValue))
                    continue
                }
                guard (1...4).contains(field.count), field.allSatisfy(\.isHexDigit),
                    let group = UInt16(field, radix: 16)
                else { return nil }
                groups.append(group)
            }
            return groups
        }
        if halves.count == 1 {
            guard let groups = parseGroups(halves[0], allowIPv4Tail: true), groups.count == 8
            else { return nil }
            self.init(groups: groups)
        } else {
            guard let head = parseGroups(halves[0], allowIPv4Tail: false),
                let tail = parseGroups(halves[1], allowIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            self.init(groups: head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail)
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
