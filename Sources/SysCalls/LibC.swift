#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The C library's calls whose names `Sys` reuses (`Sys.read`, `Sys.close`, …). Inside
// `extension Sys` a bare `read` means `Sys.read`, and naming the C module (`Glibc.read`) would
// tie the file to one C library; at file scope a bare `read` is the C library's, whichever
// module provides it. Each helper is the call and nothing else, inlined away (`@inlinable`
// where an inlinable `Sys` wrapper calls it, so other modules inline the C call itself).

@inlinable @inline(__always)
func libcRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inlinable @inline(__always)
func libcWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}

@inlinable @inline(__always)
func libcReadv(_ fd: Int32, _ vectors: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    readv(fd, vectors, count)
}

@inlinable @inline(__always)
func libcWritev(_ fd: Int32, _ vectors: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    writev(fd, vectors, count)
}

@inlinable @inline(__always)
func libcSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}

@inlinable @inline(__always)
func libcRecv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32)
    -> Int
{
    recv(fd, buffer, count, flags)
}

@inline(__always)
func libcClose(_ fd: Int32) -> Int32 { close(fd) }

@inline(__always)
func libcPipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 { pipe(fds) }

@inline(__always)
func libcOpen(_ path: String, _ flags: Int32) -> Int32 { open(path, flags) }

@inline(__always)
func libcSocket(_ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
    socket(domain, type, proto)
}

@inline(__always)
func libcSocketpair(
    _ domain: Int32, _ type: Int32, _ proto: Int32, _ fds: UnsafeMutablePointer<Int32>
) -> Int32 {
    socketpair(domain, type, proto, fds)
}

@inline(__always)
func libcBind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    bind(fd, address, length)
}

@inline(__always)
func libcListen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }

@inline(__always)
func libcAccept(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    accept(fd, address, length)
}

@inline(__always)
func libcConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

@inline(__always)
func libcShutdown(_ fd: Int32, _ how: Int32) -> Int32 { shutdown(fd, how) }

@inline(__always)
func libcSendto(
    _ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32,
    _ address: UnsafePointer<sockaddr>, _ length: socklen_t
) -> Int {
    sendto(fd, buffer, count, flags, address, length)
}

@inline(__always)
func libcSendmsg(_ fd: Int32, _ message: UnsafePointer<msghdr>, _ flags: Int32) -> Int {
    sendmsg(fd, message, flags)
}

@inline(__always)
func libcRecvmsg(_ fd: Int32, _ message: UnsafeMutablePointer<msghdr>, _ flags: Int32) -> Int {
    recvmsg(fd, message, flags)
}

@inline(__always)
func libcGetsockopt(
    _ fd: Int32, _ level: Int32, _ option: Int32, _ value: UnsafeMutableRawPointer?,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Int32 {
    getsockopt(fd, level, option, value, length)
}

@inline(__always)
func libcSetsockopt(
    _ fd: Int32, _ level: Int32, _ option: Int32, _ value: UnsafeRawPointer?, _ length: socklen_t
) -> Int32 {
    setsockopt(fd, level, option, value, length)
}

@inline(__always)
func libcGetsockname(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Int32 {
    getsockname(fd, address, length)
}

@inline(__always)
func libcGetpeername(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Int32 {
    getpeername(fd, address, length)
}

@inline(__always)
func libcPoll(_ fds: UnsafeMutablePointer<pollfd>?, _ count: Int, _ timeout: Int32) -> Int32 {
    poll(fds, nfds_t(count), timeout)
}

@inline(__always)
func libcFstat(_ fd: Int32, _ info: UnsafeMutablePointer<stat>) -> Int32 { fstat(fd, info) }

@inline(__always)
func libcLstat(_ path: String, _ info: UnsafeMutablePointer<stat>) -> Int32 { lstat(path, info) }

@inline(__always)
func libcUnlink(_ path: String) -> Int32 { unlink(path) }

@inline(__always)
func libcIfNametoindex(_ name: String) -> UInt32 { if_nametoindex(name) }

@inline(__always)
func libcExit(_ status: Int32) -> Never { exit(status) }

// glibc types getrlimit's resource as an enum; musl and Darwin take the plain int.
@inline(__always)
func libcGetOpenFileLimit(_ limit: UnsafeMutablePointer<rlimit>) -> Int32 {
    #if canImport(Glibc)
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), limit)
    #else
    getrlimit(RLIMIT_NOFILE, limit)
    #endif
}

@inline(__always)
func libcSetOpenFileLimit(_ limit: UnsafePointer<rlimit>) -> Int32 {
    #if canImport(Glibc)
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), limit)
    #else
    setrlimit(RLIMIT_NOFILE, limit)
    #endif
}
