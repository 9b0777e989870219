#include "CTaskCancellation.h"

// The runtime's own signatures (Swift calling convention; the handler receives its context in
// the Swift context register).
typedef __attribute__((swiftcall)) void (*ctc_swift_handler)(
    void *context __attribute__((swift_context)));
extern __attribute__((swiftcall)) void *swift_task_addCancellationHandler(
    ctc_swift_handler handler, void *context);
extern __attribute__((swiftcall)) void swift_task_removeCancellationHandler(void *record);

static ctc_handler ctc_the_handler;

void ctc_set_handler(ctc_handler handler) {
    __atomic_store_n(&ctc_the_handler, handler, __ATOMIC_RELEASE);
}

static __attribute__((swiftcall)) void ctc_forward(void *context __attribute__((swift_context))) {
    ctc_handler handler = __atomic_load_n(&ctc_the_handler, __ATOMIC_ACQUIRE);
    if (handler) handler(context);
}

void *ctc_add(const void *context) {
#if __has_feature(ptrauth_calls)
    // The runtime authenticates the handler with its own discriminator (arm64e only).
    ctc_swift_handler handler = __builtin_ptrauth_sign_unauthenticated(
        __builtin_ptrauth_strip((void *)ctc_forward, 0), 0, 3848);
    return swift_task_addCancellationHandler(handler, (void *)context);
#else
    return swift_task_addCancellationHandler(ctc_forward, (void *)context);
#endif
}

void ctc_remove(void *record) {
    swift_task_removeCancellationHandler(record);
}
