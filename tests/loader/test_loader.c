/* Loader tests: a good module loads; wrong ABI major, short ops table, missing entry
 * symbol, NULL required functions (each named) and a name mismatch are refused with
 * messages naming file, expected and found; a module whose init reports no driver, or whose
 * runtime library is missing, is unavailable; the search path is honoured in order. The
 * probe runs modules that crash, hang or exit in init in a child and names the signal, the
 * stage, the ABI and the version. Module folders come from FAKE_MODULE_DIR and
 * BROKEN_MODULE_DIR (CMake). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader/loader.h"
#include "loader/probe.h"

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
             (size_t)HETRUN_OPS_SIZE_V1_2);
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

static hetrun_backend_module broken_at(const char *name) {
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.path, sizeof m.path, "%s/libhetrun_backend_%s.so", BROKEN_MODULE_DIR, name);
    return m; /* name left empty: derived from the file name */
}

static void test_null_functions_named(void **state) {
    (void)state;
    hetrun_backend_module m = broken_at("nullfn");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_string_equal(m.name, "nullfn");
    assert_contains(m.reason, "lacks required functions (NULL): copy_d2h, op_run");
    assert_int_equal(m.table_read, 1);
    assert_string_equal(m.version, "nullfn-1.2");
    char id[64];
    snprintf(id, sizeof id, "(ABI %d.%d, version nullfn-1.2)", HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR);
    assert_contains(m.reason, id); /* in-process opens (run's ranks) name the build too */
}

static void test_name_mismatch_refused(void **state) {
    (void)state;
    hetrun_backend_module m = broken_at("mismatch");
    assert_int_equal(hetrun_module_open(&m, hetrun_host_services_get()), -1);
    assert_contains(m.reason, "name mismatch: found as 'mismatch' but ops->name is 'othername'");
}

static hetrun_probe_outcome probe(const char *name, double timeout, hetrun_probe_result *r) {
    char path[4096];
    snprintf(path, sizeof path, "%s/libhetrun_backend_%s.so", BROKEN_MODULE_DIR, name);
    hetrun_probe_options opt = {.timeout_s = timeout};
    return hetrun_probe_module(path, &opt, r);
}

static void assert_identity(const hetrun_probe_result *r, const char *name) {
    char version[64], text[128];
    snprintf(version, sizeof version, "%s-1.2", name);
    assert_int_equal(r->table_read, 1);
    assert_string_equal(r->version, version);
    assert_int_equal(r->abi_major, HETRUN_ABI_MAJOR);
    snprintf(text, sizeof text, "(ABI %d.%d, version %s)", HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR,
             version);
    assert_contains(r->reason, text);
    assert_contains(r->reason, r->path);
}

static void test_probe_crash_in_init(void **state) {
    (void)state;
    hetrun_probe_result r;
    assert_int_equal(probe("crashinit", 30, &r), HETRUN_PROBE_CRASHED);
    assert_int_equal(r.signal, 11);
    assert_string_equal(r.stage, "init");
    assert_contains(r.reason, "crashed in init: killed by signal 11 (SIGSEGV");
    assert_identity(&r, "crashinit");
    hetrun_probe_result_free(&r);
}

static void test_probe_hang_in_init(void **state) {
    (void)state;
    hetrun_probe_result r;
    assert_int_equal(probe("hanginit", 1, &r), HETRUN_PROBE_HUNG);
    assert_string_equal(r.stage, "init");
    assert_contains(r.reason, "hung in init");
    assert_contains(r.reason, "within 1 s");
    assert_true(r.elapsed_s >= 1.0); /* it waited the limit, and returned (no upper bound) */
    assert_identity(&r, "hanginit");
    hetrun_probe_result_free(&r);
}

static void test_probe_exit_in_init(void **state) {
    (void)state;
    hetrun_probe_result r;
    assert_int_equal(probe("exitinit", 30, &r), HETRUN_PROBE_EXITED);
    assert_int_equal(r.exit_status, 3);
    assert_contains(r.reason, "ended the process in init (exit status 3)");
    assert_identity(&r, "exitinit");
    hetrun_probe_result_free(&r);
}

static void test_probe_refusal_keeps_identity(void **state) {
    (void)state;
    hetrun_probe_result r;
    assert_int_equal(probe("abimajor", 30, &r), HETRUN_PROBE_REFUSED);
    assert_int_equal(r.abi_major, 2);
    assert_string_equal(r.version, "abimajor-1.2");
    assert_contains(r.reason, "ABI major mismatch");
    assert_contains(r.reason, "version abimajor-1.2");
    hetrun_probe_result_free(&r);
}

