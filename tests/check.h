/* The one CHECK of the C tests: counts checks and failures, and names file, line and the
 * failed condition with a printf-style explanation. Each test file includes it once and
 * ends with `return failures ? 1 : 0`. */
#ifndef HETRUN_TESTS_CHECK_H
#define HETRUN_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fflush(stdout);                                                                        \
        }                                                                                          \
    } while (0)

#endif
