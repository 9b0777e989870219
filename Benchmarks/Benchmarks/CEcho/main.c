// c-echo: the floor for the echo benchmarks. A single-threaded, level-triggered epoll echo
// server: read up to 64 KiB, write it straight back. Bytes the kernel does not take are
// buffered per connection and flushed on EPOLLOUT (reading from that connection pauses
// meanwhile). No per-connection allocation unless a write is partial.
//
//     c-echo [--port P]      (listens on 127.0.0.1; SIGINT/SIGTERM exit cleanly)
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE 65536
#define MAX_EVENTS 256

struct pending {
    size_t length, offset;
    char bytes[];
};

static struct pending **pending; // indexed by descriptor; NULL while nothing is queued
static size_t pending_capacity;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void drop(int epoll, int fd) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if ((size_t)fd < pending_capacity) {
        free(pending[fd]);
        pending[fd] = NULL;
    }
}

static void watch(int epoll, int fd, uint32_t events, int op) {
    struct epoll_event event = {.events = events, .data.fd = fd};
    if (epoll_ctl(epoll, op, fd, &event) < 0) die("epoll_ctl");
}

// Queues bytes the kernel did not take and switches the connection to EPOLLOUT only.
static void queue(int epoll, int fd, const char *bytes, size_t length) {
    if ((size_t)fd >= pending_capacity) {
        size_t capacity = (size_t)fd * 2 + 64;
        pending = realloc(pending, capacity * sizeof *pending);
        if (!pending) die("realloc");
        memset(pending + pending_capacity, 0, (capacity - pending_capacity) * sizeof *pending);
        pending_capacity = capacity;
    }
    struct pending *entry = malloc(sizeof *entry + length);
    if (!entry) die("malloc");
    entry->length = length;
    entry->offset = 0;
    memcpy(entry->bytes, bytes, length);
    pending[fd] = entry;
    watch(epoll, fd, EPOLLOUT, EPOLL_CTL_MOD);
}

// Writes all of bytes or queues the rest. Returns -1 when the connection is gone.
static int send_all(int epoll, int fd, const char *bytes, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = send(fd, bytes + done, length - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            queue(epoll, fd, bytes + done, length - done);
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

static void flush_pending(int epoll, int fd) {
    struct pending *entry = pending[fd];
    while (entry->offset < entry->length) {
        ssize_t n = send(fd, entry->bytes + entry->offset, entry->length - entry->offset,
                         MSG_NOSIGNAL);
        if (n > 0) {
            entry->offset += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            drop(epoll, fd);
            return;
        }
    }
    free(entry);
    pending[fd] = NULL;
    watch(epoll, fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

int main(int argc, char **argv) {
    int port = 7001;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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

    int epoll = epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) die("epoll_create1");
    watch(epoll, listener, EPOLLIN, EPOLL_CTL_ADD);
    watch(epoll, signal_fd, EPOLLIN, EPOLL_CTL_ADD);
    printf("c-echo listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    static char buffer[BUFFER_SIZE];
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int count = epoll_wait(epoll, events, MAX_EVENTS, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            uint32_t ready = events[i].events;
            if (fd == signal_fd) {
                printf("c-echo stopped\n");
                return 0;
            }
            if (fd == listener) {
                for (;;) {
                    int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (client < 0) break; // EAGAIN, or EMFILE: retried on the next event
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                    watch(epoll, client, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
                }
                continue;
            }
            if ((size_t)fd < pending_capacity && pending[fd]) {
                if (ready & (EPOLLERR | EPOLLHUP)) {
                    drop(epoll, fd);
                } else {
                    flush_pending(epoll, fd);
                }
                continue;
            }
            // Level-triggered: one read per event; anything left makes the next epoll_wait
            // report the descriptor again.
            ssize_t n = recv(fd, buffer, sizeof buffer, 0);
            if (n > 0) {
                if (send_all(epoll, fd, buffer, (size_t)n) < 0) drop(epoll, fd);
            } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop(epoll, fd);
            }
        }
    }
}
