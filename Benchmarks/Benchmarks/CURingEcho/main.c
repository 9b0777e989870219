// c-uring-echo: the floor for the io_uring path of the echo benchmarks. A single-threaded
// io_uring echo server on raw syscalls (no liburing): one multishot accept, one multishot
// recv per connection into a ring of provided buffers (IORING_REGISTER_PBUF_RING), and a send
// from the very buffer the bytes arrived in; the buffer goes back to the ring when its send
// has completed. Each loop turn makes one io_uring_enter that submits what the turn queued
// and waits for at least one completion (IORING_ENTER_GETEVENTS).
//
// Buffers are large enough (32 KiB by default) that a 16 KiB message arrives in one piece;
// 2048 of them cover 1000 connections each holding one while its echo is being sent, with
// room to spare. The pool is faulted in at start-up, so it is part of the resident memory
// before the first connection, not of any connection's.
//
// One send at a time per connection: further buffers that arrive while a send is in flight
// wait in a per-connection queue (linked through the buffers), so a partial send cannot
// reorder bytes. A connection is closed once its recv has ended (EOF, error) and its queue
// is empty, so no completion can name a descriptor that has been reused.
//
//     c-uring-echo [--port P] [--buffer-size BYTES] [--buffers N]
//         (listens on 127.0.0.1; SIGINT/SIGTERM exit cleanly; where the kernel refuses
//         io_uring it prints "c-uring-echo: io_uring unavailable: <reason>" and exits 3)
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 16384
#define BUFFER_GROUP 0

// user_data: operation in the top byte, buffer id in bits 32-47, descriptor in the low 32.
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_SIGNAL = 4 };

static uint64_t tag(unsigned op, unsigned bid, int fd) {
    return (uint64_t)op << 56 | (uint64_t)(bid & 0xffff) << 32 | (uint32_t)fd;
}

// --- ring access (the memory orders liburing uses: the kernel reads our tails with acquire
// and we read its tails with acquire; each side publishes with release) ----------------------

static int ring_fd;
static unsigned *sq_khead, *sq_ktail, sq_mask, sq_entries;
static struct io_uring_sqe *sqes;
static unsigned sqe_tail; // ours; published to *sq_ktail by flush_sq
static unsigned *cq_khead, *cq_ktail, cq_mask;
static struct io_uring_cqe *cqes;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void unavailable(const char *what, int error) {
    fprintf(stderr, "c-uring-echo: io_uring unavailable: %s: %s\n", what, strerror(error));
    exit(3);
}

static int enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
    return (int)syscall(__NR_io_uring_enter, ring_fd, to_submit, min_complete, flags, NULL,
                        (size_t)(_NSIG / 8));
}

// Makes every queued SQE visible to the kernel; returns how many it has not consumed yet.
static unsigned flush_sq(void) {
    atomic_store_explicit((_Atomic unsigned *)sq_ktail, sqe_tail, memory_order_release);
    // Without SQPOLL only io_uring_enter moves the head, and we are that thread.
    return sqe_tail - atomic_load_explicit((_Atomic unsigned *)sq_khead, memory_order_relaxed);
}

static void publish_buffers(void);

static struct io_uring_sqe *get_sqe(void) {
    unsigned head = atomic_load_explicit((_Atomic unsigned *)sq_khead, memory_order_relaxed);
    if (sqe_tail - head >= sq_entries) {
        // Full: submit without waiting (completions stay queued for the turn's reaping).
        publish_buffers();
        for (;;) {
            int submitted = enter(flush_sq(), 0, 0);
            if (submitted >= 0 || (errno != EINTR && errno != EAGAIN && errno != EBUSY)) break;
        }
        head = atomic_load_explicit((_Atomic unsigned *)sq_khead, memory_order_relaxed);
        if (sqe_tail - head >= sq_entries) die("io_uring_enter (submission queue stuck)");
    }
    struct io_uring_sqe *sqe = &sqes[sqe_tail & sq_mask];
    sqe_tail++;
    memset(sqe, 0, sizeof *sqe);
    return sqe;
}

