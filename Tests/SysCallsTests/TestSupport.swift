import Glibc
import Synchronization
import SysCalls
import Testing

// Helpers for the SysCalls tests: a descriptor-leak check, descriptors on high numbers (so
// that tests running in parallel, which get the lowest free numbers, never reuse them), a
// pthread, and a counting signal handler.

/// The process's open descriptors: number → what /proc says it points at.
func openDescriptors() -> [Int32: String] {
    guard let directory = opendir("/proc/self/fd") else { return [:] }
    let own = dirfd(directory)
    defer { closedir(directory) }
    var result: [Int32: String] = [:]
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let fd = Int32(name), fd != own else { continue }
        var target = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/self/fd/\(fd)", &target, 255)
        let bytes = target.prefix(max(0, count)).map { UInt8(bitPattern: $0) }
        result[fd] = String(decoding: bytes, as: UTF8.self)
    }
    return result
}

/// Runs `body` and records an issue if descriptors it opened are still open afterwards.
///
/// Other tests (other suites and targets share the process) run in parallel and hold
/// descriptors of their own, some for seconds, so the check looks for descriptors that are new
/// (by number and target) and gives them up to ten seconds to go. A real leak stays, and fails.
func checkingDescriptorLeaks(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) throws {
    let before = openDescriptors()
    try body()
    let deadline = ContinuousClock.now + .seconds(10)
    var leaked: [Int32: String] = [:]
    repeat {
        leaked = openDescriptors().filter { before[$0.key] != $0.value }
        if leaked.isEmpty { return }
        usleep(10_000)
    } while ContinuousClock.now < deadline
    let list = leaked.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
    Issue.record(
        "descriptors left open: \(list.joined(separator: ", "))", sourceLocation: sourceLocation)
}

/// A pipe whose ends sit at or above a number reserved for `slot` (0…15), far above what
/// parallel tests get, so a closed end's number is not reused behind the test's back.
func highPipe(slot: Int32, flags: Int32 = O_NONBLOCK | O_CLOEXEC) throws -> (
    read: FileDescriptor, write: FileDescriptor
) {
    let soft = try Sys.openFileLimit().soft
    let base = Int32(clamping: min(soft, 16_384)) - 32 * (slot + 1)
    let (read, write) = try Sys.pipe2(flags: flags)
    defer {
        try? Sys.close(read)
        try? Sys.close(write)
    }
    let highRead = FileDescriptor(try Sys.fcntl(read, F_DUPFD_CLOEXEC, base))
    let highWrite = FileDescriptor(try Sys.fcntl(write, F_DUPFD_CLOEXEC, base))
    return (highRead, highWrite)
}

/// True if `fd` is an open descriptor.
func isOpen(_ fd: FileDescriptor) -> Bool {
    (try? Sys.fcntl(fd, F_GETFD)) != nil
}

/// A joinable pthread running one closure (no Foundation).
final class TestThread: Sendable {
    private final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    // Written once in init before any join; joined exactly once by its creator.
    nonisolated(unsafe) private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(result, call: "pthread_create")
        }
    }

    /// Waits for the thread to finish (call once).
    func join() { pthread_join(thread, nil) }

    /// The pthread, e.g. for `pthread_kill`.
    var id: pthread_t { thread }
}

/// An integer shared between threads.
final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)

    /// The current value.
    var value: Int { storage.load(ordering: .acquiring) }

    /// Adds `amount`.
    func add(_ amount: Int) { storage.add(amount, ordering: .acquiringAndReleasing) }
}

/// Sleeps the calling thread.
func sleep(milliseconds: Int) { usleep(UInt32(milliseconds * 1000)) }

/// The signal these tests interrupt calls with (the Selector tests use SIGUSR1: the two
/// targets may share a process, and a handler is per process).
let interruptSignal = SIGUSR2

/// How many times the no-op handler ran.
let signalsHandled = Atomic<Int>(0)

/// Installs a counting no-op handler for `interruptSignal` *without* SA_RESTART, so a blocking
/// call it interrupts fails with EINTR instead of being restarted by the kernel.
func installNoOpHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        signalsHandled.add(1, ordering: .relaxed)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(interruptSignal, &action, nil)
}

/// Unblocks `interruptSignal` for the calling thread (it inherits its creator's mask, and
/// dispatch worker threads, which run the tests, block signals).
func unblockInterruptSignal() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, interruptSignal)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
