// Force-included first in every file of the library (flags.py: -include): keeps the library
// within manylinux_2_28 (glibc <= 2.28) when it is built on a newer glibc, as Debian 12's 2.36.
#pragma once

// glibc >= 2.32's headers make libstdc++'s atomics read __libc_single_threaded (a GLIBC_2.32
// symbol). Read a flag of our own instead, always 0 ("maybe multi-threaded": atomic reference
// counts, as with an older glibc); glibc_compat.cpp defines it.
#define __libc_single_threaded tvdcn_fast_libc_single_threaded

// glibc 2.34 moved dlsym from libdl into libc under a new version, GLIBC_2.34, which is what a
// link picks; torch >= 2.14's stable-ABI headers call dlsym (TORCH_DYNAMIC_VERSION_CALL). Bind it
// to the version every glibc of the architecture exports (libdl's before 2.34, libc's compat
// symbol since).
#if defined(__linux__) && defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__linux__) && defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif
