extension Sys {
    /// exit(3): flushes stdio, runs atexit handlers and ends the process with `status`.
    public static func exit(_ status: Int32) -> Never {
        libcExit(status)
    }
}
