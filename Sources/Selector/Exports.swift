// Selector's API names SysCalls' types (`FileDescriptor`, `Errno`, `Sys.WakeKind`), and using a
// selector means reading and writing descriptors through `Sys`: `import Selector` brings them.
@_exported import SysCalls
