// STREAM kernels: copy, scale, add, triad, dot (McCalpin's STREAM; BabelStream's CUDA
// variant adds dot). Each thread moves 16 bytes per access (float4 / double2) so every
// warp issues full 512-byte transactions. The loops stride by the whole grid, so any grid
// covers any array; the host launches one pass (a thread per STREAM_UNROLL vectors, see
// below) for copy/scale/add/triad and one resident wave for dot. The tail that does not fill
// a vector is done element by element. Pointers must be 16-byte aligned (the host checks).
//
// Byte counts (host side, harness/flops.py stream_bytes): copy/scale 2 words per
// element, add/triad 3, dot 2; no write-allocate credit.
//
// Entry points are extern "C" (plain names for cupy.RawModule) and instantiate one
// template per element type: <op>_f32 and <op>_f64. No headers: NVRTC compiles this as is.

#define STREAM_BLOCK 256  // threads per block; dot's shared-memory reduction assumes it

// Vectors each thread moves. The host launches one pass over the array (every thread does
// its STREAM_UNROLL vectors and exits; the hardware hands blocks to free SMs). On the H200
// (scripts/stream_variants.py, 2^28 floats): one pass with 1 vector a thread ran triad at
// 4.39 TB/s, with 4 at 4.32; one resident wave striding the array stayed at 3.9-4.15 TB/s
// whatever the unroll, so loads in flight were never the limit. -DSTREAM_UNROLL=N overrides.
#ifndef STREAM_UNROLL
#define STREAM_UNROLL 1
#endif

template <typename T> struct Vec16;
template <> struct Vec16<float> { typedef float4 type; static const int width = 4; };
template <> struct Vec16<double> { typedef double2 type; static const int width = 2; };

__device__ __forceinline__ float4 v_scale(float q, float4 x) {
  return make_float4(q * x.x, q * x.y, q * x.z, q * x.w);
}
__device__ __forceinline__ double2 v_scale(double q, double2 x) {
  return make_double2(q * x.x, q * x.y);
}
__device__ __forceinline__ float4 v_add(float4 x, float4 y) {
  return make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
}
__device__ __forceinline__ double2 v_add(double2 x, double2 y) {
  return make_double2(x.x + y.x, x.y + y.y);
}
__device__ __forceinline__ float4 v_triad(float4 x, float q, float4 y) {
  return make_float4(x.x + q * y.x, x.y + q * y.y, x.z + q * y.z, x.w + q * y.w);
}
__device__ __forceinline__ double2 v_triad(double2 x, double q, double2 y) {
  return make_double2(x.x + q * y.x, x.y + q * y.y);
}
__device__ __forceinline__ float v_dot(float4 x, float4 y) {
  return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
__device__ __forceinline__ double v_dot(double2 x, double2 y) {
  return x.x * y.x + x.y * y.y;
}

// Global thread index and grid stride, in 64-bit: 2^31 elements must not overflow.
__device__ __forceinline__ long long tid() {
  return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long stride() {
  return (long long)gridDim.x * blockDim.x;
}

// c[i] = a[i]
template <typename T>
__device__ void copy_impl(const T* __restrict__ a, T* __restrict__ c, long long n) {
  typedef typename Vec16<T>::type V;
  const long long nv = n / Vec16<T>::width;
  const V* av = reinterpret_cast<const V*>(a);
  V* cv = reinterpret_cast<V*>(c);
  const long long s = stride();
  long long i = tid();
  for (; i + (STREAM_UNROLL - 1) * s < nv; i += STREAM_UNROLL * s) {
    V x[STREAM_UNROLL];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) x[u] = av[i + u * s];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) cv[i + u * s] = x[u];
  }
  for (; i < nv; i += s) cv[i] = av[i];
  for (long long i = nv * Vec16<T>::width + tid(); i < n; i += stride()) c[i] = a[i];
}

// c[i] = q * a[i]
template <typename T>
__device__ void scale_impl(const T* __restrict__ a, T* __restrict__ c, T q, long long n) {
  typedef typename Vec16<T>::type V;
  const long long nv = n / Vec16<T>::width;
  const V* av = reinterpret_cast<const V*>(a);
  V* cv = reinterpret_cast<V*>(c);
  const long long s = stride();
  long long i = tid();
  for (; i + (STREAM_UNROLL - 1) * s < nv; i += STREAM_UNROLL * s) {
    V x[STREAM_UNROLL];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) x[u] = av[i + u * s];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) cv[i + u * s] = v_scale(q, x[u]);
  }
  for (; i < nv; i += s) cv[i] = v_scale(q, av[i]);
  for (long long i = nv * Vec16<T>::width + tid(); i < n; i += stride()) c[i] = q * a[i];
}

