// OpenMPI defines MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ... as macros over addresses of incomplete globals,
// which Swift cannot import. These one-line functions hand them to Swift.
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cmpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op cmpi_op_sum(void) { return MPI_SUM; }
static inline MPI_Op cmpi_op_max(void) { return MPI_MAX; }
static inline MPI_Op cmpi_op_min(void) { return MPI_MIN; }
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request cmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info cmpi_info_null(void) { return MPI_INFO_NULL; }
static inline int cmpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

// The collectives watchdog keeps "which collective, since when" in plain 64-bit words that the calling thread
// writes and the watchdog thread reads. Swift has no portable atomics without a package, so these two builtins do it.
#include <stdint.h>
static inline void cmpi_atomic_store_u64(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}
static inline uint64_t cmpi_atomic_load_u64(uint64_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

// The scale that turns a reduced sum into an average. In C so it vectorises in debug builds too (a 2 GiB average
// in the tests), and stays memory-bound in release ones.
static inline void cmpi_scale_floats(float *values, size_t count, float factor) {
    for (size_t i = 0; i < count; i++) values[i] *= factor;
}

// The benchmark's reference: a plain C loop of in-place float sum allreduces, measured in the same process on the
// same buffer as the Swift communicator, so the two figures compare only the wrapper's cost and its chunking.
static inline int cmpi_reference_allreduce_loop(float *buffer, int count, int iterations, MPI_Comm comm) {
    for (int i = 0; i < iterations; i++) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

// C's standard streams, read at each call (dtrain's log may replace them): Swift 6 refuses to read the C globals
// directly, as shared mutable state.
#include <stdio.h>
static inline FILE *cmpi_stdout(void) { return stdout; }
static inline FILE *cmpi_stderr(void) { return stderr; }
