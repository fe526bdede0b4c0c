// Deterministic column sums over N rows, used for bias and LayerNorm
// parameter gradients: dst[c] += sum_n term(n, c).
//
// Pass 1 splits the rows into cuda_colsum_chunks(N) chunks; a (32 x 8) block
// covers 32 columns of one chunk, each of its 8 row lanes sums every 8th row
// in order, and lane 0 adds the 8 lane sums in order into partials[chunk][c].
// Pass 2 adds the chunk partials in chunk order. No float atomics, and the
// shape depends only on N and C, so results are reproducible bit for bit.
// Two sums (.x, .y) travel together so LayerNorm reads its inputs once.
#ifndef REWARDC_CUDA_KERNELS_COLSUM_CUH
#define REWARDC_CUDA_KERNELS_COLSUM_CUH

#include "kernels_common.cuh"

namespace rc_cuda {

constexpr int kColsumColumns = 32;
constexpr int kColsumRowLanes = 8;

template <typename Term>
__global__ void colsum_partials_kernel(Term term, float2 *partials, int N, int C,
                                       int rows_per_chunk) {
    __shared__ float2 lane_sums[kColsumRowLanes][kColsumColumns];
    const int c = blockIdx.x * kColsumColumns + threadIdx.x;
    const int chunk = blockIdx.y;
    const long long row_begin = (long long)chunk * rows_per_chunk;
    const long long row_end = row_begin + rows_per_chunk < N ? row_begin + rows_per_chunk : N;
    float2 acc = make_float2(0.0f, 0.0f);
    if (c < C) {
        for (long long n = row_begin + threadIdx.y; n < row_end; n += kColsumRowLanes) {
            const float2 t = term((int)n, c);
            acc.x += t.x;
            acc.y += t.y;
        }
    }
    lane_sums[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float2 sum = lane_sums[0][threadIdx.x];
        for (int lane = 1; lane < kColsumRowLanes; lane++) {
            sum.x += lane_sums[lane][threadIdx.x].x;
            sum.y += lane_sums[lane][threadIdx.x].y;
        }
        partials[(size_t)chunk * (size_t)C + c] = sum;
    }
}

// static: this header is compiled into more than one .cu file.
static __global__ void colsum_finish_kernel(float *dst_x, float *dst_y, const float2 *partials,
                                     int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float2 acc = make_float2(0.0f, 0.0f);
    for (int k = 0; k < chunks; k++) {
        const float2 p = partials[(size_t)k * (size_t)C + c];
        acc.x += p.x;
        acc.y += p.y;
    }
    if (dst_x) dst_x[c] += acc.x;
    if (dst_y) dst_y[c] += acc.y;
}

// `partials` holds 2 * cuda_colsum_chunks(N) * C floats (cudaMalloc'd, so
// aligned for float2).
template <typename Term>
cudaError_t launch_colsum(cudaStream_t s, Term term, float *dst_x, float *dst_y, int N, int C,
                          float *partials) {
    const int chunks = cuda_colsum_chunks(N);
    const int rows_per_chunk = (N + chunks - 1) / chunks;
    float2 *partials2 = reinterpret_cast<float2 *>(partials);
    const dim3 block(kColsumColumns, kColsumRowLanes);
    const dim3 grid((unsigned)((C + kColsumColumns - 1) / kColsumColumns), (unsigned)chunks);
    colsum_partials_kernel<<<grid, block, 0, s>>>(term, partials2, N, C, rows_per_chunk);
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    const int threads = 256;
    colsum_finish_kernel<<<(unsigned)((C + threads - 1) / threads), threads, 0, s>>>(
        dst_x, dst_y, partials2, chunks, C);
    return cudaGetLastError();
}

} // namespace rc_cuda

#endif
