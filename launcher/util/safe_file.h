/**
 * @file launcher/util/safe_file.h
 * @brief The one file layer of hetrun: reads that never block or balloon (a FIFO, a
 *        device or a folder is refused by name, sizes are bounded), and atomic writes
 *        (temp file beside the target, optional fsync, rename) whose temp files can be
 *        told apart and cleaned once their writer is dead.
 */
#ifndef HETRUN_UTIL_SAFE_FILE_H
#define HETRUN_UTIL_SAFE_FILE_H

#include <stddef.h>
#include <stdint.h>

/**
 * Opens `path` for reading without blocking on a FIFO, and refuses anything but a regular
 * file of at most `max_bytes`. `what` names the file's role in messages ("data",
 * "checkpoint"). Returns a blocking, close-on-exec descriptor and the size in *size, or -1
 * with "WHAT PATH: cause" in err.
 */
int hetrun_file_open_regular(const char *path, const char *what, uint64_t max_bytes, uint64_t *size,
                             char *err, size_t errlen);

/**
 * Reads a whole regular file (see hetrun_file_open_regular) into a malloc'd buffer with a
 * NUL after the last byte. Returns 0 or -1 with the cause in err.
 */
int hetrun_file_read_all(const char *path, const char *what, uint64_t max_bytes, char **buf,
                         size_t *len, char *err, size_t errlen);

/** A file being written atomically: created as a hidden temp beside `path`. */
typedef struct hetrun_atomic_file {
    int fd;
    int durable; /**< fsync the file and the folder (reports, checkpoints; not caches) */
    char path[4096];
    char tmp[4200];
} hetrun_atomic_file;

/** Creates the temp file "<dir>/.<name>.tmp.<pid>.XXXXXX" (never an existing name). */
int hetrun_atomic_begin(hetrun_atomic_file *a, const char *path, int durable, char *err,
                        size_t errlen);
/** Appends bytes to the temp file (retries short writes and EINTR). */
int hetrun_atomic_write(hetrun_atomic_file *a, const void *p, size_t n, char *err, size_t errlen);
/** fsync (when durable), rename over the target, fsync of the folder (when durable). */
int hetrun_atomic_commit(hetrun_atomic_file *a, char *err, size_t errlen);
/** Closes and removes the temp file. */
void hetrun_atomic_abort(hetrun_atomic_file *a);

/** One-shot durable atomic write of `len` bytes. Returns 0 or -1 (path and cause in err). */
int hetrun_write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen);

/** The temp name hetrun uses for `path` with `tag` after the pid ("<dir>/.<name>.tmp.<pid>.<tag>").
 */
void hetrun_atomic_temp_name(const char *path, const char *tag, char *out, size_t len);

/**
 * Removes the temp files of dead writers in `dir`: regular files named ".<prefix>*.tmp.<pid>"
 * or ".<prefix>*.tmp.<pid>.<tag>" whose pid is not a live process on this host. Returns the
 * number removed.
 */
int hetrun_clean_stale_temps(const char *dir, const char *prefix);

#endif