static void setup_ring(void) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    // One thread submits, and completions are only wanted when it enters to wait for them.
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                   IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = CQ_ENTRIES;
    ring_fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &params);
    if (ring_fd < 0 && errno == EINVAL) { // a kernel before 6.1: without the task-run flags
        memset(&params, 0, sizeof params);
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = CQ_ENTRIES;
        ring_fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &params);
    }
    if (ring_fd < 0) unavailable("io_uring_setup", errno);
    if (!(params.features & IORING_FEAT_NODROP)) unavailable("features", ENOTSUP);

    size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    int single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && cq_size > sq_size) sq_size = cq_size;
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
                    IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) die("mmap (submission ring)");
    char *cq = sq;
    if (!single) {
        cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
                  IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED) die("mmap (completion ring)");
    }
    sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) die("mmap (submission entries)");

    sq_khead = (unsigned *)(sq + params.sq_off.head);
    sq_ktail = (unsigned *)(sq + params.sq_off.tail);
    sq_mask = *(unsigned *)(sq + params.sq_off.ring_mask);
    sq_entries = *(unsigned *)(sq + params.sq_off.ring_entries);
    unsigned *array = (unsigned *)(sq + params.sq_off.array);
    for (unsigned i = 0; i < sq_entries; i++) array[i] = i; // slot i holds SQE i, always
    sqe_tail = *sq_ktail;
    cq_khead = (unsigned *)(cq + params.cq_off.head);
    cq_ktail = (unsigned *)(cq + params.cq_off.tail);
    cq_mask = *(unsigned *)(cq + params.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
}

// --- provided buffers ----------------------------------------------------------------------

static unsigned buffer_size = 32768, buffer_count = 2048;
static char *pool;
static struct io_uring_buf_ring *buffer_ring;
static uint16_t buffer_tail;    // ours; published to buffer_ring->tail by publish_buffers
static uint16_t published_tail; // what the kernel has been shown
static unsigned buffers_held;   // taken by completions and not yet returned
static uint32_t *buffer_length, *buffer_offset; // per buffer id: the echo being sent
static int32_t *buffer_next;                    // per buffer id: next in its connection's queue

static void return_buffer(unsigned bid) {
    struct io_uring_buf *slot = &buffer_ring->bufs[buffer_tail & (buffer_count - 1)];
    slot->addr = (uint64_t)(uintptr_t)(pool + (size_t)bid * buffer_size);
    slot->len = buffer_size;
    slot->bid = (uint16_t)bid;
    buffer_tail++;
    buffers_held--;
}

static void publish_buffers(void) {
    if (published_tail == buffer_tail) return;
    atomic_store_explicit((_Atomic uint16_t *)&buffer_ring->tail, buffer_tail,
                          memory_order_release);
    published_tail = buffer_tail;
}

static void setup_buffers(void) {
    size_t ring_bytes = buffer_count * sizeof(struct io_uring_buf);
    buffer_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (buffer_ring == MAP_FAILED) die("mmap (buffer ring)");
    // Faulted in now: the pool is the server's fixed cost, not any connection's.
    pool = mmap(NULL, (size_t)buffer_count * buffer_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (pool == MAP_FAILED) die("mmap (buffer pool)");
    buffer_length = calloc(buffer_count, sizeof *buffer_length);
    buffer_offset = calloc(buffer_count, sizeof *buffer_offset);
    buffer_next = calloc(buffer_count, sizeof *buffer_next);
    if (!buffer_length || !buffer_offset || !buffer_next) die("calloc");

    struct io_uring_buf_reg registration;
    memset(&registration, 0, sizeof registration);
    registration.ring_addr = (uint64_t)(uintptr_t)buffer_ring;
    registration.ring_entries = buffer_count;
    registration.bgid = BUFFER_GROUP;
    if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &registration, 1) <
        0)
        unavailable("IORING_REGISTER_PBUF_RING", errno);
    buffers_held = buffer_count;
    for (unsigned bid = 0; bid < buffer_count; bid++) return_buffer(bid);
    publish_buffers();
}

// --- connections ---------------------------------------------------------------------------

