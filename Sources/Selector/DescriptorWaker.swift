import SysCalls

/// A waker over a descriptor registered readable in its selector: an eventfd on Linux, a pipe
/// elsewhere (`Sys.WakeKind`), for a backend whose kernel has no wake-up of its own.
///
/// Each `wake()` signals the descriptor; an edge-triggered selector reports one event for any
/// number of wakes since its last `select`. Nothing drains the descriptor on the hot path: only
/// when it can take no more (an eventfd counter at its maximum, a pipe holding 64 KiB of
/// wakes) does `wake()` empty it and signal again, which is a new edge. A selector that
/// watches a pipe this way must report every write to it as an edge, as epoll does (Linux
/// wakes a pipe's readers on every write).
public final class DescriptorWaker: SelectorWaker {
    private let kind: Sys.WakeKind
    private let descriptors: WakeDescriptors
    private let selector: SharedDescriptor

    init<R: SelectorRegistry>(
        token: Token, registry: R, selector: SharedDescriptor, kind: Sys.WakeKind
    ) throws(Errno) {
        let descriptors = try WakeDescriptors(kind)
        try registry.register(descriptors.watched, token: token, interest: .readable)
        self.kind = kind
        self.descriptors = descriptors
        self.selector = selector
    }

    /// Wakes the selector; throws EBADF once the selector is closed.
    public func wake() throws(Errno) {
        if selector.isClosed { throw Errno(Errno.EBADF.code, call: "wake (selector closed)") }
        let signalled = descriptors.signalled.raw
        if case .wouldBlock = try kind.signal(signalled) {
            try kind.drain(descriptors.watched)
            _ = try kind.signal(signalled)
        }
    }
}

/// A wake descriptor's two ends (`Sys.WakeKind.open`), owned together.
struct WakeDescriptors: Sendable {
    /// The end other threads signal. Its `withDescriptor` guards a signal against a concurrent
    /// `close()`, which closes `watched` as well.
    let signalled: SharedDescriptor
    /// The end a selector watches for readability (the same number for an eventfd).
    let watched: FileDescriptor

    /// Opens both ends, non-blocking and close-on-exec.
    init(_ kind: Sys.WakeKind) throws(Errno) {
        let (read, write) = try kind.open()
        signalled = SharedDescriptor(write, companion: read == write ? nil : read)
        watched = read
    }
}
