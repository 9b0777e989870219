#ifndef C_TASK_CANCELLATION_H
#define C_TASK_CANCELLATION_H

// A task cancellation handler that the calling async function adds and removes itself, for
// code that waits on the executor it is called on (`nonisolated(nonsending)`):
// `withTaskCancellationHandler` takes its operation as a closure that is not, so the closure
// and the code after the call each switch to the generic executor, and for a task with an
// executor preference every such switch looks the preference up under the task's status
// lock. These call the Swift runtime's entry points that `withTaskCancellationHandler` itself
// calls (swift_task_addCancellationHandler / swift_task_removeCancellationHandler, exported
// by libswift_Concurrency), with a C handler that forwards to `target->run`.

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What a cancellation handler tells: the handler's `owner`, `tag` and the `generation`
/// armed with `ctc_target_arm`. Called on the thread that cancels the task.
typedef void (*ctc_handler)(const void *owner, uint32_t tag, uint32_t generation);

/// Where a handler points: set up once by its owner, armed before each add.
typedef struct ctc_target {
    ctc_handler run;
    const void *owner;
    uint32_t tag;
    uint32_t generation;  // read and written only through ctc_target_arm / the handler
    uint32_t armed;       // 1 while a handler that points here may run (debug checks)
} ctc_target;

/// Records `generation` as the one the next handler reports, and marks `target` armed.
static inline void ctc_target_arm(ctc_target *target, uint32_t generation) {
    __atomic_store_n(&target->generation, generation, __ATOMIC_RELAXED);
    __atomic_store_n(&target->armed, 1, __ATOMIC_RELAXED);
}

/// Marks `target` no longer armed (after `ctc_remove`).
static inline void ctc_target_disarm(ctc_target *target) {
    __atomic_store_n(&target->armed, 0, __ATOMIC_RELAXED);
}

/// Whether `target` is armed.
static inline int ctc_target_is_armed(const ctc_target *target) {
    return (int)__atomic_load_n(&target->armed, __ATOMIC_RELAXED);
}

/// Adds a cancellation handler to the current task (call only from code running in a task):
/// when the task is cancelled, `target->run` is called. If the task is cancelled already it is
/// called at once, on this thread, before this returns. Returns what `ctc_remove` takes.
void *ctc_add(ctc_target *target);

/// Removes the handler `ctc_add` returned (the innermost one the task has: adds and removes
/// nest). When this returns the handler is not running and will not run.
void ctc_remove(void *record);

#ifdef __cplusplus
}
#endif

#endif
