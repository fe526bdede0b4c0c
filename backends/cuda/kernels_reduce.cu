// Reductions: the bias gradient (a column sum) and the sum of squares used
// for global-norm gradient clipping. Both are deterministic: fixed launch
// shapes, fixed-order combination, no float atomics.
#include "kernels_colsum.cuh"

namespace {

using rc_cuda::block_sum;

struct BiasTerm {
    const float *dout;
    int C;
    __device__ float2 operator()(int n, int c) const {
        return make_float2(dout[(size_t)n * (size_t)C + c], 0.0f);
    }
};

// Pass 1: each block writes the double sum of its grid-stride share.
__global__ void sum_squares_partials_kernel(const float *x, size_t n, double *partials) {
    __shared__ double smem[32];
    double acc = 0.0;
    for (size_t i = rc_cuda::global_thread_index(); i < n; i += rc_cuda::global_thread_count()) {
        const double v = x[i];
        acc += v * v;
    }
    const double total = block_sum(acc, smem);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Pass 2: one block adds the partials; writes partials[CUDA_REDUCE_BLOCKS].
__global__ void sum_squares_finish_kernel(double *partials, int n_partials) {
    __shared__ double smem[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < n_partials; i += blockDim.x) acc += partials[i];
    const double total = block_sum(acc, smem);
    if (threadIdx.x == 0) partials[CUDA_REDUCE_BLOCKS] = total;
}

} // namespace

extern "C" {

cudaError_t cuda_launch_bias_backward(cudaStream_t s, float *dbias, const float *dout, int N,
                                      int C, float *partials) {
    const BiasTerm term = {dout, C};
    return rc_cuda::launch_colsum(s, term, dbias, (float *)0, N, C, partials);
}

cudaError_t cuda_launch_sum_squares(cudaStream_t s, const float *x, size_t n, double *reduce) {
    size_t blocks = (n + CUDA_REDUCE_THREADS - 1) / CUDA_REDUCE_THREADS;
    if (blocks > CUDA_REDUCE_BLOCKS) blocks = CUDA_REDUCE_BLOCKS;
    if (blocks < 1) blocks = 1;
    sum_squares_partials_kernel<<<(unsigned)blocks, CUDA_REDUCE_THREADS, 0, s>>>(x, n, reduce);
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    sum_squares_finish_kernel<<<1, CUDA_REDUCE_THREADS, 0, s>>>(reduce, (int)blocks);
    return cudaGetLastError();
}

} // extern "C"
