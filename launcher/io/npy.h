/**
 * @file launcher/io/npy.h
 * @brief NumPy .npy files of 2-D little-endian float32 arrays (C order), which numpy.load and
 *        torch.from_numpy read directly: written atomically, read with the header checked.
 */
#ifndef HETRUN_IO_NPY_H
#define HETRUN_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

/**
 * Writes rows x cols floats to `path` (format 1.0, descr '<f4'), replacing it atomically.
 * An existing file that is not a .npy file is refused (hetrun writes over no file it did not
 * create). Returns 0 or -1 with the path and cause in `err`.
 */
int hetrun_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols, char *err,
                         size_t err_len);

/**
 * Reads a 2-D '<f4' C-order array; *data is malloc'ed (the caller frees). Returns 0 or -1 with
 * the path and cause in `err` (other dtypes, Fortran order, other ranks, short data).
 */
int hetrun_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols, char *err,
                        size_t err_len);

#endif
