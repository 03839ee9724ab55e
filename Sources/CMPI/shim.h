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

// bfloat16 on the wire: the top half of a float32 (same exponent range, 8 bits of mantissa), so a gradient
// allreduce moves half the bytes. Rounding is to nearest even; the values are finite (the step checks them first).
#include <string.h>
static inline MPI_Datatype cmpi_uint16(void) { return MPI_UINT16_T; }
static inline uint16_t cmpi_bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}
static inline float cmpi_bf16_to_float(uint16_t half) {
    uint32_t bits = (uint32_t)half << 16;
    float value;
    memcpy(&value, &bits, 4);
    return value;
}
// The reduction MPI runs on bf16 pieces: each pair is added in float32 and rounded once, at every hop.
static void cmpi_bf16_sum(void *in, void *inout, int *count, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *count; i++) b[i] = cmpi_bf16_from_float(cmpi_bf16_to_float(a[i]) + cmpi_bf16_to_float(b[i]));
}
static inline int cmpi_bf16_sum_create(MPI_Op *op) { return MPI_Op_create(cmpi_bf16_sum, 1, op); }
// Packs `count` floats as bf16. With `residual` (error feedback), what rounding dropped last time is added back
// first and what it drops now is kept for next time, so no part of a gradient is lost for good.
static inline void cmpi_pack_bf16(const float *values, uint16_t *packed, size_t count, float *residual) {
    if (residual) {
        for (size_t i = 0; i < count; i++) {
            float value = values[i] + residual[i];
            packed[i] = cmpi_bf16_from_float(value);
            float dropped = value - cmpi_bf16_to_float(packed[i]);
            residual[i] = dropped == dropped ? dropped : 0.0f; // a NaN or infinity (a skipped step) is not kept
        }
    } else {
        for (size_t i = 0; i < count; i++) packed[i] = cmpi_bf16_from_float(values[i]);
    }
}
// Unpacks `count` bf16 values into floats, times `scale` (1/ranks for an average).
static inline void cmpi_unpack_bf16(const uint16_t *packed, float *values, size_t count, float scale) {
    for (size_t i = 0; i < count; i++) values[i] = cmpi_bf16_to_float(packed[i]) * scale;
}
