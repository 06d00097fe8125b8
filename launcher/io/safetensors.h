/**
 * @file launcher/io/safetensors.h
 * @brief Reads safetensors files (the Hugging Face weight format): an 8-byte little-endian
 *        header length, a JSON header naming each tensor's dtype, shape and byte range, then
 *        the tensor bytes. The file is memory-mapped; tensors are views into the mapping.
 *
 * Everything in the header is checked before any tensor is handed out: the header length
 * against the file and a 100 MiB limit, JSON syntax (an object), each entry's fields, shape
 * products against overflow, byte ranges against dtype x shape, and that the ranges tile
 * the data section exactly (no overlap, no gap, nothing past the end), and that no name is
 * repeated. Every refusal names the file and, where there is one, the tensor.
 */
#ifndef HETRUN_IO_SAFETENSORS_H
#define HETRUN_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

/** The header length this reader accepts (the reference implementation's limit). */
#define HETRUN_SAFETENSORS_MAX_HEADER (100u << 20)
/** Dimensions per tensor. */
#define HETRUN_SAFETENSORS_MAX_DIMS 8

typedef struct hetrun_st_tensor {
    const char *name;  /**< points into the reader's own copy */
    char dtype[8];     /**< as written in the file: "F32", "BF16", "I64"... */
    int readable;      /**< 1 for F32, F16 and BF16: the dtypes hetrun reads */
    hetrun_dtype type; /**< the matching hetrun dtype when readable */
    int ndim;
    int64_t shape[HETRUN_SAFETENSORS_MAX_DIMS];
    uint64_t elements; /**< product of shape (1 for a scalar) */
    uint64_t begin;    /**< byte range in the data section */
    uint64_t end;      /**< one past the last byte */
    const void *data;  /**< begin .. end, in the mapping; may be unaligned */
} hetrun_st_tensor;

typedef struct hetrun_safetensors {
    char *path;
    void *map;
    size_t map_len;
    uint64_t header_len;
    uint64_t data_len;         /**< bytes after the header */
    hetrun_st_tensor *tensors; /**< sorted by name */
    size_t count;
    char *names; /**< storage of the tensor names */
} hetrun_safetensors;

/**
 * Opens and validates `path`. Returns 0, or -1 with a message naming the file, the tensor
 * (when one is at fault) and the cause in `err`; `f` is then zeroed.
 */
int hetrun_safetensors_open(const char *path, hetrun_safetensors *f, char *err, size_t err_len);

/** The tensor called `name`, or NULL. */
const hetrun_st_tensor *hetrun_safetensors_find(const hetrun_safetensors *f, const char *name);

/**
 * The tensor called `name`, which must exist, have a readable dtype and the shape
 * `shape[0..ndim)` (what the model's config says). Returns it, or NULL with a message that
 * names the file, the tensor, and what was found against what was expected.
 */
const hetrun_st_tensor *hetrun_safetensors_expect(const hetrun_safetensors *f, const char *name,
                                                  int ndim, const int64_t *shape, char *err,
                                                  size_t err_len);

/** Copies a readable tensor's elements to `dst` as fp32 (exact for F16 and BF16). */
void hetrun_safetensors_to_f32(const hetrun_st_tensor *t, float *dst);

/** Unmaps and frees; `f` is zeroed. Safe on a zeroed struct. */
void hetrun_safetensors_close(hetrun_safetensors *f);

#endif
