// LayerNorm over the last dimension, forward and backward. One block per
// row; row statistics use the fixed-order block_sum. The parameter gradients
// go through the deterministic column sums of kernels_colsum.cuh.
//
// Forward follows torch: two passes (mean, then the biased variance of the
// centred values), rstd = 1 / sqrt(var + eps). Backward, with
// xhat = (x - mean) * rstd and g = dout * weight:
//   dinp += rstd * (g - mean(g) - xhat * mean(g * xhat))
//   dweight += sum_n dout * xhat ; dbias += sum_n dout
#include "kernels_colsum.cuh"

namespace {

using rc_cuda::block_sum;

constexpr int kLayernormThreads = 256;

__global__ void layernorm_forward_kernel(float *out, float *mean_out, float *rstd_out,
                                         const float *inp, const float *weight,
                                         const float *bias, int C, float eps) {
    // Statistics in double, two passes, as the CPU reference computes them,
    // so a large row mean does not cost the variance its precision.
    __shared__ double smem[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * (size_t)C;
    float *y = out + row * (size_t)C;

    double sum = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) sum += x[c];
    const double mu = block_sum(sum, smem) / (double)C;

    double sq = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const double d = (double)x[c] - mu;
        sq += d * d;
    }
    const double var = block_sum(sq, smem) / (double)C;
    const float mean = (float)mu;
    const float rstd = (float)(1.0 / sqrt(var + (double)eps));

    // y may alias x: each thread reads then writes only its own columns.
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = (x[c] - mean) * rstd;
        if (weight) v *= weight[c];
        if (bias) v += bias[c];
        y[c] = v;
    }
    if (threadIdx.x == 0) {
        if (mean_out) mean_out[row] = mean;
        if (rstd_out) rstd_out[row] = rstd;
    }
}

__global__ void layernorm_backward_input_kernel(float *dinp, const float *dout,
                                                const float *inp, const float *weight,
                                                const float *mean, const float *rstd, int C) {
    __shared__ double smem[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * (size_t)C;
    const float *dy = dout + row * (size_t)C;
    float *dx = dinp + row * (size_t)C;
    const float mu = mean[row], rs = rstd[row];

    // Row sums in double, as the CPU reference does.
    double sum_g = 0.0, sum_g_xhat = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = weight ? dy[c] * weight[c] : dy[c];
        const float xhat = (x[c] - mu) * rs;
        sum_g += g;
        sum_g_xhat += (double)g * xhat;
    }
    const float mean_g = (float)(block_sum(sum_g, smem) / (double)C);
    const float mean_g_xhat = (float)(block_sum(sum_g_xhat, smem) / (double)C);

    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = weight ? dy[c] * weight[c] : dy[c];
        const float xhat = (x[c] - mu) * rs;
        dx[c] += (g - mean_g - xhat * mean_g_xhat) * rs;
    }
}

// (dout * xhat, dout) for the column sums.
struct LayernormParamTerm {
    const float *dout, *inp, *mean, *rstd;
    int C;
    __device__ float2 operator()(int n, int c) const {
        const size_t i = (size_t)n * (size_t)C + c;
        const float dy = dout[i];
        return make_float2(dy * (inp[i] - mean[n]) * rstd[n], dy);
    }
};

} // namespace

extern "C" {

cudaError_t cuda_launch_layernorm_forward(cudaStream_t s, float *out, float *mean, float *rstd,
                                          const float *inp, const float *weight,
                                          const float *bias, int N, int C, float eps) {
    layernorm_forward_kernel<<<(unsigned)N, kLayernormThreads, 0, s>>>(out, mean, rstd, inp,
                                                                        weight, bias, C, eps);
    return cudaGetLastError();
}

cudaError_t cuda_launch_layernorm_backward(cudaStream_t s, float *dinp, float *dweight,
                                           float *dbias, const float *dout, const float *inp,
                                           const float *weight, const float *mean,
                                           const float *rstd, int N, int C, float *partials) {
    if (dinp) {
        layernorm_backward_input_kernel<<<(unsigned)N, kLayernormThreads, 0, s>>>(
            dinp, dout, inp, weight, mean, rstd, C);
        const cudaError_t status = cudaGetLastError();
        if (status != cudaSuccess) return status;
    }
    if (!dweight && !dbias) return cudaSuccess;
    const LayernormParamTerm term = {dout, inp, mean, rstd, C};
    return rc_cuda::launch_colsum(s, term, dweight, dbias, N, C, partials);
}

} // extern "C"
