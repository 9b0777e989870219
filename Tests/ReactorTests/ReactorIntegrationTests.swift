import Testing

// The Reactor on real backends: each scenario is written once, generic over the selector
// (`Scenarios.x<S: EventSelector>(_: S.Type)`), and run against every backend. Serialized,
// because each test counts the process's descriptors before and after.
@Suite("Reactor integration", .serialized)
struct ReactorIntegrationTests {
    @Test(
        "1000 concurrent echo connections get back exactly the bytes they sent",
        arguments: IntegrationBackend.all)
    func echoThousandConnections(_ backend: IntegrationBackend) throws {
        try backend.run { try EchoScenarios.thousandConnectionsEchoIdentically($0) }
    }

    @Test(
        "a client that never reads is paused by the high watermark, not buffered without bound",
        arguments: IntegrationBackend.all)
    func nonReadingClientIsPaused(_ backend: IntegrationBackend) throws {
        try backend.run { try BackpressureScenarios.nonReadingClientIsPausedNotBuffered($0) }
    }

    @Test(
        "at the descriptor limit the echo-server keeps serving, sheds the excess, does not spin",
        arguments: IntegrationBackend.all)
    func descriptorLimit(_ backend: IntegrationBackend) throws {
        try Leaks.check { try DescriptorLimitScenarios.survivesEMFILE(backend: "\(backend)") }
    }

    @Test(
        "the idle timeout closes an idle connection and spares an active one",
        arguments: IntegrationBackend.all)
    func idleTimeout(_ backend: IntegrationBackend) throws {
        try backend.run { try IdleTimeoutScenarios.idleClosesActiveStays($0) }
    }

    @Test(
        "a ReactorGroup of two serves connections on both reactors and stops cleanly",
        arguments: IntegrationBackend.all)
    func reactorGroupServesOnBoth(_ backend: IntegrationBackend) throws {
        try backend.run { try GroupScenarios.twoReactorsShareThePort($0) }
    }

    @Test(
        "a peer's EOF with output queued: every queued byte arrives before the close",
        arguments: IntegrationBackend.all)
    func eofWithQueuedOutput(_ backend: IntegrationBackend) throws {
        try backend.run { try FailureScenarios.eofWithQueuedOutputFlushesFirst($0) }
    }

    @Test(
        "writing to a reset peer reports EPIPE or ECONNRESET and never raises SIGPIPE",
        arguments: IntegrationBackend.all)
    func writeAfterReset(_ backend: IntegrationBackend) throws {
        try backend.run { try FailureScenarios.writeAfterResetNeverRaisesSIGPIPE($0) }
    }

    @Test(
        "half-close: the server keeps writing after the peer's EOF, then closes",
        arguments: IntegrationBackend.all)
    func halfClose(_ backend: IntegrationBackend) throws {
        try backend.run { try FailureScenarios.halfCloseKeepsWriting($0) }
    }

    @Test(
        "a Handle's execute and schedule(after:) run on the reactor thread blocked in select",
        arguments: IntegrationBackend.all)
    func handleFromAnotherThread(_ backend: IntegrationBackend) throws {
        try backend.run { try HandleScenarios.executeAndScheduleWakeABlockedReactor($0) }
    }
}
