import Net
import Selector
import SysCalls
import TestSupport
import Testing

@testable import Reactor

/// `AsyncConnection.readLent(maxBytes:)`: reads into buffers the reactor lends and takes back.
@Suite("async reads into lent buffers", .opensDescriptors)
struct AsyncLentReadTests {
    /// A reactor thread and two connected `AsyncConnection`s on it.
    static func pair() async throws -> (
        loop: ReactorThread<EpollSelector>, left: AsyncConnection<EpollSelector>,
        right: AsyncConnection<EpollSelector>
    ) {
        let loop = try ReactorThread<EpollSelector>()
        let (a, b) = try UnixStream.pair()
        let left = try await AsyncConnection(wrapping: a, on: loop.handle)
        let right = try await AsyncConnection(wrapping: b, on: loop.handle)
        return (loop, left, right)
    }

    @Test(
        "on the loop: at most maxBytes per read, empty at EOF, and a buffer given back serves the next read"
    )
    func lentBuffersAreReused() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, left, right) = try await Self.pair()
            let handle = loop.handle
            try await Task(executorPreference: handle) {
                try await left.write(Array("abcdefgh".utf8))
                let first = try await right.readLent(maxBytes: 5)
                #expect(Array(first.bytes) == Array("abcde".utf8))
                #expect(right.spareLentBuffers == 0)
                let firstBase = first.bytes.baseAddress
                _ = consume first
                #expect(right.spareLentBuffers == 1, "given back and kept")
                // The first buffer is back: the next read gets it, allocating nothing.
                let second = try await right.readLent()
                #expect(Array(second.bytes) == Array("fgh".utf8))
                #expect(second.bytes.baseAddress == firstBase)
                #expect(right.spareLentBuffers == 0)
                // While it is held, another read gets another buffer.
                try await left.write(Array("ij".utf8))
                let third = try await right.readLent()
                #expect(Array(third.bytes) == Array("ij".utf8))
                #expect(third.bytes.baseAddress != second.bytes.baseAddress)
                #expect(Array(second.bytes) == Array("fgh".utf8), "untouched by the later read")
                _ = consume second
                _ = consume third
                #expect(right.spareLentBuffers == 2)
                try await left.shutdownOutput()
                let end = try await right.readLent()
                let (isEmpty, count) = (end.isEmpty, end.count)
                #expect(isEmpty && count == 0)
            }.value
            await left.close()
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("the loop keeps at most maxSpares given-back buffers and frees the rest")
    func sparesAreBounded() {
        let scratch = ReadScratch(byteCount: 64)
        let lent = (0..<(ReadScratch.maxSpares + 3)).map { _ in scratch.lend() }
        #expect(Set(lent).count == lent.count, "no buffer lent twice")
        for buffer in lent { scratch.giveBack(buffer) }
        #expect(scratch.spareCount == ReadScratch.maxSpares)
        let again = scratch.lend()
        #expect(lent.contains(again), "a spare is lent before anything new is allocated")
        #expect(scratch.spareCount == ReadScratch.maxSpares - 1)
        scratch.giveBack(again)
    }

    @Test("bytes held across a suspension stay intact while other reads on the loop lend buffers")
    func heldBytesSurviveOtherReads() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, left, right) = try await Self.pair()
            let handle = loop.handle
            let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            try await Task(executorPreference: handle) {
                // The reader waits (no data yet), holding no buffer; a writer on the loop sends
                // in pieces while the reader holds each chunk across awaits of its own.
                let writer = Task(executorPreference: handle) {
                    for start in stride(from: 0, to: payload.count, by: 7_000) {
                        try await left.write(payload[start..<min(start + 7_000, payload.count)])
                        await Task.yield()
                    }
                    try await left.shutdownOutput()
                }
                var received: [UInt8] = []
                while true {
                    let chunk = try await right.readLent(maxBytes: 4_096)
                    if chunk.isEmpty { break }
                    let copy = Array(chunk.bytes)
                    await Task.yield()  // other tasks run; the chunk stays this task's
                    #expect(Array(chunk.bytes) == copy)
                    received += copy
                }
                try await writer.value
                #expect(received == payload)
            }.value
            await left.close()
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("from another executor the read hops to the loop; the bytes and the end of file arrive")
    func readLentOffLoop() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, left, right) = try await Self.pair()
            try await left.write(Array("elsewhere".utf8))
            let bytes = try await right.readLent()
            #expect(Array(bytes.bytes) == Array("elsewhere".utf8))
            try await left.shutdownOutput()
            let end = try await right.readLent()
            let isEmpty = end.isEmpty
            #expect(isEmpty)
            await left.close()
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("a lent read cancelled while it waits throws CancellationError and consumes nothing")
    func cancelledLentRead() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, left, right) = try await Self.pair()
            let handle = loop.handle
            let reading = Task(executorPreference: handle) {
                let bytes = try await right.readLent()
                return Array(bytes.bytes)
            }
            await Task(executorPreference: handle) {}.value
            reading.cancel()
            await #expect(throws: CancellationError.self) { _ = try await reading.value }
            try await left.write(Array("kept".utf8))
            let next = try await Task(executorPreference: handle) {
                Array(try await right.readLent().bytes)
            }.value
            #expect(next == Array("kept".utf8))
            await left.close()
            await right.close()
            loop.stop()
            try loop.join()
        }
    }

    @Test("a lent read on a closed connection throws EBADF")
    func lentReadAfterClose() async throws {
        try await Backend.epoll.runAsync { _ in
            let (loop, left, right) = try await Self.pair()
            await right.close()
            await #expect(throws: Errno.self) {
                _ = try await Task(executorPreference: loop.handle) {
                    try await right.readLent().count
                }.value
            }
            await left.close()
            loop.stop()
            try loop.join()
        }
    }
}
