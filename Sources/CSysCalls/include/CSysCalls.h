// C declarations Swift's C library modules (Glibc, Musl, Darwin) do not import, and a few
// static inlines over them. Declarations and static inlines only: no logic lives here.
#ifndef CSYSCALLS_H
#define CSYSCALLS_H

// Every POSIX platform.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

// fcntl(2) is variadic, so Swift cannot call it; these fix its argument list.
static inline int csys_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
static inline int csys_fcntl(int fd, int cmd) { return fcntl(fd, cmd); }

static inline int csys_errno(void) { return errno; }
static inline void csys_set_errno(int value) { errno = value; }

// The calling thread's identity, distinct among live threads: on Linux the thread pointer
// (the TCB's address, which is also what glibc's pthread_self returns), read with one
// instruction where a call to pthread_self costs a call through the PLT; elsewhere
// pthread_self.
static inline unsigned long csys_current_thread(void) {
#if defined(__linux__) && defined(__x86_64__)
    unsigned long pointer;
    __asm__("movq %%fs:0, %0" : "=r"(pointer));
    return pointer;
#elif defined(__linux__) && defined(__aarch64__)
    unsigned long pointer;
    __asm__("mrs %0, tpidr_el0" : "=r"(pointer));
    return pointer;
#else
    return (unsigned long)pthread_self();
#endif
}

#ifdef __linux__
// No _GNU_SOURCE here: it would change struct definitions against Swift's Glibc module.
// The GNU calls we need are declared by hand below.
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
// Socket address and option types for the Net layer (sockaddr_in/in6/un, ip_mreqn, TCP_*).
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>

extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
extern int pipe2(int fds[2], int flags);
extern int pthread_setname_np(pthread_t thread, const char *name);

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

/// epoll_pwait2(2) by number: glibc < 2.35 has no wrapper. Returns -1/errno like the libc call.
static inline int csys_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                                    const struct timespec *timeout) {
    return (int)syscall(SYS_epoll_pwait2, epfd, events, maxevents, timeout, NULL, (size_t)0);
}

// recv, send and epoll_wait as raw system calls that return -errno instead of setting errno.
// glibc's wrappers are pthread cancellation points: in a multi-threaded process each call
// enables and disables asynchronous cancellation (about 60 instructions per echo), and errno
// is thread-local storage. swift-reactor never cancels threads, so on x86_64 and aarch64 these
// issue the instruction directly (as musl and Rust's rustix do); elsewhere they go through
// syscall(2) and convert errno.
#if defined(__x86_64__)
static inline __attribute__((always_inline)) long csys_raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5,
                                     long a6) {
    long result;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}
#elif defined(__aarch64__)
static inline __attribute__((always_inline)) long csys_raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5,
                                     long a6) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a1;
    register long x1 __asm__("x1") = a2;
    register long x2 __asm__("x2") = a3;
    register long x3 __asm__("x3") = a4;
    register long x4 __asm__("x4") = a5;
    register long x5 __asm__("x5") = a6;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory", "cc");
    return x0;
}
#else
static inline __attribute__((always_inline)) long csys_raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5,
                                     long a6) {
    long result = syscall(n, a1, a2, a3, a4, a5, a6);
    return result == -1 ? -(long)errno : result;
}
#endif

/// recvfrom(fd, buffer, length, flags, NULL, NULL): bytes received, or -errno.
static inline __attribute__((always_inline)) long csys_recv(int fd, void *buffer, size_t length, int flags) {
    return csys_raw_syscall6(SYS_recvfrom, fd, (long)buffer, (long)length, flags, 0, 0);
}
/// sendto(fd, buffer, length, flags, NULL, 0): bytes sent, or -errno.
static inline __attribute__((always_inline)) long csys_send(int fd, const void *buffer, size_t length, int flags) {
    return csys_raw_syscall6(SYS_sendto, fd, (long)buffer, (long)length, flags, 0, 0);
}
/// epoll_pwait(epfd, events, maxevents, timeout, NULL): ready count, or -errno.
static inline __attribute__((always_inline)) int csys_epoll_wait(int epfd, struct epoll_event *events, int maxevents,
                                  int timeout) {
    return (int)csys_raw_syscall6(SYS_epoll_pwait, epfd, (long)events, maxevents, timeout, 0, 8);
}

static inline int csys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

static inline int csys_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

// io_uring(7): the kernel's structs and constants, the three system calls by number (glibc has
// no wrappers), the ordered loads and stores the shared rings need, and SQE field stores
// (Swift cannot name the members of the SQE's anonymous unions portably).
#include <linux/io_uring.h>
#include <string.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe is 64 bytes");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "io_uring_cqe is 16 bytes");

