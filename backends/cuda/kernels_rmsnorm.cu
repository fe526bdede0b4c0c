// RMSNorm over the last dimension (HF LlamaRMSNorm in float32), forward and
// backward. One block per row; the row sum uses the fixed-order block_sum,
// the weight gradient the deterministic column sums of kernels_colsum.cuh.
//
// Forward: rstd = 1 / sqrt(mean(x^2) + eps), out = (x * rstd) * weight.
// Backward, with xhat = x * rstd and g = dout * weight:
//   dinp += rstd * (g - xhat * mean(g * xhat)) ; dweight += sum_n dout * xhat
#include "kernels_colsum.cuh"

namespace {

using rc_cuda::block_sum;

constexpr int kRmsnormThreads = 256;

__global__ void rmsnorm_forward_kernel(float *out, float *rstd_out, const float *inp,
                                       const float *weight, int C, float eps) {
    // The mean of squares in double, as the CPU reference computes it; rstd
    // is rounded to float once and used as such here and in backward.
    __shared__ double smem[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * (size_t)C;
    float *y = out + row * (size_t)C;

    double sq = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) sq += (double)x[c] * x[c];
    const double mean_sq = block_sum(sq, smem) / (double)C;
    const float rstd = (float)(1.0 / sqrt(mean_sq + (double)eps));

    // y may alias x: each thread reads then writes only its own columns.
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = x[c] * rstd;
        if (weight) v *= weight[c];
        y[c] = v;
    }
    if (threadIdx.x == 0 && rstd_out) rstd_out[row] = rstd;
}

__global__ void rmsnorm_backward_input_kernel(float *dinp, const float *dout, const float *inp,
                                              const float *weight, const float *rstd, int C) {
    __shared__ double smem[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * (size_t)C;
    const float *dy = dout + row * (size_t)C;
    float *dx = dinp + row * (size_t)C;
    const float rs = rstd[row];

    double sum_g_xhat = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = weight ? dy[c] * weight[c] : dy[c];
        sum_g_xhat += (double)g * (x[c] * rs);
    }
    const float mean_g_xhat = (float)(block_sum(sum_g_xhat, smem) / (double)C);

    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = weight ? dy[c] * weight[c] : dy[c];
        const float xhat = x[c] * rs;
        dx[c] += (g - xhat * mean_g_xhat) * rs;
    }
}

// (dout * xhat, unused) for the column sums.
struct RmsnormWeightTerm {
    const float *dout, *inp, *rstd;
    int C;
    __device__ float2 operator()(int n, int c) const {
        const size_t i = (size_t)n * (size_t)C + c;
        return make_float2(dout[i] * (inp[i] * rstd[n]), 0.0f);
    }
};

} // namespace

extern "C" {

cudaError_t cuda_launch_rmsnorm_forward(cudaStream_t s, float *out, float *rstd,
                                        const float *inp, const float *weight, int N, int C,
                                        float eps) {
    rmsnorm_forward_kernel<<<(unsigned)N, kRmsnormThreads, 0, s>>>(out, rstd, inp, weight, C,
                                                                    eps);
    return cudaGetLastError();
}

cudaError_t cuda_launch_rmsnorm_backward(cudaStream_t s, float *dinp, float *dweight,
                                         const float *dout, const float *inp,
                                         const float *weight, const float *rstd, int N, int C,
                                         float *partials) {
    if (dinp) {
        rmsnorm_backward_input_kernel<<<(unsigned)N, kRmsnormThreads, 0, s>>>(dinp, dout, inp,
                                                                               weight, rstd, C);
        const cudaError_t status = cudaGetLastError();
        if (status != cudaSuccess) return status;
    }
    if (!dweight) return cudaSuccess;
    const RmsnormWeightTerm term = {dout, inp, rstd, C};
    return rc_cuda::launch_colsum(s, term, dweight, (float *)NULL, N, C, partials);
}

} // extern "C"
