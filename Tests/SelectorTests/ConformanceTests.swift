import TestSupport
import Testing

// The selector conformance suite: every scenario of CONFORMANCE.md, written once as a generic
// `scenario<S: EventSelector>(_: S.Type)` and run against every backend in `Backend.all`.
// Serialized, because each test counts the process's descriptors before and after.
@Suite("Selector conformance", .serialized, .opensDescriptors)
struct ConformanceTests {
    // MARK: Lifecycle

    // 1
    @Test(
        "select with nothing registered returns no events after its timeout",
        arguments: Backend.all)
    func emptySelectWaitsForItsTimeout(_ backend: Backend) throws {
        try backend.run { try Scenarios.emptySelectWaitsForItsTimeout($0) }
    }

    // 2
    @Test("creating and dropping 2000 selectors leaks no descriptor", arguments: Backend.all)
    func droppedSelectorsLeakNothing(_ backend: Backend) throws {
        try backend.run { try Scenarios.droppedSelectorsLeakNothing($0) }
    }

    // 3
    @Test(
        "a descriptor closed without deregistering reports nothing and breaks nothing",
        arguments: Backend.all)
    func closedWithoutDeregisterIsHarmless(_ backend: Backend) throws {
        try backend.run { try Scenarios.closedWithoutDeregisterIsHarmless($0) }
    }

    // 4
    @Test("registering the same descriptor twice fails with EEXIST", arguments: Backend.all)
    func doubleRegisterFails(_ backend: Backend) throws {
        try backend.run { try Scenarios.doubleRegisterFails($0) }
    }

    // 5
    @Test(
        "deregister then register again works; deregistering a stranger is ENOENT",
        arguments: Backend.all)
    func deregisterAndRegisterAgain(_ backend: Backend) throws {
        try backend.run { try Scenarios.deregisterAndRegisterAgain($0) }
    }

    // MARK: Readiness

    // 6
    @Test("a socket with pending data reports readable with its token", arguments: Backend.all)
    func pendingDataIsReadable(_ backend: Backend) throws {
        try backend.run { try Scenarios.pendingDataIsReadable($0) }
    }

    // 7
    @Test(
        "connected, connecting and refused TCP streams report writability and SO_ERROR",
        arguments: Backend.all)
    func connectOutcomesReportWritable(_ backend: Backend) throws {
        try backend.run { try Scenarios.connectOutcomesReportWritable($0) }
    }

    // 8
    @Test(
        "a listener reports readable until every pending client is accepted",
        arguments: Backend.all)
    func listenerReportsPendingClients(_ backend: Backend) throws {
        try backend.run { try Scenarios.listenerReportsPendingClients($0) }
    }

    // 9
    @Test(
        "edge-triggered: no repeat event until drained and new data arrives",
        arguments: Backend.all)
    func edgeTriggeredReadiness(_ backend: Backend) throws {
        try backend.run { try Scenarios.edgeTriggeredReadiness($0) }
    }

    // 10
    @Test("reregister replaces interest and token at once", arguments: Backend.all)
    func reregisterReplacesInterestAndToken(_ backend: Backend) throws {
        try backend.run { try Scenarios.reregisterReplacesInterestAndToken($0) }
    }

    // 11
    @Test("a zero-duration select still reports ready events", arguments: Backend.all)
    func zeroTimeoutReportsReadyEvents(_ backend: Backend) throws {
        try backend.run { try Scenarios.zeroTimeoutReportsReadyEvents($0) }
    }

    // 12
    @Test(
        "1100 ready descriptors are all reported through a 64-event buffer",
        arguments: Backend.all)
    func manyReadyDescriptorsAllReported(_ backend: Backend) throws {
        try backend.run { try Scenarios.manyReadyDescriptorsAllReported($0) }
    }

    // 13
    @Test("a peer's shutdown(SHUT_WR) reports readable and read-closed", arguments: Backend.all)
    func peerShutdownReportsReadClosed(_ backend: Backend) throws {
        try backend.run { try Scenarios.peerShutdownReportsReadClosed($0) }
    }

    @Test(
        "data and a shutdown in one report: readable and read-closed (both directions watched)",
        arguments: Backend.all)
    func dataAndShutdownReportReadClosed(_ backend: Backend) throws {
        try backend.run { try Scenarios.dataAndShutdownReportReadClosed($0) }
    }

