import Glibc
import SysCalls
import TestSupport
import Testing

@Suite("EINTR never surfaces", .opensDescriptors)
struct InterruptedCallTests {
    @Test("Sys.retrying retries EINTR until the call succeeds")
    func retryingRetriesEINTR() throws {
        var calls = 0
        let result = try Sys.retrying("test") { () -> Int32 in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)
    }

    @Test("Sys.retrying throws any other errno, tagged with the call")
    func retryingThrowsOtherErrors() {
        do {
            _ = try Sys.retrying("test") { () -> Int32 in
                errno = EBADF
                return -1
            }
            Issue.record("did not throw")
        } catch {
            #expect(error == .EBADF)
            #expect(error.description == "test: Bad file descriptor (EBADF)")
        }
    }

    @Test("Sys.retryingIO retries EINTR too")
    func retryingIORetriesEINTR() throws {
        var calls = 0
        let result = try Sys.retryingIO("test") { () -> Int in
            calls += 1
            if calls == 1 {
                errno = EINTR
                return -1
            }
            return 5
        }
        #expect(result == .processed(5))
        #expect(calls == 2)
    }

    @Test("a blocking read interrupted by a signal (no SA_RESTART) is retried, not thrown")
    func interruptedBlockingReadIsRetried() throws {
        installNoOpHandler(interruptSignal)
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 8, flags: O_CLOEXEC)  // blocking
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            let reading = SharedCounter()
            let received = SharedCounter()
            let failed = SharedCounter()
            let handledBefore = signalsHandled(interruptSignal)
            let reader = try TestThread {
                unblockSignal(interruptSignal)
                reading.add(1)
                do {
                    if case .processed(let count) = try readOnce(read) { received.add(count) }
                } catch {
                    failed.add(1)
                }
            }
            let start = ContinuousClock.now
            while reading.value == 0, ContinuousClock.now - start < .seconds(2) {
                sleep(milliseconds: 1)
            }
            for _ in 0..<3 {
                sleep(milliseconds: 30)  // the reader is blocked in read(2) by now
                pthread_kill(reader.id, interruptSignal)
            }
            sleep(milliseconds: 30)
            _ = try Array("ok".utf8).withUnsafeBytes { (raw) throws(Errno) in
                try Sys.write(write, from: raw)
            }
            reader.join()
            #expect(failed.value == 0, "read threw")
            #expect(received.value == 2)
            #expect(signalsHandled(interruptSignal) - handledBefore >= 3)
        }
    }

    @Test("a poll interrupted by a signal returns 0 ready instead of throwing")
    func interruptedPollReturnsZero() throws {
        installNoOpHandler(interruptSignal)
        try checkingDescriptorLeaks {
            let (read, write) = try highPipe(slot: 9)
            defer {
                try? Sys.close(read)
                try? Sys.close(write)
            }
            let polling = SharedCounter()
            let ready = SharedCounter()
            let failed = SharedCounter()
            let poller = try TestThread {
                unblockSignal(interruptSignal)
                var entry = pollfd(fd: read.rawValue, events: Int16(POLLIN), revents: 0)
                polling.add(1)
                do {
                    let count = try withUnsafeMutablePointer(to: &entry) {
                        (pointer) throws(Errno) in
                        try Sys.poll(
                            UnsafeMutableBufferPointer(start: pointer, count: 1),
                            timeoutMilliseconds: 5_000)
                    }
                    ready.add(count)
                } catch {
                    failed.add(1)
                }
            }
            let start = ContinuousClock.now
            while polling.value == 0, ContinuousClock.now - start < .seconds(2) {
                sleep(milliseconds: 1)
            }
            sleep(milliseconds: 50)
            pthread_kill(poller.id, interruptSignal)
            poller.join()
            let elapsed = ContinuousClock.now - start
            #expect(failed.value == 0, "poll threw")
            #expect(ready.value == 0)
            #expect(elapsed < .seconds(4), "poll was not interrupted (\(elapsed))")
        }
    }
}
