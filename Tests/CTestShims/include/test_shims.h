#ifndef SLIPWAY_TEST_SHIMS_H
#define SLIPWAY_TEST_SHIMS_H
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/// A descriptor that becomes readable when the process `pid` ends (Linux 5.3+), or -1.
static inline int slipway_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    return -1;
#endif
}
#endif
