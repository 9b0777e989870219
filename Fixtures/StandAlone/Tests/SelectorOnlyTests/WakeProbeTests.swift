import SelectorOnly
import Testing

@Test("the Selector product alone: a waker's event carries its token")
func wake() throws {
    #expect(try wakeAndSelect(token: 42) == [42])
}

@Test("typed-throws buffer helpers work from outside the package")
func pipe() throws {
    #expect(try pipeRoundTrip([1, 2, 3]) == [1, 2, 3])
}
