/* The op tests' harness: a fixture case, building and running its graph on a backend. */
#ifndef OPS_HARNESS_H
#define OPS_HARNESS_H

#include "anygpt/backend.h"
#include "anygpt/gguf.h"

typedef enum { RUN_OK, RUN_SKIP, RUN_FAIL } run_status;

/* One case of the fixture, as the harness needs it. */
typedef struct {
    const ag_gguf *f;
    int idx;
    const char *name, *op;
    int n_src;
    double atol, rtol;
} tcase;

/* A backend's result for one case: values as double, shape, and why it failed or skipped. */
typedef struct {
    run_status st;
    double *v;
    int64_t n;
    int64_t ne[AG_MAX_DIMS];
    double seconds;
    char why[256];
} result;

/* Fixture keys of a case: "case.<idx>.<sub>"; absent or mistyped keys give the default. */
int32_t ops_geti(const tcase *c, const char *sub, int32_t def);
float ops_getf(const tcase *c, const char *sub, float def);
const char *ops_key(const tcase *c, const char *sub);

/* Build the case's graph on be, load its inputs, compute and read the result. A backend that
 * cannot run one of the nodes gives RUN_SKIP with the reason in r->why. */
void ops_run_case(const tcase *c, ag_backend *be, ag_allocator *alloc, result *r);

double ops_now(void);

/* Weights wrapped from host memory (ag_buffer_from_host) instead of uploaded: test_ops
 * --borrow-weights. */
extern bool ops_borrow_weights;

#endif
