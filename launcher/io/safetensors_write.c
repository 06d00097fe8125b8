/* safetensors writer with a CRC32 in __metadata__ (safetensors_write.h). */
#include "io/safetensors_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "kernels/catalogue.h"
#include "report/report.h"

static const char *st_dtype(hetrun_dtype d) {
    switch (d) {
    case HETRUN_F32: return "F32";
    case HETRUN_F16: return "F16";
    case HETRUN_BF16: return "BF16";
    case HETRUN_F64: return "F64";
    case HETRUN_I32: return "I32";
    default: return NULL;
    }
}

static uint32_t crc_of(const unsigned char *p, uint64_t len) {
    uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);
    for (uint64_t off = 0; off < len;) {
        uint64_t chunk = len - off > (1u << 30) ? (1u << 30) : len - off;
        c = (uint32_t)crc32(c, p + off, (uInt)chunk);
        off += chunk;
    }
    return c;
}

static uint64_t elements(const hetrun_st_out *t) {
    uint64_t e = 1;
    for (int d = 0; d < t->ndim; d++)
        e *= (uint64_t)t->shape[d];
    return e;
}

int hetrun_safetensors_write(const char *path, const hetrun_st_out *t, size_t n,
                             const char *const (*meta)[2], size_t nmeta, char *err,
                             size_t err_len) {
    uint64_t data_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!st_dtype(t[i].dtype) || t[i].ndim < 0 || t[i].ndim > 4) {
            snprintf(err, err_len, "safetensors %s: tensor %s: unsupported dtype or rank", path,
                     t[i].name);
            return -1;
        }
        data_len += elements(&t[i]) * hetrun_dtype_size(t[i].dtype);
    }
    unsigned char *data = malloc(data_len ? data_len : 1);
    cJSON *h = cJSON_CreateObject(), *md = cJSON_CreateObject();
    if (!data || !h || !md) {
        snprintf(err, err_len, "safetensors %s: out of host memory (%llu bytes)", path,
                 (unsigned long long)data_len);
        free(data), cJSON_Delete(h), cJSON_Delete(md);
        return -1;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = elements(&t[i]) * hetrun_dtype_size(t[i].dtype);
        memcpy(data + off, t[i].data, bytes);
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", st_dtype(t[i].dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t[i].ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *range = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    for (size_t i = 0; i < nmeta; i++)
        cJSON_AddStringToObject(md, meta[i][0], meta[i][1]);
    char crc[9];
    snprintf(crc, sizeof crc, "%08x", crc_of(data, data_len));
    cJSON_AddStringToObject(md, "crc32", crc);
    cJSON_AddItemToObject(h, "__metadata__", md);
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!json) {
        snprintf(err, err_len, "safetensors %s: out of host memory for the header", path);
        free(data);
        return -1;
    }
    /* The header is padded with spaces so the data starts 8-byte aligned. */
    uint64_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8;
    size_t total = (size_t)(8 + padded + data_len);
    char *file = malloc(total);
    if (!file) {
        snprintf(err, err_len, "safetensors %s: out of host memory (%zu bytes)", path, total);
        free(json), free(data);
        return -1;
    }
    for (int b = 0; b < 8; b++)
        file[b] = (char)((padded >> (8 * b)) & 0xff);
    memcpy(file + 8, json, hlen);
    memset(file + 8 + hlen, ' ', padded - hlen);
    memcpy(file + 8 + padded, data, data_len);
    free(json), free(data);
    int rc = hetrun_write_atomic(path, file, total, err, err_len);
    free(file);
    return rc == 0 ? 0 : -1;
}

int hetrun_safetensors_crc(const void *map, size_t len, uint32_t *computed, int64_t *stated) {
    const unsigned char *p = map;
    *stated = -1;
    if (len < 8) return -1;
    uint64_t hlen = 0;
    for (int b = 0; b < 8; b++)
        hlen |= (uint64_t)p[b] << (8 * b);
    if (hlen > len - 8) return -1;
    *computed = crc_of(p + 8 + hlen, len - 8 - hlen);
    cJSON *h = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "__metadata__"), "crc32"));
    char *end = NULL;
    unsigned long x = v ? strtoul(v, &end, 16) : 0;
    if (v && end && *end == '\0' && strlen(v) == 8) *stated = (int64_t)x;
    cJSON_Delete(h);
    return 0;
}
