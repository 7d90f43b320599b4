/* The long attention case of the op tests: inputs generated from a seed, sampled rows checked
 * against a double-precision reference computed here (a fixture would be too big). */
#ifndef OPS_LONG_H
#define OPS_LONG_H

#include "ops_harness.h"

/* Runs case `idx` (fixture keys: n keys, nq queries (default n), d, seed, samples) on be.
 * On RUN_OK, *v holds the whole output (caller frees) for the parity check and why a summary;
 * on RUN_FAIL/RUN_SKIP why says why. */
void ops_attention_long(const ag_gguf *f, int idx, ag_backend *be, ag_allocator *alloc, double atol, double rtol,
                        run_status *st, double **v, int64_t *n, int64_t ne[4], double *seconds, char *why,
                        size_t why_len);

#endif
