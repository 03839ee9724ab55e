#define _GNU_SOURCE
#include "stream_shim.h"

FILE *stream_open_writer(void *cookie, stream_write_function write) {
    cookie_io_functions_t functions = {.read = NULL, .write = write, .seek = NULL, .close = NULL};
    return fopencookie(cookie, "w", functions);
}

FILE *stream_stdout(void) { return stdout; }

void stream_replace_standard(FILE *out, FILE *err) {
    stdout = out;
    stderr = err;
}