    // 14
    @Test(
        "a reset peer reports error or read-closed and reading gives ECONNRESET",
        arguments: Backend.all)
    func peerResetReportsErrorAndConnReset(_ backend: Backend) throws {
        try backend.run { try Scenarios.peerResetReportsErrorAndConnReset($0) }
    }

    // 15
    @Test("out-of-band data reports priority", arguments: Backend.all)
    func outOfBandDataReportsPriority(_ backend: Backend) throws {
        try backend.run { try Scenarios.outOfBandDataReportsPriority($0) }
    }

    // 16
    @Test(
        "a deregistered listener with a pending client stays silent (mio #1205)",
        arguments: Backend.all)
    func deregisteredReadyListenerStaysSilent(_ backend: Backend) throws {
        try backend.run { try Scenarios.deregisteredReadyListenerStaysSilent($0) }
    }

    // MARK: Threads

    // 17
    @Test("a waker on another thread wakes a select with no timeout", arguments: Backend.all)
    func wakerWakesBlockedSelect(_ backend: Backend) throws {
        try backend.run { try Scenarios.wakerWakesBlockedSelect($0) }
    }

    // 18
    @Test("many wakes before a select coalesce into one event", arguments: Backend.all)
    func wakesCoalesce(_ backend: Backend) throws {
        try backend.run { try Scenarios.wakesCoalesce($0) }
    }

    // 19
    @Test(
        "register, reregister and deregister from three threads while select blocks",
        arguments: Backend.all)
    func registryIsThreadSafe(_ backend: Backend) throws {
        try backend.run { try Scenarios.registryIsThreadSafe($0) }
    }

    // 20
    @Test(
        "registry and waker are Sendable and work from another thread",
        arguments: Backend.all)
    func registryAndWakerCrossThreads(_ backend: Backend) throws {
        try backend.run { try Scenarios.registryAndWakerCrossThreads($0) }
    }

    // MARK: Reuse and errors

    // 21
    @Test("a reused descriptor number never reports the old token", arguments: Backend.all)
    func reusedNumberGetsNoStaleToken(_ backend: Backend) throws {
        try backend.run { try Scenarios.reusedNumberGetsNoStaleToken($0) }
    }

    // 22
    @Test("an invalid or closed descriptor fails with EBADF", arguments: Backend.all)
    func invalidDescriptorIsEBADF(_ backend: Backend) throws {
        try backend.run { try Scenarios.invalidDescriptorIsEBADF($0) }
    }

    // 23
    @Test("timeouts of 0, 1 ms and 50 ms are honoured", arguments: Backend.all)
    func timeoutsAreHonoured(_ backend: Backend) throws {
        try backend.run { try Scenarios.timeoutsAreHonoured($0) }
    }

    // 23
    @Test("sub-millisecond timeouts sleep instead of spinning", arguments: Backend.all)
    func subMillisecondTimeoutsDoNotSpin(_ backend: Backend) throws {
        try backend.run { try Scenarios.subMillisecondTimeoutsDoNotSpin($0) }
    }

    // 23
    @Test("no timeout blocks until a wake", arguments: Backend.all)
    func noTimeoutBlocksUntilWake(_ backend: Backend) throws {
        try backend.run { try Scenarios.noTimeoutBlocksUntilWake($0) }
    }

    // 24
    @Test("a signal during select does not surface as an error", arguments: Backend.all)
    func signalDuringSelectIsNotAnError(_ backend: Backend) throws {
        try backend.run { try Scenarios.signalDuringSelectIsNotAnError($0) }
    }

    // 25
    @Test(
        "UDP and Unix datagram sockets: writable at once, readable on a datagram",
        arguments: Backend.all)
    func datagramSockets(_ backend: Backend) throws {
        try backend.run { try Scenarios.datagramSockets($0) }
    }

    // 26
    @Test(
        "pipe ends: readable on write, closes reported to the other end",
        arguments: Backend.all)
    func pipeEnds(_ backend: Backend) throws {
        try backend.run { try Scenarios.pipeEnds($0) }
    }

    // 27
    @Test("a registry or waker outliving its selector fails with EBADF", arguments: Backend.all)
    func registryOutlivingSelectorFails(_ backend: Backend) throws {
        try backend.run { try Scenarios.registryOutlivingSelectorFails($0) }
    }
}
