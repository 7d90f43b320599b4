/* Check macros shared by the C tests: count, report failures with file:line and the condition,
 * and finish with the "N passed, M failed" line CI reads. Include as "../common/ag_check.h". */
#ifndef AG_TEST_UTIL_H
#define AG_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                                                         \
    do {                                                                                                         \
        if (cond) {                                                                                              \
            t_pass++;                                                                                            \
        } else {                                                                                                 \
            t_fail++;                                                                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                               \
            printf(__VA_ARGS__);                                                                                 \
            printf("\n");                                                                                        \
        }                                                                                                        \
    } while (0)

static inline int t_finish(void)
{
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
