// Net's API names SysCalls' types (`FileDescriptor`, `Errno`, `IOResult`): `import Net` brings
// them.
@_exported import SysCalls
