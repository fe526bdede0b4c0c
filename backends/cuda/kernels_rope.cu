// Rotary position embedding, rotate-half form (HF Llama's
// apply_rotary_pos_emb), in place on x [N, H * D] with row stride ld.
//
// One thread per (pair i of a head, row): it reads x[i] and x[i + D/2] of
// its head before writing either, so no two threads touch the same element.
// With c = cos_table[p, i], s = sin_table[p, i] at the row's position p
// (inverse: s negated, the rotation's transpose):
//   x[i] <- x[i] c - x[i + D/2] s,  x[i + D/2] <- x[i + D/2] c + x[i] s
// A position outside the tables leaves the row as it is and raises the flag.
#include "kernels_common.cuh"

namespace {

constexpr int kRopeThreads = 128;

// Grid: (N rows, pair blocks): rows on x, whose limit is 2^31 - 1.
__global__ void rope_kernel(float *x, int ld, const int32_t *positions, const float *cos_table,
                            const float *sin_table, long long table_rows, int H, int pairs,
                            int inverse, int *flag, int flag_code) {
    const int n = blockIdx.x;
    const int pair = blockIdx.y * blockDim.x + threadIdx.x;
    const int32_t p = positions[n];
    if (p < 0 || (long long)p >= table_rows) {
        if (pair == 0) rc_cuda::raise_flag(flag, flag_code, n, p, table_rows);
        return;
    }
    if (pair >= H * pairs) return;
    const int head = pair / pairs, i = pair % pairs;
    const size_t at = (size_t)p * (size_t)pairs + i;
    const float c = cos_table[at];
    const float s = inverse ? -sin_table[at] : sin_table[at];
    float *first = x + (size_t)n * (size_t)ld + (size_t)head * 2 * pairs + i;
    float *second = first + pairs;
    const float a = *first, b = *second;
    *first = a * c - b * s;
    *second = b * c + a * s;
}

} // namespace

extern "C" {

cudaError_t cuda_launch_rope(cudaStream_t s, float *x, int ld, const int32_t *positions,
                             const float *cos_table, const float *sin_table,
                             long long table_rows, int N, int H, int D, int inverse, int *flag,
                             int flag_code) {
    const int pairs = D / 2;
    const dim3 grid((unsigned)N, (unsigned)((H * pairs + kRopeThreads - 1) / kRopeThreads));
    rope_kernel<<<grid, kRopeThreads, 0, s>>>(x, ld, positions, cos_table, sin_table, table_rows,
                                              H, pairs, inverse != 0, flag, flag_code);
    return cudaGetLastError();
}

} // extern "C"
