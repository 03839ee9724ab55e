#include <stddef.h>

/// Bytes the C heap holds for the program right now (glibc's mallinfo2: arena chunks in use plus mmapped blocks).
/// Tests compare a network's memory plan with what building the network really allocates; Swift cannot call
/// mallinfo2 itself (its struct is not imported by the Glibc module).
size_t dtrain_heap_bytes_in_use(void);
