/*
 * LD_PRELOAD shim for the real-stack harness's sanlock daemons.
 *
 * `sanlock daemon` raises RLIMIT_MEMLOCK and RLIMIT_RTPRIO at start and exits when that fails
 * ("cannot set the limits for memlock"), even with `-l 0 -h 0`.  The sandbox these tests run in
 * lacks CAP_SYS_RESOURCE, so raising them fails.  This shim reports success for exactly those two
 * resources (the limits stay as they are: with -l 0 and -h 0 sanlock neither mlocks nor asks for
 * realtime scheduling) and passes every other call to the real setrlimit.
 *
 * Built by harness.py with `gcc -shared -fPIC -O2 -o SHIM.so setrlimit_shim.c -ldl`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

typedef int (*setrlimit_fn)(__rlimit_resource_t, const void *);

static int shim_setrlimit(const char *symbol, __rlimit_resource_t resource, const void *rlim)
{
    if (resource == RLIMIT_MEMLOCK || resource == RLIMIT_RTPRIO)
        return 0;
    setrlimit_fn real = (setrlimit_fn)dlsym(RTLD_NEXT, symbol);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(resource, rlim);
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim)
{
    return shim_setrlimit("setrlimit", resource, rlim);
}

int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rlim)
{
    return shim_setrlimit("setrlimit64", resource, rlim);
}
