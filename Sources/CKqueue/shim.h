// libkqueue's kqueue(2) API for Linux. pkg-config's cflags (-I<prefix>/include/kqueue) make
// <sys/event.h> resolve to libkqueue's header. Only builds with the Kqueue trait use this.
#ifndef CKQUEUE_SHIM_H
#define CKQUEUE_SHIM_H
#include <sys/event.h>
#endif
