/**
 * @file launcher/io/safetensors_write.h
 * @brief Writes named tensors as a safetensors file (readable by PyTorch's safetensors
 *        and by io/safetensors.h), atomically, with a CRC32 of the data section in the
 *        header's __metadata__ ("crc32", 8 hex digits) so a torn or corrupt file is caught.
 */
#ifndef HETRUN_IO_SAFETENSORS_WRITE_H
#define HETRUN_IO_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

/** One tensor to write: name, dtype, shape, and its bytes in host memory. */
typedef struct hetrun_st_out {
    const char *name;
    hetrun_dtype dtype; /**< F32, F16, BF16, F64, I32 */
    int ndim;
    int64_t shape[4];
    const void *data; /**< elements x dtype size bytes */
} hetrun_st_out;

/**
 * Writes `n` tensors, in the order given, to `path` atomically (temp file, fsync, rename,
 * fsync of the folder). `meta` holds `nmeta` key/value string pairs for __metadata__ (the
 * writer adds "crc32"). Returns 0, or -1 with path and cause in `err`.
 */
int hetrun_safetensors_write(const char *path, const hetrun_st_out *t, size_t n,
                             const char *const (*meta)[2], size_t nmeta, char *err, size_t err_len);

/** CRC32 (zlib) of the data section of a mapped safetensors file of `len` bytes, and the
 *  "crc32" its __metadata__ states (-1 when absent or unreadable). */
int hetrun_safetensors_crc(const void *map, size_t len, uint32_t *computed, int64_t *stated);

#endif
