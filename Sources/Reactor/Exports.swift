// Reactor's API names the layers below it: `Event`, `Token`, `Interest` and the selectors
// (Selector), the sockets and `SocketAddress` (Net), `Errno` (SysCalls). `import Reactor` brings
// them all.
@_exported import Net
@_exported import Selector
