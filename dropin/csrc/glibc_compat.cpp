// The flag glibc_compat.h points libstdc++'s headers at in place of glibc 2.32's
// __libc_single_threaded: 0 tells them the process may be multi-threaded, so reference counts
// always use atomic operations, as they do with a glibc older than 2.32.
extern "C" {
__attribute__((visibility("hidden"))) char tvdcn_fast_libc_single_threaded = 0;
}
