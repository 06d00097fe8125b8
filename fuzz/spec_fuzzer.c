/* libFuzzer harness for the job spec reader: any bytes -> hetrun_spec_load_bytes. It must
 * never crash, leak, hang or read out of bounds; a valid result must be well formed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "workloads/workload.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* The corpus uses these (tests/spec/test_corpus.c sets the same). */
    setenv("HETRUN_TEST_M", "2048", 1);
    unsetenv("HETRUN_TEST_UNSET_VAR");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    int rc = hetrun_spec_load_bytes("fuzz.yaml", data, size, &job, &d);
    if (rc == 0) {
        /* A valid job: every point is complete and the diagnostics are empty. */
        if (!job || d.count != 0 || job->workload_count == 0) abort();
        for (size_t i = 0; i < job->workload_count; i++) {
            const hetrun_job_workload *w = &job->workloads[i];
            if (!w->type || !w->params || !w->label || strlen(w->label) == 0) abort();
        }
    } else {
        /* An invalid spec always says why, and every error has a message. */
        if (job || d.count == 0) abort();
        for (size_t i = 0; i < d.count; i++)
            if (!d.items[i].message[0] || d.items[i].line < 0 || d.items[i].column < 0) abort();
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            hetrun_diags_print(&d, null);
            fclose(null);
        }
    }
    hetrun_job_free(job);
    hetrun_diags_free(&d);
    return 0;
}
