import SysCalls

/// The file a Unix socket created by binding to a path, remembered so that closing removes
/// that file and nothing else.
///
/// Binding never removes an existing file (a live server's socket, or anything else at that
/// path): bind fails with EADDRINUSE instead. On close the path is unlinked only if it still
/// names the very socket file this bind created (same device and inode), so a file another
/// process has since put there survives.
struct UnixSocketFile: Sendable {
    let path: String
    let device: UInt64
    let inode: UInt64

    /// Records the file `bind` just created at `address`'s path; nil for other addresses.
    init?(boundTo address: SocketAddress) {
        guard case .unix(let path) = address,
            let identity = try? Sys.lstat(path), identity.isSocket
        else { return nil }
        self.path = path
        device = identity.device
        inode = identity.inode
    }

    /// Unlinks the path if it is still the file recorded at bind time.
    func remove() {
        guard let identity = try? Sys.lstat(path),
            identity.device == device, identity.inode == inode
        else { return }
        try? Sys.unlink(path)
    }
}
