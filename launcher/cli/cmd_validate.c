/**
 * @file launcher/cli/cmd_validate.c
 * @brief `hetrun validate JOB.yaml...`: checks specs without running anything (no MPI, no
 *        backends), printing every error as `FILE:LINE:COL: PATH: message` or as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/job_needs.h"
#include "spec/spec.h"
#include "workloads/workload.h"
#include "util/exitcodes.h"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: hetrun validate [--format text|json] [--quiet] [--needs [--backend NAME]]\n"
        "                       JOB.yaml [JOB.yaml...]\n"
        "\n"
        "Checks job specs against the schema (docs/jobspec.md) without running them: no\n"
        "MPI, no backends (unless --needs). Every error of every file is reported, one per line:\n"
        "  FILE:LINE:COLUMN: KEY.PATH: message\n"
        "\n"
        "options:\n"
        "  --format text   (default) errors on stderr, a summary line per file on stdout\n"
        "  --format json   {\"files\":[{\"path\",\"valid\",\"sha256\",\"points\",\"errors\":"
        "[{\"line\",\"column\",\"path\",\"message\"}]}]} on stdout\n"
        "  -q, --quiet     text format: print errors only\n"
        "  --needs         also list the ops and dtypes each job needs and whether each\n"
        "                  backend module found supports them (each probed in a child\n"
        "                  process under HETRUN_PROBE_TIMEOUT); JSON: \"needs\" per file\n"
        "  --backend NAME  with --needs: ask only this backend\n"
        "  -h, --help      this text\n"
        "\n"
        "exit codes: 0 all valid, 3 any invalid, 2 usage error\n");
}

int hetrun_cmd_validate(int argc, char **argv) {
    bool json = false, quiet = false, needs = false;
    const char *backend = NULL;
    int nfiles = 0;
    const char **files = calloc((size_t)(argc > 0 ? argc : 1), sizeof *files);
    if (!files) {
        fprintf(stderr, "hetrun validate: out of memory\n");
        return HETRUN_EXIT_FAILED;
    }
    bool only_files = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_files && strcmp(a, "--") == 0) {
            only_files = true;
        } else if (!only_files && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            usage(stdout);
            free(files);
            return HETRUN_EXIT_OK;
        } else if (!only_files && (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)) {
            quiet = true;
        } else if (!only_files && strcmp(a, "--needs") == 0) {
            needs = true;
        } else if (!only_files && strcmp(a, "--backend") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hetrun validate: --backend needs a backend name\n");
                free(files);
                return HETRUN_EXIT_USAGE;
            }
            backend = argv[++i];
        } else if (!only_files && (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0)) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "hetrun validate: --format needs a value (text or json)\n");
                free(files);
                return HETRUN_EXIT_USAGE;
            }
            if (strcmp(v, "json") == 0)
                json = true;
            else if (strcmp(v, "text") == 0)
                json = false;
            else {
                fprintf(stderr, "hetrun validate: unknown format '%s' (expected text or json)\n",
                        v);
                free(files);
                return HETRUN_EXIT_USAGE;
            }
        } else if (!only_files && a[0] == '-' && a[1]) {
            fprintf(stderr, "hetrun validate: unknown option '%s' (see 'hetrun validate --help')\n",
                    a);
            free(files);
            return HETRUN_EXIT_USAGE;
        } else {
            files[nfiles++] = a;
        }
    }
    if (backend && !needs) {
        fprintf(stderr, "hetrun validate: --backend only applies with --needs\n");
        free(files);
        return HETRUN_EXIT_USAGE;
    }
    if (nfiles == 0) {
        fprintf(stderr, "hetrun validate: no spec file given\n");
        usage(stderr);
        free(files);
        return HETRUN_EXIT_USAGE;
    }

    bool all_valid = true;
    cJSON *root = json ? cJSON_CreateObject() : NULL;
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "files") : NULL;
    if (json && !arr) {
        fprintf(stderr, "hetrun validate: out of memory building JSON\n");
        cJSON_Delete(root);
        free(files);
        return HETRUN_EXIT_FAILED;
    }
    for (int f = 0; f < nfiles; f++) {
        hetrun_diags diags = {0};
        hetrun_job *job = NULL;
        int rc = hetrun_spec_load(files[f], &job, &diags);
        bool valid = rc == 0;
        if (!valid) all_valid = false;
        if (json) {
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddStringToObject(fo, "path", files[f]);
            cJSON_AddBoolToObject(fo, "valid", valid);
            if (valid) {
                cJSON_AddStringToObject(fo, "sha256", job->spec_sha256);
                cJSON_AddNumberToObject(fo, "points", (double)job->workload_count);
            }
            cJSON *errs = cJSON_AddArrayToObject(fo, "errors");
            for (size_t i = 0; i < diags.count; i++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "line", diags.items[i].line);
                cJSON_AddNumberToObject(e, "column", diags.items[i].column);
                cJSON_AddStringToObject(e, "path", diags.items[i].path);
                cJSON_AddStringToObject(e, "message", diags.items[i].message);
                cJSON_AddItemToArray(errs, e);
            }
            if (valid && needs)
                hetrun_job_needs_json(job, backend ? HETRUN_NEEDS_ONE : HETRUN_NEEDS_ALL, backend,
                                      fo);
            cJSON_AddItemToArray(arr, fo);
        } else {
            hetrun_diags_print(&diags, stderr);
            if (!quiet) {
                if (valid)
                    printf("%s: valid (%zu workload point%s, sha256 %s)\n", files[f],
                           job->workload_count, job->workload_count == 1 ? "" : "s",
                           job->spec_sha256);
                else
                    printf("%s: invalid (%zu error%s%s)\n", files[f], diags.count,
                           diags.count == 1 ? "" : "s",
                           diags.count >= 200 ? ", stopped at 200" : "");
            }
            cJSON *n = valid && needs ? cJSON_CreateObject() : NULL;
            if (n && hetrun_job_needs_json(job, backend ? HETRUN_NEEDS_ONE : HETRUN_NEEDS_ALL,
                                           backend, n) >= 0)
                hetrun_job_needs_print(n, stdout);
            cJSON_Delete(n);
        }
        hetrun_job_free(job);
        hetrun_diags_free(&diags);
    }
    if (json) {
        char *text = cJSON_Print(root);
        if (!text) {
            fprintf(stderr, "hetrun validate: out of memory printing JSON\n");
            cJSON_Delete(root);
            free(files);
            return HETRUN_EXIT_FAILED;
        }
        printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    }
    free(files);
    return all_valid ? HETRUN_EXIT_OK : HETRUN_EXIT_INVALID_SPEC;
}