struct connection {
    int32_t send_head, send_tail; // buffer ids queued for sending; the head is in flight
    uint8_t recv_armed;           // a multishot recv is live
    uint8_t starved;              // its recv ended for want of buffers (ENOBUFS)
    uint8_t closing;              // no more reading: close once the queue is empty
    uint8_t open;
};

static struct connection *connections; // indexed by descriptor
static size_t connection_capacity;
static int *starved;                   // descriptors waiting for buffers (may hold stale ones)
static size_t starved_count, starved_capacity;
static int listener;
static int accept_paused; // accept failed for want of descriptors: re-armed when one closes

static void arm_accept(void) {
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = listener;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_CLOEXEC;
    sqe->user_data = tag(OP_ACCEPT, 0, listener);
}

static void arm_recv(int fd) {
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    sqe->user_data = tag(OP_RECV, 0, fd);
    connections[fd].recv_armed = 1;
}

static void submit_send(int fd, unsigned bid) {
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)(pool + (size_t)bid * buffer_size + buffer_offset[bid]);
    sqe->len = buffer_length[bid] - buffer_offset[bid];
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = tag(OP_SEND, bid, fd);
}

static void track(int fd) {
    if ((size_t)fd >= connection_capacity) {
        size_t capacity = (size_t)fd * 2 + 64;
        connections = realloc(connections, capacity * sizeof *connections);
        if (!connections) die("realloc");
        memset(connections + connection_capacity, 0,
               (capacity - connection_capacity) * sizeof *connections);
        connection_capacity = capacity;
    }
    struct connection *c = &connections[fd];
    memset(c, 0, sizeof *c);
    c->send_head = c->send_tail = -1;
    c->open = 1;
}

// Closes the descriptor once nothing in the ring refers to it any more.
static void close_if_done(int fd) {
    struct connection *c = &connections[fd];
    if (!c->closing || c->recv_armed || c->send_head >= 0) return;
    close(fd);
    memset(c, 0, sizeof *c);
    if (accept_paused) {
        accept_paused = 0;
        arm_accept();
    }
}

// Ends a connection whose send failed: its queued echoes go back to the ring, and a live
// recv is ended by shutting the socket down (it then completes with 0).
static void abandon(int fd) {
    struct connection *c = &connections[fd];
    for (int32_t bid = c->send_head; bid >= 0; bid = buffer_next[bid])
        return_buffer((unsigned)bid);
    c->send_head = c->send_tail = -1;
    c->closing = 1;
    c->starved = 0;
    if (c->recv_armed) shutdown(fd, SHUT_RDWR);
}

static void on_accept(struct io_uring_cqe *cqe) {
    if (cqe->res >= 0) {
        int fd = cqe->res;
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        track(fd);
        arm_recv(fd);
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (cqe->res == -EMFILE || cqe->res == -ENFILE) {
            accept_paused = 1; // retried when a connection closes, not in a hot loop
        } else {
            arm_accept();
        }
    }
}

static void on_recv(int fd, struct io_uring_cqe *cqe) {
    struct connection *c = &connections[fd];
    int has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (has_buffer) buffers_held++;
    if (!(cqe->flags & IORING_CQE_F_MORE)) c->recv_armed = 0;
    if (cqe->res > 0 && has_buffer) {
        if (c->closing) {
            return_buffer(bid);
        } else {
            buffer_length[bid] = (uint32_t)cqe->res;
            buffer_offset[bid] = 0;
            buffer_next[bid] = -1;
            if (c->send_head < 0) {
                c->send_head = c->send_tail = (int32_t)bid;
                submit_send(fd, bid);
            } else {
                buffer_next[c->send_tail] = (int32_t)bid;
                c->send_tail = (int32_t)bid;
            }
        }
    } else {
        if (has_buffer) return_buffer(bid);
        if (cqe->res == -ENOBUFS) {
            if (!c->closing && !c->starved) {
                if (starved_count == starved_capacity) {
                    starved_capacity = starved_capacity * 2 + 64;
                    starved = realloc(starved, starved_capacity * sizeof *starved);
                    if (!starved) die("realloc");
                }
                starved[starved_count++] = fd;
                c->starved = 1;
            }
        } else if (cqe->res <= 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
            c->closing = 1; // EOF or an error: echo what is queued, then close
        }
    }
    // A multishot recv that ended while the connection goes on (the kernel may end one at
    // any time, e.g. when the completion queue overflowed) is armed again.
    if (!c->recv_armed && !c->closing && !c->starved) arm_recv(fd);
    close_if_done(fd);
}

