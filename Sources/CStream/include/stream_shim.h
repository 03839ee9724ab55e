#ifndef STREAM_SHIM_H
#define STREAM_SHIM_H
#include <stdio.h>
#include <sys/types.h>

/// A write-only C stream whose every write calls `write(cookie, bytes, count)`: glibc's fopencookie, which needs
/// _GNU_SOURCE and so is not visible to Swift through Glibc.
typedef ssize_t (*stream_write_function)(void *cookie, const char *bytes, size_t count);
FILE *stream_open_writer(void *cookie, stream_write_function write);

/// Replaces the process's stdout and stderr streams (glibc's variables of those names).
void stream_replace_standard(FILE *out, FILE *err);

/// C's stdout, read at each call (it may have been replaced): Swift 6 refuses to read the C global directly.
FILE *stream_stdout(void);

#endif
