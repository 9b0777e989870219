#if os(Linux)
/// The platform's best readiness backend: `EpollSelector` on Linux, `KqueueSelector` on
/// Darwin and the BSDs, `PollSelector` elsewhere. Name it unless you need a particular one.
///
/// ```swift
/// let reactor = try Reactor<DefaultSelector>()
/// ```
public typealias DefaultSelector = EpollSelector
#elseif canImport(Darwin) || os(FreeBSD) || os(OpenBSD) || os(NetBSD)
/// The platform's best readiness backend: `EpollSelector` on Linux, `KqueueSelector` on
/// Darwin and the BSDs, `PollSelector` elsewhere. Name it unless you need a particular one.
public typealias DefaultSelector = KqueueSelector
#else
/// The platform's best readiness backend: `EpollSelector` on Linux, `KqueueSelector` on
/// Darwin and the BSDs, `PollSelector` elsewhere. Name it unless you need a particular one.
public typealias DefaultSelector = PollSelector
#endif
