// Shared by every kernel: the compute type, a math layer that resolves to the same C math
// functions under nvcc, NVRTC (CuPy) and the host compiler, and the grid-stride index helpers.
#ifndef GRADFLOW_COMMON_CUH
#define GRADFLOW_COMMON_CUH

#if !defined(__CUDACC_RTC__)
#include <math.h>  // NVRTC declares the CUDA math API itself and has no C library headers
#endif

// __half is compiled in for nvcc, and for NVRTC/host builds only when asked (GRADFLOW_HALF),
// so float and double modules never depend on finding cuda_fp16.h.
#if (defined(__CUDACC__) && !defined(__CUDACC_RTC__)) || defined(GRADFLOW_HALF)
#include <cuda_fp16.h>
#define GRADFLOW_HAS_HALF 1
#endif

namespace gradflow {

// Arithmetic happens in Compute<T>::type: __half is loaded, computed in float and rounded once
// on store, which is both faster on most GPUs and as accurate as a float16 result can be.
template <typename T> struct Compute { typedef T type; };
#ifdef GRADFLOW_HAS_HALF
template <> struct Compute<__half> { typedef float type; };
#endif
template <typename T> using compute_t = typename Compute<T>::type;

// One name per function for both precisions; the float overloads call the *f functions so a
// float kernel never silently runs in double.
namespace math {
__host__ __device__ inline float exp(float x) { return ::expf(x); }
__host__ __device__ inline double exp(double x) { return ::exp(x); }
__host__ __device__ inline float expm1(float x) { return ::expm1f(x); }
__host__ __device__ inline double expm1(double x) { return ::expm1(x); }
__host__ __device__ inline float log(float x) { return ::logf(x); }
__host__ __device__ inline double log(double x) { return ::log(x); }
__host__ __device__ inline float log1p(float x) { return ::log1pf(x); }
__host__ __device__ inline double log1p(double x) { return ::log1p(x); }
__host__ __device__ inline float tanh(float x) { return ::tanhf(x); }
__host__ __device__ inline double tanh(double x) { return ::tanh(x); }
__host__ __device__ inline float erf(float x) { return ::erff(x); }
__host__ __device__ inline double erf(double x) { return ::erf(x); }
__host__ __device__ inline float sqrt(float x) { return ::sqrtf(x); }
__host__ __device__ inline double sqrt(double x) { return ::sqrt(x); }
__host__ __device__ inline double pow(double x, double y) { return ::pow(x, y); }
__host__ __device__ inline bool isinf(float x) { return ::isinf(x); }
__host__ __device__ inline bool isinf(double x) { return ::isinf(x); }
__host__ __device__ inline float quiet_nan(float) { return ::nanf(""); }
__host__ __device__ inline double quiet_nan(double) { return ::nan(""); }
}  // namespace math

// Grid-stride loops: any launch shape covers all n elements, so the host can pick a grid sized
// to the device rather than to the tensor.
__device__ inline long long grid_first_index() {
  return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline long long grid_stride() {
  return static_cast<long long>(blockDim.x) * gridDim.x;
}

}  // namespace gradflow

#endif  // GRADFLOW_COMMON_CUH
