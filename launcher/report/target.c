/* Which report paths hetrun may write (see report.h): nothing lost means a report never
 * replaces a file hetrun did not write, whatever the path names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "report/report.h"

/* Reports of huge jobs run to megabytes; anything beyond this is not one of ours. */
#define REPORT_MAX_BYTES (1ull << 30)

/* First columns of the CSV tables report.c writes (results, usage, collectives). */
static const char *const table_heads[] = {"rank,host,backend,device,",
                                          "job,spec_sha256,status,rank,",
                                          "job,job_id,step_id,user,", "rank,backend,label,op,"};

int hetrun_report_version_readable(const char *version) {
    return version && (strncmp(version, "1.", 2) == 0 || strncmp(version, "2.", 2) == 0);
}

static int is_hetrun_json(const cJSON *o) {
    const char *gen = cJSON_GetStringValue(cJSON_GetObjectItem(o, "generator"));
    if (gen) return strcmp(gen, HETRUN_REPORT_GENERATOR) == 0;
    /* Reports of versions before the marker: schema 1.x with hetrun's job record. */
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItem(o, "schema_version"));
    const cJSON *job = cJSON_GetObjectItem(o, "job");
    return ver && strncmp(ver, "1.", 2) == 0 && cJSON_IsString(cJSON_GetObjectItem(o, "status")) &&
           cJSON_IsArray(cJSON_GetObjectItem(o, "ranks")) &&
           cJSON_IsString(cJSON_GetObjectItem(job, "spec_sha256"));
}

static int is_hetrun_file(const char *path, char *why, size_t whylen) {
    char *buf = NULL;
    size_t len = 0;
    char cause[400];
    if (hetrun_file_read_all(path, "report", REPORT_MAX_BYTES, &buf, &len, cause, sizeof cause) !=
        0) {
        snprintf(why, whylen, "an existing file hetrun cannot recognise (%s)", cause);
        return 0;
    }
    int ours = 0;
    for (size_t i = 0; i < sizeof table_heads / sizeof table_heads[0] && !ours; i++)
        ours = strncmp(buf, table_heads[i], strlen(table_heads[i])) == 0;
    if (!ours) {
        cJSON *o = cJSON_ParseWithLength(buf, len);
        ours = o && is_hetrun_json(o);
        cJSON_Delete(o);
    }
    free(buf);
    if (!ours)
        snprintf(why, whylen,
                 "an existing file hetrun did not write (neither a report with "
                 "\"generator\": \"hetrun\" nor one of its CSV tables)");
    return ours;
}

int hetrun_report_target_check(const char *path, const char *spec_path, char *err, size_t errlen) {
    struct stat st, spec;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "report path %s: cannot stat: %s", path, strerror(errno));
        return -1;
    }
    const char *kind = S_ISLNK(st.st_mode)    ? "a symbolic link (a rename would replace the link)"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : !S_ISREG(st.st_mode) ? "not a regular file"
                                              : NULL;
    if (!kind && spec_path && stat(spec_path, &spec) == 0 && spec.st_dev == st.st_dev &&
        spec.st_ino == st.st_ino)
        kind = "the job spec";
    char why[512] = "";
    if (!kind && !is_hetrun_file(path, why, sizeof why)) kind = why;
    if (!kind) return 1;
    snprintf(err, errlen,
             "report path %s is %s; hetrun never writes over a file it did not create "
             "(choose another report.path or --report)",
             path, kind);
    return -1;
}
