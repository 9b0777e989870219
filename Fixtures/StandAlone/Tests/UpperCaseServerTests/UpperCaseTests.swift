import ReactorTesting
import Testing
import UpperCaseServer

@Test("a DefaultSelector delegate, driven by the test kit, with virtual time")
func upperCase() throws {
    let harness = try ConnectionHarness(
        delegate: UpperCase(), options: ConnectionOptions(idleTimeout: .seconds(60)))
    try harness.send("hel")
    #expect(try harness.receivedString() == "")
    try harness.send("lo\nworld\n")
    #expect(try harness.receivedString() == "HELLO\nWORLD\n")
    try harness.advanceTime(by: .seconds(60))
    #expect(harness.closeReason == .idleTimeout)
}
