/* Buffers for the bandwidth benchmarks, mapped the way the cpu backend maps packed weights and
 * its big buffers (transparent huge pages asked for: core/cpu/cpu_repack.c says why), so that a
 * read pass and the kernels it bounds meet the same TLB. */
#ifndef ANYGPT_TOOLS_BENCH_PAGES_H
#define ANYGPT_TOOLS_BENCH_PAGES_H

#include <stddef.h>
#include <sys/mman.h>

static inline char *bench_pages_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, n, MADV_HUGEPAGE); /* a hint: where THP is off, small pages */
    return p;
}

static inline void bench_pages_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

#endif
