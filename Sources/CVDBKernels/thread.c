#define _GNU_SOURCE
#include "vdb_thread.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static id_t current_thread_id(void) { return (id_t)syscall(SYS_gettid); }

int vdb_thread_niceness(void) { return getpriority(PRIO_PROCESS, current_thread_id()); }

int vdb_thread_lower_priority(int increment) {
    errno = 0;
    int current = getpriority(PRIO_PROCESS, current_thread_id());
    if (current == -1 && errno != 0) return -1;
    int wanted = current + increment;
    if (wanted > 19) wanted = 19;
    return setpriority(PRIO_PROCESS, current_thread_id(), wanted);
}
