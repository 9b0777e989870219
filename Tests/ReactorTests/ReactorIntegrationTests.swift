import TestSupport
import Testing

// The Reactor on real backends: each scenario is written once, generic over the selector
// (`Scenarios.x<S: EventSelector>(_: S.Type)`), and run against every backend. Serialized,
// because each test counts the process's descriptors before and after.
@Suite("Reactor integration", .serialized, .opensDescriptors)
struct ReactorIntegrationTests {
    @Test(
        "1000 concurrent echo connections get back exactly the bytes they sent",
        arguments: Backend.all)
    func echoThousandConnections(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) {
            try EchoScenarios.thousandConnectionsEchoIdentically($0)
        }
    }

    @Test(
        "a client that never reads is paused by the high watermark, not buffered without bound",
        arguments: Backend.all)
    func nonReadingClientIsPaused(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) {
            try BackpressureScenarios.nonReadingClientIsPausedNotBuffered($0)
        }
    }

    @Test(
        "at the descriptor limit the echo-server keeps serving, sheds the excess, does not spin",
        arguments: Backend.all)
    func descriptorLimit(_ backend: Backend) throws {
        try backend.requireAvailable()
        try checkingDescriptorLeaks(scope: .ownedPorts) {
            try DescriptorLimitScenarios.survivesEMFILE(backend: "\(backend)")
        }
    }

    @Test(
        "the idle timeout closes an idle connection and spares an active one",
        arguments: Backend.all)
    func idleTimeout(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) { try IdleTimeoutScenarios.idleClosesActiveStays($0) }
    }

    @Test(
        "a ReactorGroup of two serves connections on both reactors and stops cleanly",
        arguments: Backend.all)
    func reactorGroupServesOnBoth(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) { try GroupScenarios.twoReactorsShareThePort($0) }
    }

    @Test(
        "a peer's EOF with output queued: every queued byte arrives before the close",
        arguments: Backend.all)
    func eofWithQueuedOutput(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) {
            try FailureScenarios.eofWithQueuedOutputFlushesFirst($0)
        }
    }

    @Test(
        "writing to a reset peer reports EPIPE or ECONNRESET and never raises SIGPIPE",
        arguments: Backend.all)
    func writeAfterReset(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) {
            try FailureScenarios.writeAfterResetNeverRaisesSIGPIPE($0)
        }
    }

    @Test(
        "half-close: the server keeps writing after the peer's EOF, then closes",
        arguments: Backend.all)
    func halfClose(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) { try FailureScenarios.halfCloseKeepsWriting($0) }
    }

    @Test(
        "a Handle's execute and schedule(after:) run on the reactor thread blocked in select",
        arguments: Backend.all)
    func handleFromAnotherThread(_ backend: Backend) throws {
        try backend.run(scope: .ownedPorts) {
            try HandleScenarios.executeAndScheduleWakeABlockedReactor($0)
        }
    }
}
