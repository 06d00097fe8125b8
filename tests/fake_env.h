/* Shared by the C tests that drive launcher code through a fake environment: the tests'
 * CHECK (check.h) and a getenv-shaped lookup in `fake_env` ("NAME=value"
 * strings, NULL-terminated). Each test file includes it once. */
#ifndef HETRUN_TESTS_FAKE_ENV_H
#define HETRUN_TESTS_FAKE_ENV_H

#include <stdio.h>
#include <string.h>

#include "check.h"

static const char *const *fake_env;

static const char *fake_get(const char *name) {
    size_t n = strlen(name);
    for (const char *const *e = fake_env; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

#endif
