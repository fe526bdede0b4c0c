// Device helpers shared by the CUDA kernels: grid sizing for element-wise
// loops, fixed-order warp/block sums, and the bad-index flag.
//
// Every reduction here combines values in an order fixed by the launch shape
// alone (butterfly within a warp, then warps in index order), never with
// floating-point atomics, so repeated runs give bitwise-identical results.
#ifndef REWARDC_CUDA_KERNELS_COMMON_CUH
#define REWARDC_CUDA_KERNELS_COMMON_CUH

#include <cstddef>

#include "cuda_internal.h"

namespace rc_cuda {

constexpr int kElementwiseThreads = 256;
// Grid-stride loops cover any n; this many blocks already fill an H100.
constexpr size_t kMaxElementwiseBlocks = 65535;

inline unsigned elementwise_blocks(size_t n) {
    size_t blocks = (n + kElementwiseThreads - 1) / kElementwiseThreads;
    if (blocks > kMaxElementwiseBlocks) blocks = kMaxElementwiseBlocks;
    return (unsigned)(blocks < 1 ? 1 : blocks);
}

__device__ inline size_t global_thread_index() {
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ inline size_t global_thread_count() { return (size_t)gridDim.x * blockDim.x; }

// Butterfly sums: every lane ends with the same bits (a+b == b+a exactly).
__device__ inline float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ inline double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the total. `smem` holds 32 values; the leading barrier lets a
// caller reuse it for consecutive sums.
template <typename T>
__device__ inline T block_sum(T v, T *smem) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < n_warps; w++) total += smem[w];
    return total;
}

// An index outside its table (a token id, a row, a rope position): the first
// failing thread records its op code, the position, the bad index and the
// table size (flag[0..3]); later ones leave the report alone. Integer
// atomics only.
__device__ inline void raise_flag(int *flag, int code, int n, long long id,
                                  long long table_rows) {
    if (atomicCAS(flag, 0, code) == 0) {
        flag[1] = n;
        flag[2] = (int)id;
        flag[3] = (int)(table_rows < 0x7fffffffLL ? table_rows : 0x7fffffffLL);
    }
}

} // namespace rc_cuda

#endif
