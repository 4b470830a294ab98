// Lets the host compiler build kernels/ unchanged: the CUDA qualifiers become nothing and the
// launch indices become thread-local variables that host_launch() steps through every
// (block, thread) pair of a 1-D grid, one after another. That is a faithful emulation for
// kernels whose threads never communicate (no __shared__, no __syncthreads, no atomics), which
// is every kernel in kernels/; the host build has no definitions of those, so a kernel that
// starts using them fails to compile here instead of being tested wrongly.
#ifndef GRADFLOW_CUDA_HOST_SHIM_H
#define GRADFLOW_CUDA_HOST_SHIM_H

#if defined(__CUDACC__)
#error "cuda_host_shim.h is for host compilers only"
#endif

#define __host__
#define __device__
#define __global__
#define __forceinline__ inline

// Not named dim3: cuda_fp16.h (for the __half build) brings CUDA's own dim3 along.
struct HostDim3 {
  unsigned x, y, z;
  HostDim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local HostDim3 threadIdx(0, 0, 0), blockIdx(0, 0, 0), blockDim, gridDim;

template <typename... Params, typename... Args>
void host_launch(unsigned grid, unsigned block, void (*kernel)(Params...), Args... args) {
  gridDim = HostDim3(grid);
  blockDim = HostDim3(block);
  for (unsigned b = 0; b < grid; ++b) {
    for (unsigned t = 0; t < block; ++t) {
      blockIdx = HostDim3(b, 0, 0);
      threadIdx = HostDim3(t, 0, 0);
      kernel(static_cast<Params>(args)...);
    }
  }
}

#endif  // GRADFLOW_CUDA_HOST_SHIM_H
