// Masked attention softmax over rows of [B, H, Tq, Tk], forward and backward:
// the queries are the last Tq of the Tk positions, query q at position
// Tk - Tq + q. One warp per row (query q of head h in sequence b); lanes
// stride over the keys, and warp butterflies give every lane the same max and
// sums.
//
// The query at position i sees key j iff j <= i, key_mask[b, j] != 0, and key_mask[b, j] is 1
// (shared) or equals key_mask[b, i] (the query's branch, for packed pairs);
// with a null mask every key j <= i is visible. Hidden keys get
// probability 0; a row that sees nothing (a padding query under left
// padding) is all zeros. Each lane reads and writes only its own keys, and
// the reductions finish before any write, so probs may alias scores and
// dscores may alias dprobs.
#include <cmath>

#include "kernels_common.cuh"

namespace {

using rc_cuda::warp_max;
using rc_cuda::warp_sum;

constexpr int kWarpsPerBlock = 4;

__device__ inline bool key_visible(const int32_t *key_mask_row, int i, int j) {
    if (j > i) return false;
    if (key_mask_row == nullptr) return true;
    const int32_t key = key_mask_row[j];
    return key != 0 && (key == 1 || key == key_mask_row[i]);
}

__global__ void softmax_forward_kernel(float *probs, const float *scores,
                                       const int32_t *key_mask, int H, int Tq, int T,
                                       long long n_rows) {
    const long long row = (long long)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
    if (row >= n_rows) return; // whole warps leave together
    const int lane = threadIdx.x & 31;
    const int i = T - Tq + (int)(row % Tq); // the query's position among the T keys
    const long long b = row / ((long long)H * Tq);
    const int32_t *mask_row = key_mask ? key_mask + b * T : nullptr;
    const float *s = scores + (size_t)row * (size_t)T;
    float *p = probs + (size_t)row * (size_t)T;

    float max_score = -INFINITY;
    int any_visible = 0;
    for (int j = lane; j < T; j += 32) {
        if (key_visible(mask_row, i, j)) {
            max_score = fmaxf(max_score, s[j]);
            any_visible = 1;
        }
    }
    max_score = warp_max(max_score);
    if (!__any_sync(0xffffffffu, any_visible)) {
        for (int j = lane; j < T; j += 32) p[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32)
        if (key_visible(mask_row, i, j)) sum += expf(s[j] - max_score);
    sum = warp_sum(sum);
    for (int j = lane; j < T; j += 32)
        p[j] = key_visible(mask_row, i, j) ? expf(s[j] - max_score) / sum : 0.0f;
}

__global__ void softmax_backward_kernel(float *dscores, const float *dprobs, const float *probs,
                                        int T, long long n_rows) {
    const long long row = (long long)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
    if (row >= n_rows) return;
    const int lane = threadIdx.x & 31;
    const size_t base = (size_t)row * (size_t)T;
    const float *p = probs + base;
    const float *dp = dprobs + base;
    float *ds = dscores + base;

    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) dot += p[j] * dp[j];
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) ds[j] = p[j] * (dp[j] - dot);
}

unsigned softmax_blocks(long long n_rows) {
    return (unsigned)((n_rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

} // namespace

extern "C" {

cudaError_t cuda_launch_attention_softmax_forward(cudaStream_t s, float *probs,
                                                  const float *scores,
                                                  const int32_t *key_mask, int B, int H,
                                                  int Tq, int Tk) {
    const long long n_rows = (long long)B * H * Tq;
    if ((n_rows + kWarpsPerBlock - 1) / kWarpsPerBlock > 0x7fffffffLL)
        return cudaErrorInvalidConfiguration;
    softmax_forward_kernel<<<softmax_blocks(n_rows), 32 * kWarpsPerBlock, 0, s>>>(
        probs, scores, key_mask, H, Tq, Tk, n_rows);
    return cudaGetLastError();
}

cudaError_t cuda_launch_attention_softmax_backward(cudaStream_t s, float *dscores,
                                                   const float *dprobs, const float *probs,
                                                   int B, int H, int Tq, int Tk) {
    const long long n_rows = (long long)B * H * Tq;
    if ((n_rows + kWarpsPerBlock - 1) / kWarpsPerBlock > 0x7fffffffLL)
        return cudaErrorInvalidConfiguration;
    softmax_backward_kernel<<<softmax_blocks(n_rows), 32 * kWarpsPerBlock, 0, s>>>(
        dscores, dprobs, probs, Tk, n_rows);
    return cudaGetLastError();
}

} // extern "C"
