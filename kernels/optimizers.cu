// Optimizer steps, one launch per parameter: each element's update (weight decay, momentum or
// moment estimates, parameter write) happens in registers, so a step reads and writes every state
// array once instead of once per arithmetic op as a chain of array expressions would.
// The formulas are PyTorch's (torch.optim.SGD / Adam / AdamW docs). Scalars that depend only on
// the hyper-parameters and the step count are computed once on the host in double, as the
// twin does, and passed in the compute type.
#include "common.cuh"

namespace gradflow {

// momentum_buffer is read only when momentum != 0 (the host may pass any pointer otherwise).
// On the first step PyTorch sets the buffer to d itself, with no dampening.
template <typename T>
__global__ void sgd_update_kernel(T* __restrict__ param, const T* __restrict__ grad,
                                  T* __restrict__ momentum_buffer, long long n, compute_t<T> lr,
                                  compute_t<T> momentum, compute_t<T> one_minus_dampening,
                                  compute_t<T> weight_decay, int nesterov, int first_step) {
  typedef compute_t<T> C;
  for (long long i = grid_first_index(); i < n; i += grid_stride()) {
    C p = C(param[i]);
    C d = C(grad[i]);
    if (weight_decay != C(0)) d = d + weight_decay * p;
    if (momentum != C(0)) {
      C buf = first_step ? d : C(momentum_buffer[i]) * momentum + one_minus_dampening * d;
      // Round the buffer to T before using it, exactly as the stored value will be next step.
      momentum_buffer[i] = T(buf);
      buf = C(T(buf));
      d = nesterov ? d + momentum * buf : buf;
    }
    param[i] = T(p - lr * d);
  }
}

// Adam (decoupled = 0: L2 penalty added to the gradient) or AdamW (decoupled = 1: the parameter
// is shrunk by decay_factor = 1 - lr * weight_decay before the step). step_size = lr / (1 -
// beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t).
template <typename T>
__global__ void adam_update_kernel(T* __restrict__ param, const T* __restrict__ grad,
                                   T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, long long n,
                                   compute_t<T> beta1, compute_t<T> one_minus_beta1,
                                   compute_t<T> beta2, compute_t<T> one_minus_beta2,
                                   compute_t<T> step_size, compute_t<T> bias_correction2_sqrt,
                                   compute_t<T> eps, compute_t<T> weight_decay,
                                   compute_t<T> decay_factor, int decoupled) {
  typedef compute_t<T> C;
  for (long long i = grid_first_index(); i < n; i += grid_stride()) {
    C p = C(param[i]);
    C g = C(grad[i]);
    if (weight_decay != C(0)) {
      if (decoupled)
        p = C(T(p * decay_factor));
      else
        g = g + weight_decay * p;
    }
    C m = C(T(C(exp_avg[i]) * beta1 + one_minus_beta1 * g));
    C v = C(T(C(exp_avg_sq[i]) * beta2 + one_minus_beta2 * g * g));
    exp_avg[i] = T(m);
    exp_avg_sq[i] = T(v);
    C denom = math::sqrt(v) / bias_correction2_sqrt + eps;
    param[i] = T(p - step_size * m / denom);
  }
}

}  // namespace gradflow

#ifdef GRADFLOW_INSTANTIATE
#define GRADFLOW_OPTIMIZER_KERNELS(T)                                                           \
  template __global__ void gradflow::sgd_update_kernel<T>(                                      \
      T*, const T*, T*, long long, gradflow::compute_t<T>, gradflow::compute_t<T>,              \
      gradflow::compute_t<T>, gradflow::compute_t<T>, int, int);                                \
  template __global__ void gradflow::adam_update_kernel<T>(                                     \
      T*, const T*, T*, T*, long long, gradflow::compute_t<T>, gradflow::compute_t<T>,          \
      gradflow::compute_t<T>, gradflow::compute_t<T>, gradflow::compute_t<T>,                   \
      gradflow::compute_t<T>, gradflow::compute_t<T>, gradflow::compute_t<T>,                   \
      gradflow::compute_t<T>, int);
GRADFLOW_OPTIMIZER_KERNELS(float)
GRADFLOW_OPTIMIZER_KERNELS(double)
#ifdef GRADFLOW_HAS_HALF
GRADFLOW_OPTIMIZER_KERNELS(__half)
#endif
#endif
