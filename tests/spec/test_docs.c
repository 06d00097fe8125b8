/* docs/jobspec.md and the schema tables stay in step: every key of every fixed schema table
 * is listed (as `key`) in that table's section, and every registered workload type has a
 * section (a heading with `name`) listing every key of its schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "workloads/workload.h"

static int failures, checked;

/** The text of the section whose heading contains `title` (up to the next heading of the
 *  same or a higher level), or NULL. Returned pointer is into `doc`; length in *len. */
static const char *section(const char *doc, const char *title, size_t *len) {
    for (const char *p = doc; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (*p != '#') continue;
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        int level = 0;
        while (p[level] == '#')
            level++;
        char head[512];
        snprintf(head, sizeof head, "%.*s", (int)(ll < 511 ? ll : 511), p);
        if (!strstr(head, title)) continue;
        const char *body = eol ? eol + 1 : p + ll;
        const char *q = body;
        while (q && *q) {
            if (*q == '#') {
                int l2 = 0;
                while (q[l2] == '#')
                    l2++;
                if (l2 <= level && q[l2] == ' ') break;
            }
            q = strchr(q, '\n');
            if (q) q++;
        }
        *len = q && *q ? (size_t)(q - body) : strlen(body);
        return body;
    }
    return NULL;
}

static bool contains(const char *text, size_t len, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (memcmp(text + i, needle, nl) == 0) return true;
    return false;
}

static void check_keys(const char *doc, const char *title, const hetrun_schema *s) {
    size_t len = 0;
    const char *sec = section(doc, title, &len);
    checked++;
    if (!sec) {
        printf("FAIL docs/jobspec.md has no section headed %s (schema '%s')\n", title, s->name);
        failures++;
        return;
    }
    int missing = 0;
    for (size_t i = 0; i < s->field_count; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "`%s`", s->fields[i].key);
        checked++;
        if (!contains(sec, len, needle)) {
            printf("FAIL docs/jobspec.md section %s does not list key %s of schema '%s'\n", title,
                   needle, s->name);
            failures++;
            missing++;
        }
    }
    if (!missing) printf("ok   %-22s %zu keys documented\n", title, s->field_count);
}

int main(void) {
    const char *src = getenv("HETRUN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/jobspec.md", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL cannot open %s\n", path);
        return 1;
    }
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';

    /* Fixed tables: the top level ("spec") lives under "Top-level keys"; each section table
     * under a heading with its name in backquotes. `workloads` is read outside the tables
     * and must be documented there too. */
    const hetrun_schema *const *all = hetrun_spec_schemas();
    for (size_t i = 0; all[i]; i++) {
        char title[128];
        if (all[i] == hetrun_spec_top_schema())
            snprintf(title, sizeof title, "Top-level keys");
        else
            snprintf(title, sizeof title, "`%s`", all[i]->name);
        check_keys(doc, title, all[i]);
    }
    size_t len;
    const char *top = section(doc, "Top-level keys", &len);
    checked++;
    if (!top || !contains(top, len, "`workloads`")) {
        printf("FAIL Top-level keys does not list `workloads`\n");
        failures++;
    }

    const hetrun_workload_type *const *types = hetrun_workload_all();
    size_t nt = 0;
    for (; types && types[nt]; nt++) {
        char title[128];
        snprintf(title, sizeof title, "`%s`", types[nt]->name);
        check_keys(doc, title, types[nt]->schema);
    }
    if (nt == 0) {
        printf("FAIL no workload types registered\n");
        failures++;
    }
    printf("# %d checks, %d failed\n", checked, failures);
    return failures ? 1 : 0;
}
