#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Sys {
    /// Blocks `signals` in the calling thread (and threads it starts later), so that one
    /// thread can take them synchronously with `waitForSignal`.
    public static func blockSignals(_ signals: [Int32]) throws(Errno) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        let result = pthread_sigmask(SIG_BLOCK, &set, nil)
        if result != 0 { throw Errno(result, call: "pthread_sigmask") }
    }

    /// Waits for one of `signals` (which must be blocked) and returns its number.
    public static func waitForSignal(_ signals: [Int32]) throws(Errno) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var received: Int32 = 0
        while true {
            let result = sigwait(&set, &received)
            if result == 0 { return received }
            if result != EINTR { throw Errno(result, call: "sigwait") }
        }
    }

    /// Sends `signal` to this process.
    public static func raise(_ signal: Int32) {
        _ = kill(getpid(), signal)
    }
}
