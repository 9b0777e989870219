/// Latencies in log-linear buckets: 16 linear steps per power of two (about 6 % resolution).
///
/// Fixed size and allocated once, so recording never allocates.
struct Histogram {
    private static let steps = 16
    private static let stepBits = 4
    private var counts: [UInt64]
    /// How many values were recorded.
    private(set) var total: UInt64 = 0
    /// The largest value recorded.
    private(set) var maximum: UInt64 = 0

    /// An empty histogram covering 0 ns up to 2^44 ns (about 4.9 hours).
    init() { counts = [UInt64](repeating: 0, count: (44 - Self.stepBits + 2) * Self.steps) }

    /// Records one value (nanoseconds).
    @inline(__always)
    mutating func record(_ value: UInt64) {
        counts[min(Self.bucket(value), counts.count - 1)] &+= 1
        total &+= 1
        if value > maximum { maximum = value }
    }

    /// Forgets everything recorded (the end of the warm-up).
    mutating func reset() {
        for index in counts.indices { counts[index] = 0 }
        total = 0
        maximum = 0
    }

    /// The value below which `fraction` of the recorded values fall (bucket midpoint).
    func percentile(_ fraction: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = UInt64((Double(total) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= max(rank, 1) { return min(Self.midpoint(index), maximum) }
        }
        return maximum
    }

    @inline(__always)
    static func bucket(_ value: UInt64) -> Int {
        if value < UInt64(steps) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // >= stepBits
        let step = Int((value >> UInt64(exponent - stepBits)) & UInt64(steps - 1))
        return (exponent - stepBits + 1) * steps + step
    }

    static func midpoint(_ index: Int) -> UInt64 {
        if index < steps { return UInt64(index) }
        let exponent = index / steps + stepBits - 1
        let step = UInt64(index % steps)
        let width = UInt64(1) << UInt64(exponent - stepBits)
        let low = (UInt64(1) << UInt64(exponent)) + step * width
        return low + width / 2
    }
}
