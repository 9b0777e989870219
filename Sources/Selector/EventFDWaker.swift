#if os(Linux)
import SysCalls

/// A waker over an eventfd registered readable (edge-triggered) in its selector.
///
/// Each `wake()` adds 1 to the counter; an edge-triggered selector reports one event for any
/// number of wakes since its last `select`. The counter is never drained on the hot path:
/// only when it would overflow does `wake()` reset it.
public final class EventFDWaker: SelectorWaker {
    private let eventfd: OwnedFileDescriptor
    private let selector: SharedDescriptor

    init<R: SelectorRegistry>(token: Token, registry: R, selector: SharedDescriptor)
        throws(Errno)
    {
        let fd = OwnedFileDescriptor(try Sys.eventfd())
        try registry.register(fd.raw, token: token, interest: .readable)
        self.eventfd = fd
        self.selector = selector
    }

    /// Wakes the selector; throws EBADF once the selector is closed.
    public func wake() throws(Errno) {
        if selector.isClosed { throw Errno(Errno.EBADF.code, call: "wake (selector closed)") }
        if case .wouldBlock = try Sys.eventfdWrite(eventfd.raw, 1) {
            _ = try Sys.eventfdRead(eventfd.raw)
            _ = try Sys.eventfdWrite(eventfd.raw, 1)
        }
    }
}
#endif
