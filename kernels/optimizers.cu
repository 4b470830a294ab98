// Optimizer steps, one launch per parameter or one for a whole group (multi-tensor Adam): each element's update (weight decay, momentum or
// moment estimates, parameter write) happens in registers, so a step reads and writes every state
// array once instead of once per arithmetic op as a chain of array expressions would.
// The formulas are PyTorch's (torch.optim.SGD / Adam / AdamW docs). Scalars that depend only on
// the hyper-parameters and the step count are computed once on the host in double, as the
// twin does, and passed in the compute type.
#include "common.cuh"

namespace gradflow {

// One element of SGD: d = g + weight_decay * p; with momentum, buf = momentum * buf +
// one_minus_dampening * d (buf = d on the first step, as PyTorch sets it, with no dampening),
// rounded to S before use exactly as the stored value will be read next step; then
// p - lr * (nesterov ? d + momentum * buf : buf). momentum_buffer is touched only with momentum.
template <typename S, typename C>
__host__ __device__ inline C sgd_element(C p, C d, S* momentum_buffer, C lr, C momentum,
                                         C one_minus_dampening, C weight_decay, int nesterov,
                                         int first_step) {
  if (weight_decay != C(0)) d = d + weight_decay * p;
  if (momentum != C(0)) {
    C buf = first_step ? d : C(*momentum_buffer) * momentum + one_minus_dampening * d;
    *momentum_buffer = S(buf);
    buf = C(S(buf));
    d = nesterov ? d + momentum * buf : buf;
  }
  return p - lr * d;
}

// momentum_buffer is read only when momentum != 0 (the host may pass any pointer otherwise).
template <typename T>
__global__ void sgd_update_kernel(T* __restrict__ param, const T* __restrict__ grad,
                                  T* __restrict__ momentum_buffer, long long n, compute_t<T> lr,
                                  compute_t<T> momentum, compute_t<T> one_minus_dampening,
                                  compute_t<T> weight_decay, int nesterov, int first_step) {
  typedef compute_t<T> C;
  for (long long i = grid_first_index(); i < n; i += grid_stride())
    param[i] = T(sgd_element<T>(C(param[i]), C(grad[i]), momentum_buffer + i, lr, momentum,
                                one_minus_dampening, weight_decay, nesterov, first_step));
}

// Adam's scalars: step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t),
// decay_factor = 1 - lr * weight_decay.
template <typename C> struct AdamScalars {
  C beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
      weight_decay, decay_factor;
  int decoupled;
};

// One element of Adam (decoupled = 0: L2 penalty added to the gradient) or AdamW (decoupled = 1:
// the parameter is shrunk by decay_factor before the step). S is the type the parameter value p
// and the moments m, v are stored in (the parameter's own dtype, or float32 master weights and
// moments for a float16 parameter): each is rounded to S before it is used, exactly as the stored
// value will be read next step. Returns the new parameter value, in S.
template <typename S, typename C>
__host__ __device__ inline C adam_element(C p, C g, S& exp_avg, S& exp_avg_sq,
                                          const AdamScalars<C>& s) {
  if (s.weight_decay != C(0)) {
    if (s.decoupled)
      p = C(S(p * s.decay_factor));
    else
      g = g + s.weight_decay * p;
  }
  C m = C(S(C(exp_avg) * s.beta1 + s.one_minus_beta1 * g));
  C v = C(S(C(exp_avg_sq) * s.beta2 + s.one_minus_beta2 * g * g));
  exp_avg = S(m);
  exp_avg_sq = S(v);
  C denom = math::sqrt(v) / s.bias_correction2_sqrt + s.eps;
  return C(S(p - s.step_size * m / denom));
}

template <typename T>
__global__ void adam_update_kernel(T* __restrict__ param, const T* __restrict__ grad,
                                   T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, long long n,
                                   compute_t<T> beta1, compute_t<T> one_minus_beta1,
                                   compute_t<T> beta2, compute_t<T> one_minus_beta2,
                                   compute_t<T> step_size, compute_t<T> bias_correction2_sqrt,
                                   compute_t<T> eps, compute_t<T> weight_decay,
                                   compute_t<T> decay_factor, int decoupled) {
  typedef compute_t<T> C;
  const AdamScalars<C> s{beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
                         bias_correction2_sqrt, eps, weight_decay, decay_factor, decoupled};
  for (long long i = grid_first_index(); i < n; i += grid_stride())
    param[i] = T(adam_element<T>(C(param[i]), C(grad[i]), exp_avg[i], exp_avg_sq[i], s));
}

// Which tensor of a multi-tensor table element i belongs to: offsets holds the running sizes
// (offsets[0] = 0, offsets[tensors] = total), so the answer is the last t with offsets[t] <= i.
// Empty tensors repeat an offset and are never chosen.
__host__ __device__ inline long long tensor_of(const long long* offsets, long long tensors,
                                               long long i) {
  long long low = 0, high = tensors - 1;
  while (low < high) {
    long long middle = (low + high + 1) / 2;
    if (offsets[middle] <= i)
      low = middle;
    else
      high = middle - 1;
  }
  return low;
}

// Adam for every parameter of a group in one launch (PyTorch's multi-tensor "foreach" idea): the
// tables hold each tensor's device address (CuPy passes arrays of addresses as uint64) and
// offsets its place in the concatenation, so one grid-stride loop covers all elements. The state
// (exp_avg, exp_avg_sq) is stored in compute_t<T>; for a float16 parameter `masters` holds float32
// master weights, updated and then rounded into the parameter, so small updates and small second
// moments are not lost to half precision. masters is null when T is its own compute type.
//
// The step count: eager steps pass step_size and bias_correction2_sqrt by value (step_count
// null). A replayed CUDA graph launches the kernel with the arguments it was captured with, so
// there the step number t must live on the device: step_count points at it (incremented before
// this launch, by the host's stream order) and every thread derives the two scalars from t in
// double, from lr, beta1 and beta2 in double — the host's formula (adam_scalars), so both paths
// give the same bits up to the last-ulp difference of the device's and the host's pow.
template <typename T>
__global__ void adam_multi_tensor_kernel(const unsigned long long* __restrict__ params,
                                         const unsigned long long* __restrict__ grads,
                                         const unsigned long long* __restrict__ masters,
                                         const unsigned long long* __restrict__ exp_avgs,
                                         const unsigned long long* __restrict__ exp_avg_sqs,
                                         const long long* __restrict__ offsets, long long tensors,
                                         compute_t<T> beta1, compute_t<T> one_minus_beta1,
                                         compute_t<T> beta2, compute_t<T> one_minus_beta2,
                                         compute_t<T> step_size, compute_t<T> bias_correction2_sqrt,
                                         compute_t<T> eps, compute_t<T> weight_decay,
                                         compute_t<T> decay_factor, int decoupled,
                                         const long long* __restrict__ step_count, double lr,
                                         double beta1_exact, double beta2_exact) {
  typedef compute_t<T> C;
  AdamScalars<C> s{beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
                   bias_correction2_sqrt, eps, weight_decay, decay_factor, decoupled};
  if (step_count) {
    const double t = static_cast<double>(*step_count);
    s.step_size = C(lr / (1.0 - math::pow(beta1_exact, t)));
    s.bias_correction2_sqrt = C(math::sqrt(1.0 - math::pow(beta2_exact, t)));
  }
  const long long total = offsets[tensors];
  for (long long i = grid_first_index(); i < total; i += grid_stride()) {
    const long long t = tensor_of(offsets, tensors, i);
    const long long k = i - offsets[t];
    T* param = reinterpret_cast<T*>(params[t]);
    const T* grad = reinterpret_cast<const T*>(grads[t]);
    C* exp_avg = reinterpret_cast<C*>(exp_avgs[t]);
    C* exp_avg_sq = reinterpret_cast<C*>(exp_avg_sqs[t]);
    if (masters) {
      C* master = reinterpret_cast<C*>(masters[t]);
      C p = adam_element<C>(master[k], C(grad[k]), exp_avg[k], exp_avg_sq[k], s);
      master[k] = p;
      param[k] = T(p);
    } else {
      param[k] = T(adam_element<C>(C(param[k]), C(grad[k]), exp_avg[k], exp_avg_sq[k], s));
    }
  }
}

// SGD for every parameter of a group in one launch, with the same tables as Adam's (momentum
// buffers in the parameter's dtype; `buffers` may be null without momentum).
template <typename T>
__global__ void sgd_multi_tensor_kernel(const unsigned long long* __restrict__ params,
                                        const unsigned long long* __restrict__ grads,
                                        const unsigned long long* __restrict__ buffers,
                                        const long long* __restrict__ offsets, long long tensors,
                                        compute_t<T> lr, compute_t<T> momentum,
                                        compute_t<T> one_minus_dampening, compute_t<T> weight_decay,
                                        int nesterov, int first_step) {
  typedef compute_t<T> C;
  const long long total = offsets[tensors];
  for (long long i = grid_first_index(); i < total; i += grid_stride()) {
    const long long t = tensor_of(offsets, tensors, i);
    const long long k = i - offsets[t];
    T* param = reinterpret_cast<T*>(params[t]);
    const T* grad = reinterpret_cast<const T*>(grads[t]);
    T* buffer = buffers ? reinterpret_cast<T*>(buffers[t]) + k : nullptr;
    param[k] = T(sgd_element<T>(C(param[k]), C(grad[k]), buffer, lr, momentum,
                                one_minus_dampening, weight_decay, nesterov, first_step));
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
      gradflow::compute_t<T>, int);                                                             \
  template __global__ void gradflow::adam_multi_tensor_kernel<T>(                               \
      const unsigned long long*, const unsigned long long*, const unsigned long long*,          \
      const unsigned long long*, const unsigned long long*, const long long*, long long,        \
      gradflow::compute_t<T>, gradflow::compute_t<T>, gradflow::compute_t<T>,                   \
      gradflow::compute_t<T>, gradflow::compute_t<T>, gradflow::compute_t<T>,                   \
      gradflow::compute_t<T>, gradflow::compute_t<T>, gradflow::compute_t<T>, int,            \
      const long long*, double, double, double);                                                \
  template __global__ void gradflow::sgd_multi_tensor_kernel<T>(                                \
      const unsigned long long*, const unsigned long long*, const unsigned long long*,          \
      const long long*, long long, gradflow::compute_t<T>, gradflow::compute_t<T>,              \
      gradflow::compute_t<T>, gradflow::compute_t<T>, int, int);
GRADFLOW_OPTIMIZER_KERNELS(float)
GRADFLOW_OPTIMIZER_KERNELS(double)
#ifdef GRADFLOW_HAS_HALF
GRADFLOW_OPTIMIZER_KERNELS(__half)
#endif
#endif
