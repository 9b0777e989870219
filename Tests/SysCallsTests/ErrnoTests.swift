import Glibc
import SysCalls
import Testing

@Suite("Errno")
struct ErrnoTests {
    @Test("known codes have their symbolic names")
    func knownCodesAreNamed() {
        #expect(Errno.ECONNREFUSED.name == "ECONNREFUSED")
        #expect(Errno.EAGAIN.name == "EAGAIN")
        #expect(Errno.ENAMETOOLONG.name == "ENAMETOOLONG")
        #expect(Errno(ENOTDIR).name == "ENOTDIR")
    }

    @Test("an unknown code is named by its number")
    func unknownCodeIsNamedByNumber() {
        #expect(Errno(9999).name == "errno 9999")
    }

    @Test("the message is the C library's text")
    func messageIsStrerror() {
        #expect(Errno.ECONNREFUSED.message == "Connection refused")
        #expect(Errno.EBADF.message == "Bad file descriptor")
    }

    @Test("description is \"call: message (NAME)\", without the call when there is none")
    func descriptionNamesCallMessageAndSymbol() {
        #expect(
            Errno(ECONNREFUSED, call: "connect").description
                == "connect: Connection refused (ECONNREFUSED)")
        #expect(Errno.EBADF.description == "Bad file descriptor (EBADF)")
    }

    @Test("equality and hashing compare the code, not the call")
    func equalityIgnoresTheCall() {
        #expect(Errno(EAGAIN, call: "read") == Errno(EAGAIN, call: "write"))
        #expect(Errno(EAGAIN, call: "read") != Errno.EBADF)
        #expect(Set([Errno(EPIPE, call: "send"), Errno(EPIPE, call: "write")]).count == 1)
    }

    @Test("an Errno constant matches a thrown error in a catch pattern")
    func constantsMatchInCatch() {
        func fail() throws { throw Errno(ECONNRESET, call: "recv") }
        do {
            try fail()
            Issue.record("did not throw")
        } catch Errno.EAGAIN {
            Issue.record("matched the wrong code")
        } catch Errno.ECONNRESET {
            // expected
        } catch {
            Issue.record("no pattern matched \(error)")
        }
    }

    @Test("a failing wrapper throws a typed Errno tagged with the call")
    func wrapperThrowsTypedErrnoWithCallName() {
        do {
            try Sys.close(FileDescriptor(-1))
            Issue.record("close(-1) succeeded")
        } catch {
            // `error` is statically an Errno: Sys.close throws(Errno).
            #expect(error == .EBADF)
            #expect(error.description == "close: Bad file descriptor (EBADF)")
        }
    }

    @Test("Errno.current reads the thread's errno")
    func currentReadsErrno() {
        errno = ENOENT
        let error = Errno.current("open")
        #expect(error == .ENOENT)
        #expect(error.description == "open: No such file or directory (ENOENT)")
    }
}
