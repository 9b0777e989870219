import Net
import Selector
import SysCalls

extension AsyncConnection {
    /// The connection's inbound bytes, chunk by chunk, until end of file.
    ///
    /// Backpressure is by demand: the socket is read only while an iterator's `next()` waits,
    /// so a consumer that falls behind leaves the bytes in the kernel, whose buffers fill
    /// until the peer's writes would block. A chunk holds what one read returned, at most
    /// `maxChunk` bytes.
    ///
    /// ```swift
    /// for try await chunk in connection.inbound { try await connection.write(chunk) }
    /// ```
    public struct InboundBytes: AsyncSequence, Sendable {
        /// One read's bytes.
        public typealias Element = [UInt8]
        /// What iterating can throw: the read's error, or `CancellationError`.
        public typealias Failure = any Error

        let connection: AsyncConnection
        let maxChunk: Int

        /// An iterator that reads on each `next()`; nil from the end of file on.
        public func makeAsyncIterator() -> Iterator {
            Iterator(connection: connection, maxChunk: maxChunk)
        }

        /// Reads one chunk per `next()` (`read(maxBytes:)`: no buffer held while it waits).
        public struct Iterator: AsyncIteratorProtocol {
            let connection: AsyncConnection
            let maxChunk: Int
            var ended = false

            /// The next chunk (waiting for one), or nil at end of file. A cancelled wait throws
            /// `CancellationError` and consumes nothing. Runs on the caller's executor (an actor
            /// living on the loop reads inline, as with `read`).
            public nonisolated(nonsending) mutating func next() async throws -> [UInt8]? {
                try await nextChunk()
            }

            /// `next()`, as `for try await` calls it: on the caller's isolation.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws
                -> [UInt8]?
            {
                try await nextChunk()
            }

            private nonisolated(nonsending) mutating func nextChunk() async throws -> [UInt8]? {
                if ended { return nil }
                let chunk = try await connection.read(maxBytes: maxChunk)
                if chunk.isEmpty {
                    ended = true
                    return nil
                }
                return chunk
            }
        }
    }

    /// The inbound bytes in chunks of at most 64 KiB (see `InboundBytes`).
    public var inbound: InboundBytes { inbound(maxChunk: 64 << 10) }

    /// The inbound bytes in chunks of at most `maxChunk` (at least 1) bytes.
    public func inbound(maxChunk: Int) -> InboundBytes {
        InboundBytes(connection: self, maxChunk: max(1, maxChunk))
    }
}

extension AsyncListener {
    /// The listener's connections, as they are accepted; ends when the listener is closed.
    ///
    /// Connections are accepted only while an iterator's `next()` waits; the kernel queues
    /// the others (up to the listen backlog).
    ///
    /// ```swift
    /// for try await connection in listener.connections {
    ///     Task { for try await chunk in connection.inbound { try await connection.write(chunk) } }
    /// }
    /// ```
    public struct Connections: AsyncSequence, Sendable {
        /// An accepted connection.
        public typealias Element = AsyncConnection<Backend>
        /// What iterating can throw: an accept's error (EMFILE, …) or `CancellationError`.
        public typealias Failure = any Error

        let listener: AsyncListener

        /// An iterator that accepts on each `next()`.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Accepts one connection per `next()`.
        public struct Iterator: AsyncIteratorProtocol {
            let listener: AsyncListener

            /// The next connection (waiting for one), or nil once the listener is closed.
            public nonisolated(nonsending) mutating func next() async throws
                -> AsyncConnection<Backend>?
            {
                try await listener.next()
            }

            /// `next()`, as `for try await` calls it: on the caller's isolation.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws
                -> AsyncConnection<Backend>?
            {
                try await listener.next()
            }
        }
    }

    /// The connections, until the listener is closed, by `close()` or by its reactor's
    /// shutdown (see `Connections`).
    public var connections: Connections { Connections(listener: self) }
}
