#include "CTaskCancellation.h"

// The runtime's own signatures (Swift calling convention; the handler receives its context in
// the Swift context register).
typedef __attribute__((swiftcall)) void (*ctc_swift_handler)(
    void *context __attribute__((swift_context)));
extern __attribute__((swiftcall)) void *swift_task_addCancellationHandler(
    ctc_swift_handler handler, void *context);
extern __attribute__((swiftcall)) void swift_task_removeCancellationHandler(void *record);

static __attribute__((swiftcall)) void ctc_forward(void *context __attribute__((swift_context))) {
    const ctc_target *target = context;
    target->run(target->owner, target->tag, __atomic_load_n(&target->generation, __ATOMIC_RELAXED));
}

void *ctc_add(ctc_target *target) {
#if __has_feature(ptrauth_calls)
    // The runtime authenticates the handler with its own discriminator (arm64e only).
    ctc_swift_handler handler = __builtin_ptrauth_sign_unauthenticated(
        __builtin_ptrauth_strip((void *)ctc_forward, 0), 0, 3848);
    return swift_task_addCancellationHandler(handler, target);
#else
    return swift_task_addCancellationHandler(ctc_forward, target);
#endif
}

void ctc_remove(void *record) {
    swift_task_removeCancellationHandler(record);
}