static void test_probe_op_support(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/libhetrun_backend_onedev.so", BROKEN_MODULE_DIR);
    hetrun_op_desc ops[2] = {{0}};
    for (int i = 0; i < 2; i++) {
        ops[i].struct_size = sizeof ops[i];
        ops[i].kind = i == 0 ? HETRUN_OP_GEMM : HETRUN_OP_SOFTMAX;
        ops[i].m = ops[i].n = ops[i].k = 4;
    }
    hetrun_probe_options opt = {.timeout_s = 30, .ops = ops, .nops = 2};
    hetrun_probe_result r;
    assert_int_equal(hetrun_probe_module(path, &opt, &r), HETRUN_PROBE_LOADED);
    assert_string_equal(r.reason, "");
    assert_int_equal(r.device_count, 1);
    assert_string_equal(r.devices[0].info.name, "fake device 0");
    assert_non_null(r.ops);
    assert_int_equal(r.ops[0].status, HETRUN_OK);
    assert_int_equal(r.ops[1].status, HETRUN_ERR_UNSUPPORTED);
    assert_contains(r.ops[1].reason, "only gemm f32");
    hetrun_probe_result_free(&r);
}

static void test_probe_backend_names_module(void **state) {
    (void)state;
    char env[4096], why[2048];
    snprintf(env, sizeof env, "%s", BROKEN_MODULE_DIR);
    setenv("HETRUN_BACKEND_PATH", env, 1);
    hetrun_probe_device *devs = NULL;
    int n = -1;
    hetrun_probe_set_timeout(30);
    assert_int_equal(hetrun_probe_backend("crashinit", &devs, &n, why, sizeof why), -1);
    assert_null(devs);
    assert_contains(why, "libhetrun_backend_crashinit.so (ABI ");
    assert_contains(why, "version crashinit-1.2");
    assert_int_equal(hetrun_probe_backend("no_such", &devs, &n, why, sizeof why), 1);
    assert_contains(why, "not found");
    assert_int_equal(hetrun_probe_backend("onedev", &devs, &n, why, sizeof why), 0);
    assert_int_equal(n, 1);
    free(devs);
}

static void test_probe_many_at_once(void **state) {
    (void)state;
    static const char *const names[] = {"hanginit", "crashinit", "onedev", "nullfn"};
    char paths[4][4096];
    const char *pv[4];
    hetrun_probe_options opts[4];
    hetrun_probe_result res[4];
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/libhetrun_backend_%s.so", BROKEN_MODULE_DIR,
                 names[i]);
        pv[i] = paths[i];
        opts[i] = (hetrun_probe_options){.timeout_s = i == 0 ? 1 : 30, .name = names[i]};
    }
    hetrun_probe_modules(4, pv, opts, res);
    assert_int_equal(res[0].outcome, HETRUN_PROBE_HUNG);
    assert_int_equal(res[1].outcome, HETRUN_PROBE_CRASHED);
    assert_int_equal(res[2].outcome, HETRUN_PROBE_LOADED);
    assert_int_equal(res[2].device_count, 1);
    assert_int_equal(res[3].outcome, HETRUN_PROBE_REFUSED);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(res[i].path, paths[i]);
        if (i != 2) assert_identity(&res[i], names[i]);
        hetrun_probe_result_free(&res[i]);
    }
}

static void test_shadowing_listed(void **state) {
    (void)state;
    char env[4096];
    snprintf(env, sizeof env, "%s/major2:%s/short", FAKE_MODULE_DIR, FAKE_MODULE_DIR);
    setenv("HETRUN_BACKEND_PATH", env, 1);
    hetrun_module_list list;
    assert_int_equal(hetrun_loader_scan_all(&list), 0);
    int winners = 0, shadowed = 0;
    for (size_t i = 0; i < list.count; i++) {
        const hetrun_backend_module *m = &list.items[i];
        if (strcmp(m->name, "fake") != 0) continue;
        if (m->state == HETRUN_MODULE_SHADOWED) {
            shadowed++;
            assert_non_null(strstr(m->path, "/short/"));
            assert_non_null(strstr(m->shadowed_by, "/major2/"));
            assert_contains(m->reason, "HETRUN_BACKEND_PATH comes first");
        } else {
            winners++;
            assert_non_null(strstr(m->path, "/major2/"));
            assert_string_equal(m->origin, "HETRUN_BACKEND_PATH");
        }
    }
    assert_int_equal(winners, 1);
    assert_int_equal(shadowed, 1);
    hetrun_module_list_free(&list);
    /* The same folder twice is one module, not a shadow of itself. */
    snprintf(env, sizeof env, "%s/major2:%s/major2/.", FAKE_MODULE_DIR, FAKE_MODULE_DIR);
    setenv("HETRUN_BACKEND_PATH", env, 1);
    assert_int_equal(hetrun_loader_scan_all(&list), 0);
    for (size_t i = 0; i < list.count; i++)
        assert_int_not_equal(list.items[i].state, HETRUN_MODULE_SHADOWED);
    hetrun_module_list_free(&list);
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
        cmocka_unit_test(test_null_functions_named),
        cmocka_unit_test(test_name_mismatch_refused),
        cmocka_unit_test(test_probe_crash_in_init),
        cmocka_unit_test(test_probe_hang_in_init),
        cmocka_unit_test(test_probe_exit_in_init),
        cmocka_unit_test(test_probe_refusal_keeps_identity),
        cmocka_unit_test(test_probe_op_support),
        cmocka_unit_test(test_probe_backend_names_module),
        cmocka_unit_test(test_probe_many_at_once),
        cmocka_unit_test(test_shadowing_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
