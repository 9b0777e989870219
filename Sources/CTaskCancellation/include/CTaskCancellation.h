#ifndef C_TASK_CANCELLATION_H
#define C_TASK_CANCELLATION_H

// A task cancellation handler that the calling async function adds and removes itself, for
// code that waits on the executor it is called on (`nonisolated(nonsending)`):
// `withTaskCancellationHandler` takes its operation as a closure that is not, so the closure
// and the code after the call each switch to the generic executor, and for a task with an
// executor preference every such switch looks the preference up under the task's status
// lock. These call the Swift runtime's entry points that `withTaskCancellationHandler` itself
// calls (swift_task_addCancellationHandler / swift_task_removeCancellationHandler, exported
// by libswift_Concurrency), with a C handler that forwards to the handler set with
// `ctc_set_handler`.

#ifdef __cplusplus
extern "C" {
#endif

/// What a cancelled task's handler calls, with the context given to `ctc_add`, on the thread
/// that cancels the task.
typedef void (*ctc_handler)(const void *context);

/// Sets the handler every record added with `ctc_add` calls (one per process: setting it
/// again with the same function is harmless; with another, records call the latest).
void ctc_set_handler(ctc_handler handler);

/// Adds a cancellation handler to the current task (call only from code running in a task):
/// when the task is cancelled, the handler is called with `context`. If the task is cancelled
/// already it is called at once, on this thread, before this returns. Returns what
/// `ctc_remove` takes (NULL when it ran at once).
void *ctc_add(const void *context);

/// Removes the handler `ctc_add` returned (the innermost one the task has: adds and removes
/// nest, on the same task). When this returns the handler is not running and will not run.
void ctc_remove(void *record);

#ifdef __cplusplus
}
#endif

#endif