// c[i] = a[i] + b[i]
template <typename T>
__device__ void add_impl(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                         long long n) {
  typedef typename Vec16<T>::type V;
  const long long nv = n / Vec16<T>::width;
  const V* av = reinterpret_cast<const V*>(a);
  const V* bv = reinterpret_cast<const V*>(b);
  V* cv = reinterpret_cast<V*>(c);
  const long long s = stride();
  long long i = tid();
  for (; i + (STREAM_UNROLL - 1) * s < nv; i += STREAM_UNROLL * s) {
    V x[STREAM_UNROLL], y[STREAM_UNROLL];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) { x[u] = av[i + u * s]; y[u] = bv[i + u * s]; }
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) cv[i + u * s] = v_add(x[u], y[u]);
  }
  for (; i < nv; i += s) cv[i] = v_add(av[i], bv[i]);
  for (long long i = nv * Vec16<T>::width + tid(); i < n; i += stride()) c[i] = a[i] + b[i];
}

// c[i] = a[i] + q * b[i]
template <typename T>
__device__ void triad_impl(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                           T q, long long n) {
  typedef typename Vec16<T>::type V;
  const long long nv = n / Vec16<T>::width;
  const V* av = reinterpret_cast<const V*>(a);
  const V* bv = reinterpret_cast<const V*>(b);
  V* cv = reinterpret_cast<V*>(c);
  const long long s = stride();
  long long i = tid();
  for (; i + (STREAM_UNROLL - 1) * s < nv; i += STREAM_UNROLL * s) {
    V x[STREAM_UNROLL], y[STREAM_UNROLL];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) { x[u] = av[i + u * s]; y[u] = bv[i + u * s]; }
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) cv[i + u * s] = v_triad(x[u], q, y[u]);
  }
  for (; i < nv; i += s) cv[i] = v_triad(av[i], q, bv[i]);
  for (long long i = nv * Vec16<T>::width + tid(); i < n; i += stride()) c[i] = a[i] + q * b[i];
}

// partial[blockIdx.x] = sum over this block's elements of a[i] * b[i]; the host adds the
// partials (one per block, a few hundred) in float64, as BabelStream does.
template <typename T>
__device__ void dot_impl(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ partial,
                         long long n) {
  typedef typename Vec16<T>::type V;
  __shared__ T cache[STREAM_BLOCK];
  const long long nv = n / Vec16<T>::width;
  const V* av = reinterpret_cast<const V*>(a);
  const V* bv = reinterpret_cast<const V*>(b);
  T sum = 0;
  const long long s = stride();
  long long i = tid();
  for (; i + (STREAM_UNROLL - 1) * s < nv; i += STREAM_UNROLL * s) {
    V x[STREAM_UNROLL], y[STREAM_UNROLL];
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) { x[u] = av[i + u * s]; y[u] = bv[i + u * s]; }
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) sum += v_dot(x[u], y[u]);
  }
  for (; i < nv; i += s) sum += v_dot(av[i], bv[i]);
  for (long long i = nv * Vec16<T>::width + tid(); i < n; i += stride()) sum += a[i] * b[i];
  cache[threadIdx.x] = sum;
  __syncthreads();
  for (int h = STREAM_BLOCK / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) cache[threadIdx.x] += cache[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = cache[0];
}

#define STREAM_ENTRY_POINTS(T, SUFFIX)                                                        \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                 \
  copy_##SUFFIX(const T* __restrict__ a, T* __restrict__ c, long long n) {                   \
    copy_impl<T>(a, c, n);                                                                   \
  }                                                                                          \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                 \
  scale_##SUFFIX(const T* __restrict__ a, T* __restrict__ c, T q, long long n) {             \
    scale_impl<T>(a, c, q, n);                                                               \
  }                                                                                          \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                 \
  add_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,          \
               long long n) {                                                                \
    add_impl<T>(a, b, c, n);                                                                 \
  }                                                                                          \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                 \
  triad_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, T q,   \
                 long long n) {                                                              \
    triad_impl<T>(a, b, c, q, n);                                                            \
  }                                                                                          \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                 \
  dot_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ partial,    \
               long long n) {                                                                \
    dot_impl<T>(a, b, partial, n);                                                           \
  }

STREAM_ENTRY_POINTS(float, f32)
STREAM_ENTRY_POINTS(double, f64)
