/* The spec corpus: every tests/spec/invalid/NAME.yaml must be rejected with exactly the
 * errors listed in NAME.expected (one `LINE:COL: PATH: message` prefix per line, in file
 * order, nothing more); every tests/spec/valid/NAME.yaml, every examples/NAME.yaml and every
 * ```yaml jobspec block of docs/NAME.md must be valid. Valid files may state
 * `# expect-points: N` and `# expect-label: LABEL` lines (labels of the first points, in
 * order), which are checked too. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "workloads/workload.h"

static int failures, checked;

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/** Sorted names in `dir` ending with `suffix`. */
static size_t list_dir(const char *dir, const char *suffix, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return 0;
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, cap * sizeof *v);
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void render(const hetrun_diag *e, char *out, size_t len) {
    snprintf(out, len, "%d:%d: %s%s%s", e->line, e->column, e->path, e->path[0] ? ": " : "",
             e->message);
}

static void check_invalid(const char *dir, const char *name) {
    char path[1024], exp_path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(exp_path, sizeof exp_path, "%.*s.expected", (int)(strlen(path) - 5), path);
    size_t elen;
    char *exp = read_all(exp_path, &elen);
    checked++;
    if (!exp) {
        printf("FAIL %s: no %s beside it\n", name, exp_path);
        failures++;
        return;
    }
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    int rc = hetrun_spec_load(path, &job, &d);
    int bad = 0;
    if (rc == 0) {
        printf("FAIL %s: accepted, but it is invalid\n", name);
        bad = 1;
    }
    size_t k = 0;
    for (char *line = strtok(exp, "\n"); line; line = strtok(NULL, "\n")) {
        if (!*line || line[0] == '#') continue;
        char got[2048] = "(nothing)";
        if (k < d.count) render(&d.items[k], got, sizeof got);
        if (k >= d.count || strncmp(got, line, strlen(line)) != 0) {
            printf("FAIL %s: error %zu\n  expected: %s\n  got:      %s\n", name, k + 1, line, got);
            bad = 1;
        }
        k++;
    }
    for (; k < d.count; k++) {
        char got[2048];
        render(&d.items[k], got, sizeof got);
        printf("FAIL %s: unexpected extra error: %s\n", name, got);
        bad = 1;
    }
    if (bad) {
        failures++;
        printf("  all errors of %s:\n", name);
        for (size_t i = 0; i < d.count; i++) {
            char got[2048];
            render(&d.items[i], got, sizeof got);
            printf("    %s\n", got);
        }
    } else {
        printf("ok   %s (%zu error%s)\n", name, d.count, d.count == 1 ? "" : "s");
    }
    hetrun_job_free(job);
    hetrun_diags_free(&d);
    free(exp);
}

/** Validates YAML bytes that must be valid; checks expect-points/expect-label comments. */
static void check_valid_bytes(const char *name, const char *text, size_t len) {
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    checked++;
    int rc = hetrun_spec_load_bytes(name, (const unsigned char *)text, len, &job, &d);
    if (rc != 0) {
        printf("FAIL %s: rejected, but it is valid:\n", name);
        hetrun_diags_print(&d, stdout);
        failures++;
        hetrun_diags_free(&d);
        return;
    }
    int bad = 0;
    const char *p = strstr(text, "# expect-points:");
    if (p) {
        long want = strtol(p + 16, NULL, 10);
        if ((size_t)want != job->workload_count) {
            printf("FAIL %s: %zu workload points, expected %ld\n", name, job->workload_count, want);
            bad = 1;
        }
    }
    size_t li = 0;
    for (const char *q = strstr(text, "# expect-label: "); q;
         q = strstr(q + 1, "# expect-label: ")) {
        const char *s = q + 16, *e = strchr(s, '\n');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (li >= job->workload_count || strlen(job->workloads[li].label) != l ||
            strncmp(job->workloads[li].label, s, l) != 0) {
            printf("FAIL %s: label %zu is '%s', expected '%.*s'\n", name, li,
                   li < job->workload_count ? job->workloads[li].label : "(none)", (int)l, s);
            bad = 1;
        }
        li++;
    }
    if (strlen(job->spec_sha256) != 64) {
        printf("FAIL %s: no spec_sha256\n", name);
        bad = 1;
    }
    if (bad)
        failures++;
    else
        printf("ok   %s (%zu point%s)\n", name, job->workload_count,
               job->workload_count == 1 ? "" : "s");
    hetrun_job_free(job);
    hetrun_diags_free(&d);
}

static void check_valid_file(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *text = read_all(path, &len);
    if (!text) {
        printf("FAIL %s: cannot read\n", path);
        failures++;
        return;
    }
    check_valid_bytes(path, text, len);
    free(text);
}

/** Every ```yaml jobspec fenced block of a markdown file is a spec that must be valid. */
static int check_markdown(const char *path) {
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return 0;
    int blocks = 0;
    const char *fence = "```yaml jobspec\n";
    for (char *p = strstr(text, fence); p; p = strstr(p, fence)) {
        char *start = p + strlen(fence);
        char *end = strstr(start, "\n```");
        if (!end) break;
        int line = 1;
        for (const char *q = text; q < start; q++)
            line += *q == '\n';
        char name[1200];
        snprintf(name, sizeof name, "%s:block@line%d", path, line);
        check_valid_bytes(name, start, (size_t)(end - start) + 1);
        blocks++;
        p = end;
    }
    free(text);
    return blocks;
}

int main(void) {
    const char *src = getenv("HETRUN_SOURCE_DIR");
    if (!src) src = ".";
    /* The corpus uses these: one variable set, one unset. */
    setenv("HETRUN_TEST_M", "2048", 1);
    unsetenv("HETRUN_TEST_UNSET_VAR");
    char dir[1024];
    char **names;
    size_t n;

    snprintf(dir, sizeof dir, "%s/tests/spec/invalid", src);
    n = list_dir(dir, ".yaml", &names);
    printf("# %zu invalid specs in %s\n", n, dir);
    for (size_t i = 0; i < n; i++) {
        check_invalid(dir, names[i]);
        free(names[i]);
    }
    free(names);
    size_t n_invalid = n;

    snprintf(dir, sizeof dir, "%s/tests/spec/valid", src);
    n = list_dir(dir, ".yaml", &names);
    printf("# %zu valid specs in %s\n", n, dir);
    for (size_t i = 0; i < n; i++) {
        check_valid_file(dir, names[i]);
        free(names[i]);
    }
    free(names);
    size_t n_valid = n;

    snprintf(dir, sizeof dir, "%s/examples", src);
    n = list_dir(dir, ".yaml", &names);
    printf("# %zu examples in %s\n", n, dir);
    for (size_t i = 0; i < n; i++) {
        check_valid_file(dir, names[i]);
        free(names[i]);
    }
    free(names);

    snprintf(dir, sizeof dir, "%s/docs", src);
    n = list_dir(dir, ".md", &names);
    int blocks = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        blocks += check_markdown(path);
        free(names[i]);
    }
    free(names);
    printf("# %d jobspec blocks in docs/*.md\n", blocks);

    if (n_invalid < 60 || n_valid < 20) {
        printf("FAIL corpus too small: %zu invalid (need 60), %zu valid (need 20)\n", n_invalid,
               n_valid);
        failures++;
    }
    if (blocks < 1) {
        printf("FAIL docs/jobspec.md has no ```yaml jobspec block\n");
        failures++;
    }
    printf("# %d checked, %d failed\n", checked, failures);
    return failures ? 1 : 0;
}
