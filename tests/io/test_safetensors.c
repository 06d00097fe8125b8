/* The safetensors reader on files this test writes: a valid file (every readable dtype, a
 * tensor hetrun does not read, metadata, header padding) is read back exactly; each hostile
 * file is refused with a message naming the file, the tensor at fault and the cause. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "kernels/half.h"

static int failures;
static char dir[] = "/tmp/hetrun-st-XXXXXX";

/* Writes an 8-byte length (`len_override` when non-zero), the header, then `data_len` bytes
 * of a counting pattern. Returns the path (static buffer per call site is enough here). */
static const char *write_file(const char *name, const char *header, uint64_t len_override,
                              const void *data, size_t data_len) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    uint64_t n = len_override ? len_override : strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    if (data_len) {
        if (data) {
            fwrite(data, 1, data_len, fp);
        } else {
            for (size_t i = 0; i < data_len; i++)
                fputc((int)(i * 7 + 1) & 0xff, fp);
        }
    }
    fclose(fp);
    return path;
}

/* The file must be refused with a message holding the path and each of want1/want2. */
static void expect_refused(const char *what, const char *header, uint64_t len_override,
                           size_t data_len, const char *want1, const char *want2) {
    const char *path = write_file(what, header, len_override, NULL, data_len);
    hetrun_safetensors f;
    char err[512] = "";
    int rc = hetrun_safetensors_open(path, &f, err, sizeof err);
    int ok = rc != 0 && strstr(err, path) && strstr(err, want1) && (!want2 || strstr(err, want2)) &&
             f.map == NULL && f.count == 0;
    printf("%s %-20s %s\n", ok ? "ok  " : "FAIL", what, err);
    if (!ok) {
        printf("     expected a refusal naming %s, '%s'%s%s%s\n", path, want1, want2 ? ", '" : "",
               want2 ? want2 : "", want2 ? "'" : "");
        failures++;
    }
    if (rc == 0) hetrun_safetensors_close(&f);
}

