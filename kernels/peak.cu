// Peak non-tensor-core arithmetic: chains of fused multiply-adds that never touch memory
// inside the loop, so the FMA pipes are the only limit.
//
// Each thread keeps PEAK_ACC independent accumulators (enough independent chains to hide
// the FMA latency of ~4 cycles with 4 warp schedulers per SM) and runs x = x * m + s on
// each of them `iters` times. m and s are kernel arguments, so the compiler cannot fold
// the chain. With m = 15/16 and s = 1/16 every chain converges to exactly 1 (the fixed
// point s / (1 - m)), which the host checks, so a kernel that skipped work still fails.
//
// FLOP: 2 per FMA (multiply and add); a half2 FMA does two fp16 FMAs, so 4 FLOP.
// fp16 uses inline PTX (fma.rn.f16x2, sm_53+) so no cuda_fp16.h is needed under NVRTC.

#define PEAK_ACC 8

extern "C" __global__ void fma_f32(float* __restrict__ out, float m, float s, int iters) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  float x[PEAK_ACC];
#pragma unroll
  for (int j = 0; j < PEAK_ACC; ++j) x[j] = (float)((t + j) & 255) * (1.0f / 256.0f);
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < PEAK_ACC; ++j) x[j] = __fmaf_rn(x[j], m, s);
  }
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < PEAK_ACC; ++j) sum += x[j];
  out[t] = sum / PEAK_ACC;  // 1.0 when every chain reached the fixed point
}

// m2 and s2 hold two fp16 values each (the same in both halves), passed as raw bits.
// out[t] holds the mean of the chains' two halves, as raw half2 bits (the host decodes).
extern "C" __global__ void fma_f16x2(unsigned int* __restrict__ out, unsigned int m2,
                                     unsigned int s2, int iters) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  unsigned int x[PEAK_ACC];
  // Starting values: half2 of (0.25, 0.5) and (0.5, 0.75) alternating (0x3400 = 0.25,
  // 0x3800 = 0.5, 0x3A00 = 0.75), so the chains start away from their fixed point.
#pragma unroll
  for (int j = 0; j < PEAK_ACC; ++j) x[j] = ((t + j) & 1) ? 0x3A003800u : 0x38003400u;
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < PEAK_ACC; ++j)
      asm volatile("fma.rn.f16x2 %0, %0, %1, %2;" : "+r"(x[j]) : "r"(m2), "r"(s2));
  }
  // Combine: any chain that missed its fixed point spoils the result. 0x30003000 = half2(1/8).
  unsigned int acc = 0u;
  const unsigned int eighth = 0x30003000u;
#pragma unroll
  for (int j = 0; j < PEAK_ACC; ++j)
    asm("fma.rn.f16x2 %0, %1, %2, %0;" : "+r"(acc) : "r"(x[j]), "r"(eighth));
  out[t] = acc;
}