/// io_uring_setup(2): the ring's descriptor, or -1/errno.
static inline int csys_io_uring_setup(unsigned entries, struct io_uring_params *params) {
    return (int)syscall(__NR_io_uring_setup, entries, params);
}
/// io_uring_enter(2) as a raw system call: submitted count, or -errno (the wait is the hot
/// path: no cancellation point, no thread-local errno).
static inline __attribute__((always_inline)) int csys_io_uring_enter(int fd, unsigned to_submit,
                                                                     unsigned min_complete,
                                                                     unsigned flags,
                                                                     const void *arg,
                                                                     size_t arg_size) {
    return (int)csys_raw_syscall6(__NR_io_uring_enter, fd, to_submit, min_complete, flags,
                                  (long)arg, (long)arg_size);
}
/// io_uring_register(2): the opcode's result, or -1/errno.
static inline int csys_io_uring_register(int fd, unsigned opcode, void *arg, unsigned count) {
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, count);
}

// The rings' heads and tails are shared with the kernel: the consumer of a ring loads the
// producer's index with acquire (the entries it guards are then visible) and publishes its own
// with release (its reads or writes of the entries happen before). liburing's
// io_uring_smp_load_acquire / io_uring_smp_store_release.
static inline __attribute__((always_inline)) uint32_t csys_load_acquire_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline __attribute__((always_inline)) void csys_store_release_u32(uint32_t *p,
                                                                         uint32_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}
/// A flag word the kernel updates (READ_ONCE): no ordering, but never torn or cached.
static inline __attribute__((always_inline)) uint32_t csys_load_relaxed_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/// Fills `sqe` (zeroed first) like liburing's io_uring_prep_rw.
static inline __attribute__((always_inline)) void csys_io_uring_prep(struct io_uring_sqe *sqe,
                                                                     uint8_t opcode, int fd,
                                                                     uint64_t addr, uint32_t len,
                                                                     uint64_t offset,
                                                                     uint64_t user_data) {
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = opcode;
    sqe->fd = fd;
    sqe->off = offset;
    sqe->addr = addr;
    sqe->len = len;
    sqe->user_data = user_data;
}
/// Sets a poll request's event mask (the 32-bit form, word-swapped on big-endian machines as
/// the kernel expects).
static inline __attribute__((always_inline)) void
csys_io_uring_sqe_set_poll_mask(struct io_uring_sqe *sqe, uint32_t mask) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    mask = (mask << 16) | (mask >> 16);
#endif
    sqe->poll32_events = mask;
}
/// Sets the operation's flag word (cancel_flags, timeout_flags, msg_flags, ...: one union).
static inline __attribute__((always_inline)) void
csys_io_uring_sqe_set_op_flags(struct io_uring_sqe *sqe, uint32_t flags) {
    sqe->rw_flags = flags;
}

/// Sets the SQE's IOSQE_* flags (e.g. IOSQE_BUFFER_SELECT).
static inline __attribute__((always_inline)) void
csys_io_uring_sqe_set_flags(struct io_uring_sqe *sqe, uint8_t flags) {
    sqe->flags = flags;
}
/// Sets the SQE's ioprio field, which recv and accept read as their own flags
/// (IORING_RECV_MULTISHOT, IORING_ACCEPT_MULTISHOT).
static inline __attribute__((always_inline)) void
csys_io_uring_sqe_set_ioprio(struct io_uring_sqe *sqe, uint16_t ioprio) {
    sqe->ioprio = ioprio;
}
/// Sets the provided-buffer group a buffer-selecting request takes its buffer from.
static inline __attribute__((always_inline)) void
csys_io_uring_sqe_set_buf_group(struct io_uring_sqe *sqe, uint16_t group) {
    sqe->buf_group = group;
}
/// Writes provided buffer `bid` (`addr`, `len`) into slot `index & mask` of a buffer ring; the
/// kernel sees it once the ring's tail is published (`csys_io_uring_buf_ring_tail`).
static inline __attribute__((always_inline)) void
csys_io_uring_buf_ring_put(struct io_uring_buf_ring *ring, uint32_t index, uint32_t mask,
                           uint64_t addr, uint32_t len, uint16_t bid) {
    struct io_uring_buf *buf = &ring->bufs[index & mask];
    buf->addr = addr;
    buf->len = len;
    buf->bid = bid;
}
/// A buffer ring's tail (overlaid on the first entry's reserved field), for a release store.
static inline __attribute__((always_inline)) uint16_t *
csys_io_uring_buf_ring_tail(struct io_uring_buf_ring *ring) {
    return &ring->tail;
}
/// A release store of a 16-bit ring index.
static inline __attribute__((always_inline)) void csys_store_release_u16(uint16_t *p,
                                                                         uint16_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

// The epoll_event struct is packed on x86_64; these keep Swift away from its layout.
static inline uint32_t csys_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline uint64_t csys_epoll_event_u64(const struct epoll_event *ev) { return ev->data.u64; }
static inline struct epoll_event csys_epoll_event_make(uint32_t events, uint64_t u64) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = u64;
    return ev;
}

#endif

/// Names the calling thread (debuggers, `top -H`). Each system spells it differently: Linux
/// (glibc, musl) names any thread, Darwin only the caller; elsewhere it is skipped.
static inline void csys_set_thread_name(const char *name) {
#if defined(__APPLE__)
    (void)pthread_setname_np(name);
#elif defined(__linux__)
    (void)pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}

#endif
