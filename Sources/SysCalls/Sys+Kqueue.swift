#if canImport(Darwin) || Kqueue
#if canImport(Darwin)
import Darwin
#else
// libkqueue: the BSD kqueue(2) API over epoll, in user space (the Kqueue package trait).
import CKqueue
import Glibc
#endif

@inline(__always)
private func systemKqueue() -> Int32 {
    #if canImport(Darwin)
    Darwin.kqueue()
    #else
    CKqueue.kqueue()
    #endif
}

@inline(__always)
private func systemKevent(
    _ kq: Int32, _ changes: UnsafePointer<kevent>?, _ changeCount: Int32,
    _ events: UnsafeMutablePointer<kevent>?, _ eventCount: Int32,
    _ timeout: UnsafePointer<timespec>?
) -> Int32 {
    // Unqualified: `Module.kevent` names the struct, not the function.
    kevent(kq, changes, changeCount, events, eventCount, timeout)
}

/// kqueue(2) and kevent(2): the BSD readiness calls (on Linux through libkqueue).
extension Sys {
    /// kqueue(2), close-on-exec.
    ///
    /// BSD kqueues are not inherited across fork at all. libkqueue's descriptor is an ordinary
    /// pipe end (opened O_CLOEXEC by current versions); FD_CLOEXEC is set here if it is not.
    public static func kqueue() throws(Errno) -> FileDescriptor {
        let kq = FileDescriptor(try retrying("kqueue") { systemKqueue() })
        #if !canImport(Darwin)
        do throws(Errno) {
            let flags = try fcntl(kq, F_GETFD)
            if flags & FD_CLOEXEC == 0 { try fcntl(kq, F_SETFD, flags | FD_CLOEXEC) }
        } catch {
            try? close(kq)
            throw error
        }
        #endif
        return kq
    }

    /// kevent(2): applies `changes`, then collects at most `events.count` events, waiting up
    /// to `timeout` (nil: without limit) if none is ready. Returns how many entries of
    /// `events` were written.
    ///
    /// Changes that carry EV_RECEIPT (or fail) take an entry of `events` each, flagged
    /// EV_ERROR with the errno (0 for success) in `data`; give exactly one entry per change and
    /// the call returns without waiting or collecting readiness (both kernels and libkqueue
    /// collect into whatever room is left over).
    ///
    /// EINTR: a wait (no changes) returns 0 events, and the caller's loop recomputes its
    /// deadline; a submission of changes is retried.
    public static func kevent(
        _ kq: FileDescriptor, changes: UnsafeBufferPointer<kevent>,
        events: UnsafeMutableBufferPointer<kevent>, timeout: Duration?
    ) throws(Errno) -> Int {
        let changeCount = Int32(clamping: changes.count)
        let eventCount = Int32(clamping: events.count)
        while true {
            let n: Int32
            if let timeout {
                var ts = Sys.timespec(timeout)
                n = systemKevent(
                    kq.rawValue, changes.baseAddress, changeCount, events.baseAddress, eventCount,
                    &ts)
            } else {
                n = systemKevent(
                    kq.rawValue, changes.baseAddress, changeCount, events.baseAddress, eventCount,
                    nil)
            }
            if n >= 0 { return Int(n) }
            let code = errno
            if code != EINTR { throw Errno(code, call: "kevent") }
            if changes.isEmpty { return 0 }
        }
    }
}
#endif
