import Glibc
import Synchronization
import SysCalls
import Testing

@Suite("OSThread")
struct OSThreadTests {
    @Test("currentID is the thread's pthread_t on glibc, stable, distinct among live threads")
    func currentIDNamesTheThread() throws {
        let here = OSThread.currentID
        #expect(here == OSThread.currentID)
        #expect(here == UInt(pthread_self()))
        let there = Atomic<UInt>(0)
        let pthread = Atomic<UInt>(0)
        let release = Atomic<Bool>(false)
        let thread = try OSThread(name: "id-test") {
            there.store(OSThread.currentID, ordering: .releasing)
            pthread.store(UInt(pthread_self()), ordering: .releasing)
            // Alive while the test compares: ids are distinct among live threads only.
            while !release.load(ordering: .acquiring) { sched_yield() }
        }
        while there.load(ordering: .acquiring) == 0 { sched_yield() }
        #expect(there.load(ordering: .acquiring) != here)
        #expect(there.load(ordering: .acquiring) == pthread.load(ordering: .acquiring))
        release.store(true, ordering: .releasing)
        thread.join()
    }
}