static void check(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

static void valid_file(void) {
    /* w: F32 [2,3]; b: BF16 [4]; h: F16 [2,2]; ids: I64 [2]; e: F32 [0] (empty). Written
     * out of offset order and padded with spaces, as writers do. */
    float w[6] = {1.5f, -2.25f, 3.0f, 0.125f, -7.0f, 1e-3f};
    float bv[4] = {1.0f, -0.5f, 3.140625f, 65280.0f};       /* exact in bf16 */
    float hv[4] = {0.5f, -1.0f, 2048.0f, 6.103515625e-05f}; /* exact in f16 */
    unsigned char data[24 + 8 + 8 + 16];
    memcpy(data, w, 24);
    for (int i = 0; i < 4; i++) {
        uint16_t b = hetrun_f32_to_bf16(bv[i]), h = hetrun_f32_to_f16(hv[i]);
        memcpy(data + 24 + 2 * i, &b, 2);
        memcpy(data + 32 + 2 * i, &h, 2);
    }
    int64_t ids[2] = {7, -3};
    memcpy(data + 40, ids, 16);
    const char *header =
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
        "\"__metadata__\":{\"format\":\"pt\"},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
        "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[40,56]}}      ";
    const char *path = write_file("valid", header, 0, data, sizeof data);
    hetrun_safetensors f;
    char err[512] = "";
    int rc = hetrun_safetensors_open(path, &f, err, sizeof err);
    check(rc == 0 && f.count == 5, "valid file opens with 5 tensors");
    if (rc != 0) {
        printf("     %s\n", err);
        return;
    }
    float out[6];
    const hetrun_st_tensor *t = hetrun_safetensors_expect(&f, "w", 2, (int64_t[]){2, 3}, err, 512);
    check(t && t->type == HETRUN_F32 && t->elements == 6, "F32 [2,3] found");
    if (t) hetrun_safetensors_to_f32(t, out);
    check(t && memcmp(out, w, sizeof w) == 0, "F32 values read back exactly");
    t = hetrun_safetensors_expect(&f, "b", 1, (int64_t[]){4}, err, sizeof err);
    if (t) hetrun_safetensors_to_f32(t, out);
    check(t && t->type == HETRUN_BF16 && memcmp(out, bv, sizeof bv) == 0, "BF16 values exact");
    t = hetrun_safetensors_expect(&f, "h", 2, (int64_t[]){2, 2}, err, sizeof err);
    if (t) hetrun_safetensors_to_f32(t, out);
    check(t && t->type == HETRUN_F16 && memcmp(out, hv, sizeof hv) == 0, "F16 values exact");
    t = hetrun_safetensors_find(&f, "e");
    check(t && t->elements == 0 && t->ndim == 1, "empty tensor is listed");

    t = hetrun_safetensors_expect(&f, "w", 2, (int64_t[]){3, 2}, err, sizeof err);
    check(!t && strstr(err, path) && strstr(err, "'w'") && strstr(err, "[2, 3]") &&
              strstr(err, "[3, 2]"),
          "a shape other than the config's is refused, both shapes named");
    printf("     %s\n", err);
    t = hetrun_safetensors_expect(&f, "ids", 1, (int64_t[]){2}, err, sizeof err);
    check(!t && strstr(err, "'ids'") && strstr(err, "I64"), "I64 tensor refused by name");
    printf("     %s\n", err);
    t = hetrun_safetensors_expect(&f, "nope", 1, (int64_t[]){2}, err, sizeof err);
    check(!t && strstr(err, "'nope'") && strstr(err, path), "missing tensor named");
    printf("     %s\n", err);
    hetrun_safetensors_close(&f);
    check(f.map == NULL && f.tensors == NULL, "close zeroes the reader");

    path = write_file("empty_ok", "{}", 0, NULL, 0);
    rc = hetrun_safetensors_open(path, &f, err, sizeof err);
    check(rc == 0 && f.count == 0, "a file with no tensors and no data opens");
    hetrun_safetensors_close(&f);
}

#define T(name, dtype, shape, b, e)                                                                \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    valid_file();

    expect_refused("zero_header", "", 0, 0, "not a JSON object", NULL);
    /* A 5-byte file: no room for the length. */
    {
        char p[256];
        snprintf(p, sizeof p, "%s/five.safetensors", dir);
        FILE *fp = fopen(p, "wb");
        fwrite("\x02\0\0\0\0", 1, 5, fp);
        fclose(fp);
        hetrun_safetensors f;
        char err[512];
        int rc = hetrun_safetensors_open(p, &f, err, sizeof err);
        check(rc != 0 && strstr(err, "5 bytes"), "5-byte file refused");
    }
    expect_refused("len_past_end", "{}", 4096, 0, "runs past the end of the file", NULL);
    expect_refused("len_2gib", "{}", 2ull << 30, 0, "exceeds the 100 MiB limit", NULL);
    expect_refused("len_huge", "{}", ~0ull, 0, "exceeds the 100 MiB limit", NULL);
    expect_refused("not_object", "[1,2]", 0, 0, "not a JSON object", NULL);
    expect_refused("string_json", "\"x\"", 0, 0, "not a JSON object", NULL);
    expect_refused("bad_json", "{\"a\":", 0, 0, "not valid JSON", NULL);
    expect_refused("trailing", "{} x", 0, 0, "bytes after the header", NULL);
    expect_refused("entry_not_obj", "{\"a\":3}", 0, 0, "'a'", "not an object");
    expect_refused("no_dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "'a'",
                   "dtype");
    expect_refused("unknown_dtype", "{" T("a", "F4", "[2]", 0, 1) "}", 0, 1, "'a'",
                   "unknown dtype \"F4\"");
    expect_refused("neg_shape", "{" T("a", "F32", "[-1]", 0, 4) "}", 0, 4, "'a'", "shape[0]");
    expect_refused("frac_shape", "{" T("a", "F32", "[1.5]", 0, 4) "}", 0, 4, "'a'", "shape[0]");
    expect_refused("many_dims", "{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 0, 4, "'a'",
                   "9 dimensions");
    expect_refused("shape_overflow", "{" T("a", "F32", "[4294967296,4294967296,16]", 0, 4) "}", 0,
                   4, "'a'", "overflows");
    expect_refused("bytes_overflow", "{" T("a", "F64", "[2147483648,2147483648,2]", 0, 4) "}", 0, 4,
                   "'a'", "overflow 64 bits of bytes");
    expect_refused("size_mismatch", "{" T("a", "F32", "[3]", 0, 8) "}", 0, 8, "'a'",
                   "hold 8 bytes");
    expect_refused("end_before", "{" T("a", "F32", "[0]", 8, 4) "}", 0, 8, "'a'", "end before");
    expect_refused("bad_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
                   0, 4, "'a'", "data_offsets");
    expect_refused("out_of_range",
                   "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[4]", 8, 24) "}", 0, 16, "'b'",
                   "run past the data section");
    expect_refused("overlap", "{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[2]", 8, 16) "}",
                   0, 16, "'a'", "overlap");
    expect_refused("gap", "{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 8, 12) "}", 0, 12,
                   "'b'", "4 unused bytes");
    expect_refused("uncovered", "{" T("a", "F32", "[1]", 0, 4) "}", 0, 12, "cover 4 bytes",
                   "12 data bytes");
    expect_refused("duplicate", "{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8) "}",
                   0, 8, "'a'", "named twice");
    expect_refused("bad_metadata", "{\"__metadata__\":{\"x\":1}}", 0, 0, "__metadata__", NULL);
    expect_refused("data_no_tensors", "{}", 0, 4, "no tensors", NULL);
    {
        hetrun_safetensors f;
        char err[512];
        int rc = hetrun_safetensors_open("/nonexistent/model.safetensors", &f, err, sizeof err);
        check(rc != 0 && strstr(err, "/nonexistent/model.safetensors") && strstr(err, "open"),
              "a missing file is named");
    }

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
