/* .npy files: what hetrun writes reads back exactly (and has numpy's header layout), an
 * existing file that is not .npy is never written over, and bad files are refused by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/npy.h"

static int failures;

static void check(int cond, const char *what, const char *err) {
    printf("%s %s%s%s\n", cond ? "ok  " : "FAIL", what, err && *err ? ": " : "", err ? err : "");
    if (!cond) failures++;
}

int main(void) {
    char dir[] = "/tmp/hetrun-npy-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256], other[256], err[512] = "";
    snprintf(path, sizeof path, "%s/e.npy", dir);
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    float v[3 * 5];
    for (int i = 0; i < 15; i++)
        v[i] = (float)i * 0.37f - 2.0f;
    int rc = hetrun_npy_write_f32(path, v, 3, 5, err, sizeof err);
    check(rc == 0, "write 3 x 5", err);
    FILE *fp = fopen(path, "rb");
    unsigned char head[128] = {0};
    size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
    if (fp) fclose(fp);
    size_t hl = (size_t)head[8] | (size_t)head[9] << 8;
    check(got >= 64 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hl) % 64 == 0 &&
              head[9 + hl] == '\n' &&
              strstr((char *)head + 10, "'descr': '<f4', 'fortran_order': False, 'shape': (3, 5)"),
          "header: magic, version 1.0, 64-byte aligned, numpy's dict", NULL);
    float *back = NULL;
    int64_t r = 0, c = 0;
    rc = hetrun_npy_read_f32(path, &back, &r, &c, err, sizeof err);
    check(rc == 0 && r == 3 && c == 5 && memcmp(back, v, sizeof v) == 0, "read back exactly", err);
    free(back);
    rc = hetrun_npy_write_f32(path, v, 5, 3, err, sizeof err);
    check(rc == 0, "an existing .npy is replaced", err);

    fp = fopen(other, "w");
    fputs("my notes\n", fp);
    fclose(fp);
    rc = hetrun_npy_write_f32(other, v, 3, 5, err, sizeof err);
    fp = fopen(other, "r");
    char text[32] = "";
    if (fp && fgets(text, sizeof text, fp)) fclose(fp);
    check(rc != 0 && strstr(err, other) && strstr(err, "not a .npy file") &&
              strcmp(text, "my notes\n") == 0,
          "a file that is not .npy is refused and left as it was", err);
    rc = hetrun_npy_read_f32(other, &back, &r, &c, err, sizeof err);
    check(rc != 0 && strstr(err, other) && strstr(err, "not a version 1 .npy"), "read refuses it",
          err);
    rc = hetrun_npy_read_f32("/nonexistent.npy", &back, &r, &c, err, sizeof err);
    check(rc != 0 && strstr(err, "/nonexistent.npy: cannot open"), "missing file named", err);
    /* a truncated copy: the header promises more floats than follow */
    fp = fopen(path, "r+b");
    if (fp) {
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fclose(fp);
        if (truncate(path, size - 4) != 0) failures++;
    }
    rc = hetrun_npy_read_f32(path, &back, &r, &c, err, sizeof err);
    check(rc != 0 && strstr(err, "fewer than 5 x 3 floats"), "truncated data refused", err);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
