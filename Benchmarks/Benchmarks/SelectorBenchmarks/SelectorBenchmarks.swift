import Benchmark
import Selector

// Micro-benchmarks of the Selector layer, one set per backend.
//
// Every benchmark measures only `mallocCountTotal`, wall clock and throughput: asking the harness
// for OS or memory statistics makes it read /proc inside the measured region, which allocates
// and would hide whether `select` itself does. The "harness" benchmark shows that an empty
// iteration measures 0 mallocs, so any malloc reported below comes from the code under test.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        maxDuration: .seconds(2),
        maxIterations: 200_000
    )

    Benchmark("harness: empty iteration (measurement floor)") { _ in }

    #if os(Linux)
    selectorBenchmarks(EpollSelector.self)
    #endif
    selectorBenchmarks(PollSelector.self)
}

/// Registers every Selector benchmark for backend `S`; names start with its `backendName`.
func selectorBenchmarks<S: EventSelector>(_: S.Type) {
    let backend = S.backendName
    wakeBenchmarks(S.self, backend)
    readinessBenchmarks(S.self, backend)
}

/// Wake-to-return latency: same thread, and across threads (one hop and a two-hop round trip).
func wakeBenchmarks<S: EventSelector>(_: S.Type, _ backend: String) {
    let local = Holder<SameThreadWake<S>>()
    Benchmark("\(backend): wake() + select() on one thread") { benchmark in
        try local.value.wakeAndSelect()
    } setup: {
        local.value = try SameThreadWake<S>()
    } teardown: {
        local.release()
    }

    let spin = Holder<CrossThreadWake<S>>()
    Benchmark("\(backend): wake() -> other thread's select() returns (1 hop, waker spins)") {
        benchmark in
        try spin.value.oneHop()
    } setup: {
        spin.value = try CrossThreadWake<S>(mode: .acknowledgeByCounter)
    } teardown: {
        spin.release()
    }

    let pingPong = Holder<CrossThreadWake<S>>()
    Benchmark("\(backend): wake ping-pong between two selecting threads (round trip = 2 hops)") {
        benchmark in
        try pingPong.value.roundTrip()
    } setup: {
        pingPong.value = try CrossThreadWake<S>(mode: .acknowledgeByWake)
    } teardown: {
        pingPong.release()
    }
}

/// Events per second with 1000 registered descriptors, all made ready each iteration.
func readinessBenchmarks<S: EventSelector>(_: S.Type, _ backend: String) {
    // One iteration handles `ReadyDescriptors.count` (1000) events; `.kilo` makes the harness
    // report time and mallocs per event and throughput in events per second.
    precondition(ReadyDescriptors<S>.count == BenchmarkScalingFactor.kilo.rawValue)
    let perEvent = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 20_000
    )

    let cycle = Holder<ReadyDescriptors<S>>()
    Benchmark(
        "\(backend): 1000 ready sockets, write + select + drain (per event)",
        configuration: perEvent
    ) { benchmark in
        try cycle.value.makeReady()
        let collected = try cycle.value.selectAll(draining: true)
        if collected != ReadyDescriptors<S>.count {
            benchmark.error("collected \(collected) events, expected \(ReadyDescriptors<S>.count)")
        }
    } setup: {
        cycle.value = try ReadyDescriptors<S>()
    } teardown: {
        cycle.release()
    }

    let selectOnly = Holder<ReadyDescriptors<S>>()
    Benchmark(
        "\(backend): 1000 ready sockets, select() only (per event)",
        configuration: perEvent
    ) { benchmark in
        try selectOnly.value.makeReady()
        benchmark.startMeasurement()
        let collected = try selectOnly.value.selectAll(draining: false)
        benchmark.stopMeasurement()
        try selectOnly.value.drainAll()
        if collected != ReadyDescriptors<S>.count {
            benchmark.error("collected \(collected) events, expected \(ReadyDescriptors<S>.count)")
        }
    } setup: {
        selectOnly.value = try ReadyDescriptors<S>()
    } teardown: {
        selectOnly.release()
    }

    let idle = Holder<ReadyDescriptors<S>>()
    Benchmark("\(backend): select(timeout: 0), 1000 idle sockets registered") { benchmark in
        let collected = try idle.value.selectOnce()
        if collected != 0 { benchmark.error("idle select returned \(collected) events") }
    } setup: {
        idle.value = try ReadyDescriptors<S>()
    } teardown: {
        idle.release()
    }
}
