// Row gathers and scatter-adds: embedding lookup / gradient, and the score
// head's row selection (the same two kernels serve both).
//
// Scatter-add must be deterministic although rows repeat (a token id appears
// many times in a batch; position ids repeat in every sequence). No float
// atomics: for each distinct target row, the block of its FIRST occurrence
// owns it and adds every source row with that id in increasing n, starting
// from the current table value -- exactly the order a serial CPU loop
// `for n: table[ids[n]] += src[n]` uses, so the sums even match bitwise.
// Blocks of later occurrences see the earlier one and exit. The cost is a
// scan of the ids per block (O(N^2) int compares over the grid, cheap for
// N = batch * seq_len tokens) instead of a sort.
#include "kernels_common.cuh"

namespace {

using rc_cuda::raise_flag;

constexpr int kRowThreads = 128;
// Columns each thread of the scatter kernel carries in registers, so the
// scan over the ids is shared by several columns.
constexpr int kScatterColumnsPerThread = 4;
constexpr int kScatterColumnsPerBlock = kRowThreads * kScatterColumnsPerThread;

// Grid: (N rows, column blocks).
__global__ void gather_kernel(float *out, const int32_t *ids, const float *table,
                              long long table_rows, int C, int accumulate, int *flag,
                              int flag_code) {
    const int n = blockIdx.x;
    const long long id = ids[n];
    if (id < 0 || id >= table_rows) {
        if (threadIdx.x == 0 && blockIdx.y == 0) raise_flag(flag, flag_code, n, id, table_rows);
        return;
    }
    const int c = blockIdx.y * kRowThreads + threadIdx.x;
    if (c >= C) return;
    const float value = table[(size_t)id * (size_t)C + c];
    float *dst = out + (size_t)n * (size_t)C + c;
    *dst = accumulate ? *dst + value : value;
}

// Grid: (N source rows, column blocks of kScatterColumnsPerBlock).
__global__ void scatter_add_kernel(float *table, const float *src, const int32_t *ids,
                                   long long table_rows, int N, int C, int *flag,
                                   int flag_code) {
    const int n = blockIdx.x;
    const int32_t id = ids[n];
    if (id < 0 || (long long)id >= table_rows) {
        if (threadIdx.x == 0 && blockIdx.y == 0) raise_flag(flag, flag_code, n, id, table_rows);
        return;
    }
    // Does this id occur earlier? Then that occurrence's block owns the row.
    int seen_earlier = 0;
    for (int m = threadIdx.x; m < n; m += blockDim.x) seen_earlier |= (ids[m] == id);
    if (__syncthreads_or(seen_earlier)) return;

    const int c0 = blockIdx.y * kScatterColumnsPerBlock + threadIdx.x;
    float *row = table + (size_t)id * (size_t)C;
    float acc[kScatterColumnsPerThread];
#pragma unroll
    for (int k = 0; k < kScatterColumnsPerThread; k++) {
        const int c = c0 + k * kRowThreads;
        acc[k] = c < C ? row[c] : 0.0f;
    }
    for (int m = n; m < N; m++) {
        if (ids[m] != id) continue;
        const float *src_row = src + (size_t)m * (size_t)C;
#pragma unroll
        for (int k = 0; k < kScatterColumnsPerThread; k++) {
            const int c = c0 + k * kRowThreads;
            if (c < C) acc[k] += src_row[c];
        }
    }
#pragma unroll
    for (int k = 0; k < kScatterColumnsPerThread; k++) {
        const int c = c0 + k * kRowThreads;
        if (c < C) row[c] = acc[k];
    }
}

} // namespace

extern "C" {

cudaError_t cuda_launch_gather(cudaStream_t s, float *out, const int32_t *ids,
                               const float *table, long long table_rows, int N, int C,
                               int accumulate, int *flag, int flag_code) {
    const dim3 grid((unsigned)N, (unsigned)((C + kRowThreads - 1) / kRowThreads));
    if (grid.y > 65535u) return cudaErrorInvalidConfiguration;
    gather_kernel<<<grid, kRowThreads, 0, s>>>(out, ids, table, table_rows, C, accumulate, flag,
                                               flag_code);
    return cudaGetLastError();
}

cudaError_t cuda_launch_scatter_add(cudaStream_t s, float *table, const float *src,
                                    const int32_t *ids, long long table_rows, int N, int C,
                                    int *flag, int flag_code) {
    const dim3 grid((unsigned)N,
                    (unsigned)((C + kScatterColumnsPerBlock - 1) / kScatterColumnsPerBlock));
    if (grid.y > 65535u) return cudaErrorInvalidConfiguration;
    scatter_add_kernel<<<grid, kRowThreads, 0, s>>>(table, src, ids, table_rows, N, C, flag,
                                                    flag_code);
    return cudaGetLastError();
}

} // extern "C"
