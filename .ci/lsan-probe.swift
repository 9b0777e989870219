// Checks .ci/lsan.supp (see .ci/run): run with an argument, this leaks 1,000 retain cycles of
// two objects allocated in Swift code, and LeakSanitizer must still report them with the
// suppressions on. (Many, because LSan scans conservatively: a stale pointer left in a register
// or on the stack may keep one cycle looking reachable, never all of them.)
final class Node {
    var next: Node?
    var payload = [UInt8](repeating: 1, count: 100)
}

@inline(never) func makeCycle() {
    let a = Node()
    let b = Node()
    a.next = b
    b.next = a
}

if CommandLine.arguments.count > 1 {
    for _ in 0..<1000 { makeCycle() }
}
print("probe done")
