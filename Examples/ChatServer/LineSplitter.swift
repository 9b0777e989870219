/// How chat-server cuts what a client sends into lines and builds the message that relays
/// them: pure functions over bytes, kept apart from the server so they can be fuzzed alone
/// (Fuzz/ChatLines).
enum LineSplitter {
    /// What one read's bytes hold, given the unfinished line the client had already sent.
    struct Scan: Equatable {
        /// Newline-terminated lines in `bytes[0..<end]`.
        var lines = 0
        /// Just past the last newline of an acceptable line (0 when there is none): what
        /// follows it continues the client's unfinished line.
        var end = 0
        /// A line (the unfinished one included) grew past the limit before its newline.
        var overlong = false
    }

    /// One pass over `bytes` for the complete lines and the limit. `pending` is the length of
    /// the unfinished line the bytes continue; no line may exceed `maxLine` bytes without its
    /// newline. Linear in the bytes, however many lines they hold.
    static func scan(_ bytes: UnsafeRawBufferPointer, pending: Int, maxLine: Int) -> Scan {
        var scan = Scan()
        var lineLength = pending
        for index in 0..<bytes.count {
            if bytes[index] == 0x0A {
                scan.lines += 1
                scan.end = index + 1
                lineLength = 0
            } else {
                lineLength += 1
                if lineLength > maxLine {
                    scan.overlong = true
                    break
                }
            }
        }
        return scan
    }

    /// The size of the message `compose` writes for `lines` lines of `bytes` ending at `end`.
    static func messageSize(lines: Int, prefix: Int, pending: Int, end: Int) -> Int {
        lines * prefix + pending + end
    }

    /// Writes each newline-terminated line of `lines` behind `prefix`, the first completing
    /// `pending`, into `out` (of `messageSize` bytes); returns the bytes written.
    static func compose(
        into out: UnsafeMutableRawBufferPointer, prefix: UnsafeRawBufferPointer,
        pending: UnsafeRawBufferPointer, lines: UnsafeRawBufferPointer
    ) -> Int {
        var written = 0
        func put(_ source: UnsafeRawBufferPointer) {
            guard let from = source.baseAddress, !source.isEmpty else { return }
            (out.baseAddress! + written).copyMemory(from: from, byteCount: source.count)
            written += source.count
        }
        put(prefix)
        put(pending)
        let end = lines.count
        var start = 0
        for index in 0..<end where lines[index] == 0x0A {
            put(UnsafeRawBufferPointer(rebasing: lines[start...index]))
            start = index + 1
            if start < end { put(prefix) }
        }
        return written
    }
}