static void on_send(int fd, unsigned bid, struct io_uring_cqe *cqe) {
    struct connection *c = &connections[fd];
    if (cqe->res > 0) {
        buffer_offset[bid] += (uint32_t)cqe->res;
        if (buffer_offset[bid] < buffer_length[bid]) {
            submit_send(fd, bid); // partial: the rest, before anything queued behind it
            return;
        }
        c->send_head = buffer_next[bid];
        if (c->send_head < 0) c->send_tail = -1;
        return_buffer(bid);
        if (c->send_head >= 0) submit_send(fd, (unsigned)c->send_head);
    } else if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
        submit_send(fd, bid);
        return;
    } else {
        abandon(fd);
    }
    close_if_done(fd);
}

// Re-arms the recvs that ran out of buffers; called while the ring has some again.
static void feed_starved(void) {
    size_t count = starved_count;
    starved_count = 0;
    for (size_t i = 0; i < count; i++) {
        int fd = starved[i];
        struct connection *c = &connections[fd];
        if (!c->starved) continue; // closed (and maybe reused) since
        c->starved = 0;
        if (c->open && !c->closing && !c->recv_armed) arm_recv(fd);
    }
}

int main(int argc, char **argv) {
    int port = 7003;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--buffer-size") == 0) buffer_size = (unsigned)atoi(argv[i + 1]);
        if (strcmp(argv[i], "--buffers") == 0) buffer_count = (unsigned)atoi(argv[i + 1]);
    }
    if (buffer_count == 0 || buffer_count > 32768 || (buffer_count & (buffer_count - 1)) ||
        buffer_size == 0) {
        fprintf(stderr, "c-uring-echo: --buffers must be a power of two up to 32768, "
                        "--buffer-size positive\n");
        return 2;
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) die("socket");
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
    if (listen(listener, 4096) < 0) die("listen");

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) die("signalfd");

    setup_ring();
    setup_buffers();
    arm_accept();
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = signal_fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = tag(OP_SIGNAL, 0, signal_fd);

    printf("c-uring-echo listening on 127.0.0.1:%d (provided buffers: %u × %u B = %.1f MiB)\n",
           port, buffer_count, buffer_size, (double)buffer_count * buffer_size / 1048576);
    fflush(stdout);

    for (;;) {
        publish_buffers();
        if (enter(flush_sq(), 1, IORING_ENTER_GETEVENTS) < 0 && errno != EINTR &&
            errno != EAGAIN && errno != EBUSY)
            die("io_uring_enter");
        unsigned head = *cq_khead;
        for (;;) {
            unsigned tail = atomic_load_explicit((_Atomic unsigned *)cq_ktail,
                                                 memory_order_acquire);
            if (head == tail) break;
            for (; head != tail; head++) {
                struct io_uring_cqe *cqe = &cqes[head & cq_mask];
                int fd = (int)(uint32_t)cqe->user_data;
                unsigned bid = (unsigned)(cqe->user_data >> 32) & 0xffff;
                switch ((unsigned)(cqe->user_data >> 56)) {
                case OP_ACCEPT: on_accept(cqe); break;
                case OP_RECV: on_recv(fd, cqe); break;
                case OP_SEND: on_send(fd, bid, cqe); break;
                case OP_SIGNAL:
                    printf("c-uring-echo stopped\n");
                    return 0;
                }
            }
            atomic_store_explicit((_Atomic unsigned *)cq_khead, head, memory_order_release);
        }
        if (starved_count && buffers_held < buffer_count) {
            publish_buffers();
            feed_starved();
        }
    }
}
