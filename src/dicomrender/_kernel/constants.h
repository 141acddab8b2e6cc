/* Constants shared by the C loops and the Cython wrapper, which reads this header with
 * `cdef extern` and exports the values (and the names below) to Python: nothing here is
 * copied by hand between C and Python. */
#ifndef DICOMRENDER_CONSTANTS_H
#define DICOMRENDER_CONSTANTS_H

/* VOI LUT Function (0028,1056) codes, as the wrapper passes them; the names as DICOM spells them. */
#define DR_LINEAR 0
#define DR_LINEAR_EXACT 1
#define DR_SIGMOID 2
#define DR_N_FUNCTIONS 3
static const char *const dr_function_names[DR_N_FUNCTIONS] = {
    [DR_LINEAR] = "LINEAR", [DR_LINEAR_EXACT] = "LINEAR_EXACT", [DR_SIGMOID] = "SIGMOID"};

/* A float64 y' within this of an integer counts as that integer (PIPELINE.md, section 5). */
#define DR_SNAP 1e-9

/* Windows (output channels) one pass renders at most. */
#define DR_MAX_WINDOWS 4

/* Instruction-set targets in order of preference: the best one the CPU runs is the default.
 * AVX-512 VBMI runs the AVX-512 loops plus a one-pass RGB interleave and a narrow-table lookup.
 * NEON is the aarch64 target (built only there; on x86-64 the CPU never "supports" it). */
#define DR_TARGET_BASELINE 0
#define DR_TARGET_AVX2 1
#define DR_TARGET_AVX512 2
#define DR_TARGET_AVX512VBMI 3
#define DR_TARGET_NEON 4
#define DR_N_TARGETS 5
static const char *const dr_target_names[DR_N_TARGETS] = {
    [DR_TARGET_BASELINE] = "baseline", [DR_TARGET_AVX2] = "avx2", [DR_TARGET_AVX512] = "avx512",
    [DR_TARGET_AVX512VBMI] = "avx512vbmi", [DR_TARGET_NEON] = "neon"};

/* Pixels per chunk: the unit the calling thread and the helper threads claim one at a time (about
 * five microseconds of the fast loop on a volume).  A helper that wakes late finds fewer chunks left
 * and costs nothing; the caller only waits for chunks a helper has claimed, i.e. is running.  A call
 * gets a second thread only from DR_MIN_CHUNKS_PER_THREAD chunks (512 K pixels) per thread on, four
 * 512 x 512 slices for two threads: waking a helper costs a system call and tens of microseconds before it runs, so
 * one slice (about 15 microseconds on one thread) stays on the calling thread, where no other thread
 * can make it slower. */
#ifndef DR_CHUNK /* a test harness may build with small chunks, to split small inputs into many */
#define DR_CHUNK 65536
#endif
#ifndef DR_MIN_CHUNKS_PER_THREAD
#define DR_MIN_CHUNKS_PER_THREAD 8
#endif

#endif
