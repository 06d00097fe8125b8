/* Loader tests: a good module loads; wrong ABI major, short ops table, missing entry
 * symbol are refused with messages naming file, expected and found; a module whose init
 * reports no driver, or whose runtime library is missing, is unavailable; the search
 * path is honoured in order. Module folders come from FAKE_MODULE_DIR (CMake). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader/loader.h"

static hetrun_backend_module module_at(const char *variant) {
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "fake");
    snprintf(m.path, sizeof m.path, "%s/%s/libhetrun_backend_fake.so", FAKE_MODULE_DIR, variant);
    return m;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static void test_good_module_loads(void **state) {
    (void)state;
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "cpu");
    assert_int_equal(hetrun_loader_find("cpu", m.path, sizeof m.path), 0);
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), 0);
    assert_int_equal(m.state, HETRUN_MODULE_LOADED);
    assert_int_equal(m.device_count, 1);
    assert_string_equal(m.ops->name, "cpu");
    hetrun_module_close(&m);
}

static void test_wrong_major_refused(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("major2");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_int_equal(m.state, HETRUN_MODULE_REFUSED);
    assert_contains(m.reason, m.path);
    assert_contains(m.reason, "ABI major mismatch");
    assert_contains(m.reason, "expected 1.x");
    char found[32];
    snprintf(found, sizeof found, "found 2.%d", HETRUN_ABI_MINOR);
    assert_contains(m.reason, found);
    assert_null(m.ops);
}

static void test_short_struct_refused(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("short");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_int_equal(m.state, HETRUN_MODULE_REFUSED);
    assert_contains(m.reason, m.path);
    char abi[32];
    snprintf(abi, sizeof abi, "too small for ABI 1.%d", HETRUN_ABI_MINOR);
    assert_contains(m.reason, abi);
    char expected[64];
    snprintf(expected, sizeof expected, "expected at least %zu bytes",
             (size_t)HETRUN_OPS_SIZE_V1_1);
    assert_contains(m.reason, expected);
    char found[64];
    snprintf(found, sizeof found, "found %zu", offsetof(hetrun_backend_ops, op_run));
    assert_contains(m.reason, found);
}

static void test_no_entry_refused(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("noentry");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_contains(m.reason, "no entry symbol 'hetrun_backend_entry'");
}

static void test_unavailable_is_quiet(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("unavailable");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), 1);
    assert_int_equal(m.state, HETRUN_MODULE_UNAVAILABLE);
    assert_contains(m.reason, "no driver installed");
}

static void test_missing_runtime_library_is_unavailable(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("needsdep");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), 1);
    assert_int_equal(m.state, HETRUN_MODULE_UNAVAILABLE);
    assert_contains(m.reason, "libhetrun_fake_dep.so");
}

static void test_not_a_module_refused(void **state) {
    (void)state;
    hetrun_backend_module m = module_at("garbage");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_contains(m.reason, "dlopen failed");
}

static void test_search_path_order(void **state) {
    (void)state;
    char env[4096], path[4096];
    /* The "major2" folder holds a module called fake; put it first, then the "short" one. */
    snprintf(env, sizeof env, "%s/major2:%s/short", FAKE_MODULE_DIR, FAKE_MODULE_DIR);
    setenv("HETRUN_BACKEND_PATH", env, 1);
    assert_int_equal(hetrun_loader_find("fake", path, sizeof path), 0);
    assert_non_null(strstr(path, "/major2/"));
    snprintf(env, sizeof env, "%s/short:%s/major2", FAKE_MODULE_DIR, FAKE_MODULE_DIR);
    setenv("HETRUN_BACKEND_PATH", env, 1);
    assert_int_equal(hetrun_loader_find("fake", path, sizeof path), 0);
    assert_non_null(strstr(path, "/short/"));
    hetrun_module_list list;
    assert_int_equal(hetrun_loader_scan(&list), 0);
    int fakes = 0, cpus = 0;
    for (size_t i = 0; i < list.count; i++) {
        fakes += strcmp(list.items[i].name, "fake") == 0;
        cpus += strcmp(list.items[i].name, "cpu") == 0;
    }
    assert_int_equal(fakes, 1); /* first directory wins, listed once */
    assert_int_equal(cpus, 1);  /* the build tree is searched after the variable */
    hetrun_module_list_free(&list);
    assert_int_equal(hetrun_loader_find("no_such_backend", path, sizeof path), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_module_loads),
        cmocka_unit_test(test_wrong_major_refused),
        cmocka_unit_test(test_short_struct_refused),
        cmocka_unit_test(test_no_entry_refused),
        cmocka_unit_test(test_unavailable_is_quiet),
        cmocka_unit_test(test_missing_runtime_library_is_unavailable),
        cmocka_unit_test(test_not_a_module_refused),
        cmocka_unit_test(test_search_path_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
