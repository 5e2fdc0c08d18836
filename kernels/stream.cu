// STREAM kernels: copy, scale, add, triad, dot (McCalpin's STREAM; BabelStream's CUDA
// variant adds dot). Each thread moves 16 bytes per access (float4 / double2) so every
// warp issues full 512-byte transactions. The loops stride by the whole grid, so any grid
// covers any array; the host launches one pass (a thread per STREAM_UNROLL vectors, see
// below) for copy/scale/add/triad and one resident wave for dot. The tail that does not fill
// a vector is done element by element. Pointers must be 16-byte aligned (the host checks).
//
// Byte counts (host side, harness/core/flops.py stream_bytes): copy/scale 2 words per
// element, add/triad 3, dot 2; no write-allocate credit.
//
// One loop template (stream_map) over an operation functor serves copy, scale, add and triad;
// dot reduces instead of storing (stream_dot). Entry points are extern "C" (plain names for
// cupy.RawModule) and instantiate them per element type: <op>_f32 and <op>_f64. No headers:
// NVRTC compiles this as is. (The template generates the same PTX loads, stores and arithmetic
// per kernel as the five hand-written loops it replaced, checked with nvcc -ptx for sm_90.)

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

// Arithmetic on a 16-byte vector or a single element, so one expression serves both the
// vector loop and the scalar tail.
__device__ __forceinline__ float4 mul(float q, float4 x) {
  return make_float4(q * x.x, q * x.y, q * x.z, q * x.w);
}
__device__ __forceinline__ double2 mul(double q, double2 x) { return make_double2(q * x.x, q * x.y); }
template <typename T> __device__ __forceinline__ T mul(T q, T x) { return q * x; }
__device__ __forceinline__ float4 add(float4 x, float4 y) {
  return make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
}
__device__ __forceinline__ double2 add(double2 x, double2 y) { return make_double2(x.x + y.x, x.y + y.y); }
template <typename T> __device__ __forceinline__ T add(T x, T y) { return x + y; }
__device__ __forceinline__ float dot(float4 x, float4 y) {
  return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
__device__ __forceinline__ double dot(double2 x, double2 y) { return x.x * y.x + x.y * y.y; }
template <typename T> __device__ __forceinline__ T dot(T x, T y) { return x * y; }

// The four operations that write c, as functors over (a[i], b[i]); READS_B says whether b is
// read at all (copy and scale read one array: loading b would move bytes STREAM does not count).
template <typename T> struct Copy {
  static const bool READS_B = false;
  template <typename X> __device__ X operator()(X x, X) const { return x; }
};
template <typename T> struct Scale {  // c = q * a
  static const bool READS_B = false;
  T q;
  template <typename X> __device__ X operator()(X x, X) const { return mul(q, x); }
};
template <typename T> struct Add {  // c = a + b
  static const bool READS_B = true;
  template <typename X> __device__ X operator()(X x, X y) const { return add(x, y); }
};
template <typename T> struct Triad {  // c = a + q * b
  static const bool READS_B = true;
  T q;
  template <typename X> __device__ X operator()(X x, X y) const { return add(x, mul(q, y)); }
};

// Global thread index and grid stride, in 64-bit: 2^31 elements must not overflow.
__device__ __forceinline__ long long tid() {
  return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long stride() {
  return (long long)gridDim.x * blockDim.x;
}

// c[i] = op(a[i], b[i]) over the whole array: STREAM_UNROLL vectors a thread per grid stride
// (all loads issued before the stores), then the remaining vectors, then the scalar tail.
template <typename T, typename Op>
__device__ void stream_map(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                           long long n, Op op) {
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
    for (int u = 0; u < STREAM_UNROLL; ++u) {
      x[u] = av[i + u * s];
      y[u] = Op::READS_B ? bv[i + u * s] : x[u];
    }
#pragma unroll
    for (int u = 0; u < STREAM_UNROLL; ++u) cv[i + u * s] = op(x[u], y[u]);
  }
  for (; i < nv; i += s) cv[i] = op(av[i], Op::READS_B ? bv[i] : av[i]);
  for (long long j = nv * Vec16<T>::width + tid(); j < n; j += stride())
    c[j] = op(a[j], Op::READS_B ? b[j] : a[j]);
}

// partial[blockIdx.x] = sum over this block's elements of a[i] * b[i]; the host adds the
// partials (one per block, a few hundred) in float64, as BabelStream does.
template <typename T>
__device__ void stream_dot(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ partial,
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
    for (int u = 0; u < STREAM_UNROLL; ++u) sum += dot(x[u], y[u]);
  }
  for (; i < nv; i += s) sum += dot(av[i], bv[i]);
  for (long long j = nv * Vec16<T>::width + tid(); j < n; j += stride()) sum += a[j] * b[j];
  cache[threadIdx.x] = sum;
  __syncthreads();
  for (int h = STREAM_BLOCK / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) cache[threadIdx.x] += cache[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = cache[0];
}

#define STREAM_ENTRY_POINTS(T, SUFFIX)                                                        \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                  \
  copy_##SUFFIX(const T* __restrict__ a, T* __restrict__ c, long long n) {                    \
    stream_map<T>(a, a, c, n, Copy<T>());                                                     \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                  \
  scale_##SUFFIX(const T* __restrict__ a, T* __restrict__ c, T q, long long n) {              \
    Scale<T> op = {q};                                                                        \
    stream_map<T>(a, a, c, n, op);                                                            \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                  \
  add_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,           \
               long long n) {                                                                 \
    stream_map<T>(a, b, c, n, Add<T>());                                                      \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                  \
  triad_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, T q,    \
                 long long n) {                                                               \
    Triad<T> op = {q};                                                                        \
    stream_map<T>(a, b, c, n, op);                                                            \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(STREAM_BLOCK)                                  \
  dot_##SUFFIX(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ partial,     \
               long long n) {                                                                 \
    stream_dot<T>(a, b, partial, n);                                                          \
  }

STREAM_ENTRY_POINTS(float, f32)
STREAM_ENTRY_POINTS(double, f64)
