import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

@Suite("README async example", .opensDescriptors)
struct AsyncReadmeTests {
    @Test("the README's async echo server and client run as written")
    func readmeAsyncEcho() async throws {
        try await Backend.epoll.runAsync { _ in
            let output = try await Self.readmeAsyncEcho()
            #expect(output == "ping\n")
        }
    }

    @Test("the README's async snippet is the code this suite runs")
    func readmeSnippetMatches() throws {
        let root = "\(#filePath)".split(separator: "/").dropLast(3).joined(separator: "/")
        let readme = try textOfFile("/" + root + "/README.md")
        let test = try textOfFile("\(#filePath)")
        let section = try #require(readme.firstRange(of: "**async/await.**"))
        let fence = try #require(
            readme[section.upperBound...].firstRange(of: "```swift\nimport Reactor\n\n"))
        let end = try #require(readme[fence.upperBound...].firstRange(of: "```"))
        let snippet = readme[fence.upperBound..<end.lowerBound]
        let begin = try #require(test.firstRange(of: "// README " + "begin\n"))
        let stop = try #require(test.firstRange(of: "        // README " + "end"))
        let code = test[begin.upperBound..<stop.lowerBound].split(
            separator: "\n", omittingEmptySubsequences: false
        )
        .map { $0.hasPrefix("        ") ? $0.dropFirst(8) : $0 }.joined(separator: "\n")
        #expect(code == String(snippet))
    }

    /// README.md's async snippet, verbatim between the markers but for `print`, which goes to
    /// the returned string.
    static func readmeAsyncEcho() async throws -> String {
        var printed = ""
        func print(_ text: String) { printed += text }
        // README begin
        let loop = try ReactorThread<DefaultSelector>()  // the reactor, running on its own thread
        let listener = try await AsyncListener.bind(
            SocketAddress(parsing: "127.0.0.1:0"), on: loop.handle)

        let server = Task {
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in listener.connections {  // ends when the listener closes
                    group.addTask {
                        for try await chunk in connection.inbound {  // ends at the client's EOF
                            try await connection.write(chunk)
                        }
                        await connection.close()
                    }
                }
            }
        }

        let client = try await AsyncConnection.connect(
            to: listener.localAddress, on: loop.handle, timeout: .seconds(5))
        try await client.write(Array("ping\n".utf8))
        try await client.shutdownOutput()  // the server sees EOF and closes
        var reply: [UInt8] = []
        for try await chunk in client.inbound { reply += chunk }
        print(String(decoding: reply, as: UTF8.self))  // ping
        await client.close()

        await listener.close()
        try await server.value
        loop.stop()
        try loop.join()
        // README end
        return printed
    }
}

/// The contents of the file at `path`, as UTF-8.
func textOfFile(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw Errno.current("fopen") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
