// C entry points over the kernels in kernels/, built for the host with cuda_host_shim.h and
// loaded by the tests with ctypes. Every entry takes the launch shape, so a test can check that
// the grid-stride loops cover every element whether the grid is too small, exact or too large.
#include "activation.cu"
#include "bias_activation.cu"
#include "optimizers.cu"
#include "softmax_xent.cu"

using gradflow::compute_t;

namespace {

#define GF_ENUM(name, Act, saves) k_##name,
enum { GRADFLOW_ACTIVATIONS(GF_ENUM) k_count };
#define GF_NAME(name, Act, saves) #name,
const char* const kNames[] = {GRADFLOW_ACTIVATIONS(GF_NAME)};
#define GF_SAVES(name, Act, saves) #saves,
const char* const kSaves[] = {GRADFLOW_ACTIVATIONS(GF_SAVES)};

// Calls f with a value of the activation struct numbered act; returns -1 for an unknown number.
template <typename F> int with_activation(int act, F&& f) {
  switch (act) {
#define GF_CASE(name, Act, saves) \
  case k_##name:                  \
    f(gradflow::Act());           \
    return 0;
    GRADFLOW_ACTIVATIONS(GF_CASE)
  }
  return -1;
}

}  // namespace

extern "C" {
int gf_activation_count() { return k_count; }
const char* gf_activation_name(int i) { return i >= 0 && i < k_count ? kNames[i] : nullptr; }
const char* gf_activation_saves(int i) { return i >= 0 && i < k_count ? kSaves[i] : nullptr; }
}

#define GF_EXPORT(suffix, T)                                                                    \
  extern "C" int gf_act_forward_##suffix(int act, const T* x, T* out, long long n, double alpha, \
                                         unsigned grid, unsigned block) {                       \
    return with_activation(act, [&](auto a) {                                                   \
      host_launch(grid, block, gradflow::act_forward_kernel<decltype(a), T>, x, out, n,         \
                  compute_t<T>(alpha));                                                         \
    });                                                                                         \
  }                                                                                             \
  extern "C" int gf_act_derivative_##suffix(int act, const T* saved, T* out, long long n,        \
                                            double alpha, unsigned grid, unsigned block) {      \
    return with_activation(act, [&](auto a) {                                                   \
      host_launch(grid, block, gradflow::act_derivative_kernel<decltype(a), T>, saved, out, n,  \
                  compute_t<T>(alpha));                                                         \
    });                                                                                         \
  }                                                                                             \
  extern "C" int gf_act_backward_##suffix(int act, const T* g, const T* saved, T* gz,           \
                                          long long n, double alpha, unsigned grid,             \
                                          unsigned block) {                                     \
    return with_activation(act, [&](auto a) {                                                   \
      host_launch(grid, block, gradflow::act_backward_kernel<decltype(a), T>, g, saved, gz, n,  \
                  compute_t<T>(alpha));                                                         \
    });                                                                                         \
  }                                                                                             \
  extern "C" int gf_bias_act_forward_##suffix(int act, const T* x, const T* b, T* out,          \
                                              long long rows, long long cols, double alpha,     \
                                              unsigned grid, unsigned block) {                  \
    return with_activation(act, [&](auto a) {                                                   \
      host_launch(grid, block, gradflow::bias_act_forward_kernel<decltype(a), T>, x, b, out,    \
                  rows, cols, compute_t<T>(alpha));                                             \
    });                                                                                         \
  }                                                                                             \
  extern "C" int gf_bias_act_backward_##suffix(                                                 \
      int act, const T* g, const T* saved, T* gz, compute_t<T>* partial, T* gb, long long rows,  \
      long long cols, long long rows_per_chunk, double alpha, unsigned grid, unsigned block) {   \
    const long long chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;                      \
    return with_activation(act, [&](auto a) {                                                   \
      host_launch(grid, block, gradflow::bias_act_backward_kernel<decltype(a), T>, g, saved,    \
                  gz, partial, rows, cols, rows_per_chunk, compute_t<T>(alpha));                \
      host_launch(grid, block, gradflow::column_sum_kernel<T>, partial, gb, chunks, cols);      \
    });                                                                                         \
  }                                                                                             \
  extern "C" void gf_softmax_xent_forward_##suffix(                                             \
      const T* logits, const T* bias, const long long* labels, T* loss, unsigned char* bad,     \
      long long rows, long long cols, long long ignore_index, int ignoring, unsigned grid,      \
      unsigned block) {                                                                         \
    host_launch(grid, block, gradflow::softmax_xent_forward_kernel<T>, logits, bias, labels,    \
                loss, bad, rows, cols, ignore_index, (unsigned char)ignoring);                  \
  }                                                                                             \
  extern "C" void gf_softmax_xent_backward_##suffix(                                            \
      const T* logits, const T* bias, const long long* labels, T* gz, long long rows,           \
      long long cols, const T* scale, long long scale_stride, double factor,                    \
      long long ignore_index, int ignoring, const compute_t<T>* divisor, unsigned grid,         \
      unsigned block) {                                                                         \
    host_launch(grid, block, gradflow::softmax_xent_backward_kernel<T>, logits, bias, labels,   \
                gz, rows, cols, scale, scale_stride, compute_t<T>(factor), ignore_index,        \
                (unsigned char)ignoring, divisor);                                              \
  }                                                                                             \
  extern "C" void gf_masked_reduce_##suffix(                                                    \
      const T* loss, const long long* labels, long long rows, long long ignore_index,           \
      int ignoring, int mean, T* total, compute_t<T>* count, unsigned grid, unsigned block) {   \
    host_launch(grid, block, gradflow::masked_reduce_kernel<T>, loss, labels, rows,             \
                ignore_index, (unsigned char)ignoring, (unsigned char)mean, total, count);      \
  }                                                                                             \
  extern "C" void gf_column_sum_##suffix(const compute_t<T>* partial, T* out, long long chunks, \
                                         long long cols, unsigned grid, unsigned block) {       \
    host_launch(grid, block, gradflow::column_sum_kernel<T>, partial, out, chunks, cols);       \
  }                                                                                             \
  extern "C" void gf_sgd_multi_tensor_##suffix(                                                 \
      const unsigned long long* params, const unsigned long long* grads,                        \
      const unsigned long long* buffers, const long long* offsets, long long tensors,           \
      double lr, double momentum, double one_minus_dampening, double weight_decay,              \
      int nesterov, int first_step, unsigned grid, unsigned block) {                            \
    typedef compute_t<T> C;                                                                     \
    host_launch(grid, block, gradflow::sgd_multi_tensor_kernel<T>, params, grads, buffers,      \
                offsets, tensors, C(lr), C(momentum), C(one_minus_dampening), C(weight_decay),  \
                nesterov, first_step);                                                          \
  }                                                                                             \
  extern "C" void gf_adam_multi_tensor_##suffix(                                                \
      const unsigned long long* params, const unsigned long long* grads,                        \
      const unsigned long long* masters, const unsigned long long* exp_avgs,                    \
      const unsigned long long* exp_avg_sqs, const long long* offsets, long long tensors,       \
      double beta1, double one_minus_beta1, double beta2, double one_minus_beta2,               \
      double step_size, double bias_correction2_sqrt, double eps, double weight_decay,          \
      double decay_factor, int decoupled, const long long* step_count, double lr,               \
      double beta1_exact, double beta2_exact, unsigned grid, unsigned block) {                  \
    typedef compute_t<T> C;                                                                     \
    host_launch(grid, block, gradflow::adam_multi_tensor_kernel<T>, params, grads, masters,     \
                exp_avgs, exp_avg_sqs, offsets, tensors, C(beta1), C(one_minus_beta1),          \
                C(beta2), C(one_minus_beta2), C(step_size), C(bias_correction2_sqrt), C(eps),   \
                C(weight_decay), C(decay_factor), decoupled, step_count, lr, beta1_exact,       \
                beta2_exact);                                                                   \
  }                                                                                             \
  extern "C" void gf_sgd_update_##suffix(T* param, const T* grad, T* buffer, long long n,       \
                                         double lr, double momentum,                            \
                                         double one_minus_dampening, double weight_decay,       \
                                         int nesterov, int first_step, unsigned grid,           \
                                         unsigned block) {                                      \
    typedef compute_t<T> C;                                                                     \
    host_launch(grid, block, gradflow::sgd_update_kernel<T>, param, grad, buffer, n, C(lr),     \
                C(momentum), C(one_minus_dampening), C(weight_decay), nesterov, first_step);    \
  }                                                                                             \
  extern "C" void gf_adam_update_##suffix(                                                      \
      T* param, const T* grad, T* exp_avg, T* exp_avg_sq, long long n, double beta1,            \
      double one_minus_beta1, double beta2, double one_minus_beta2, double step_size,           \
      double bias_correction2_sqrt, double eps, double weight_decay, double decay_factor,       \
      int decoupled, unsigned grid, unsigned block) {                                           \
    typedef compute_t<T> C;                                                                     \
    host_launch(grid, block, gradflow::adam_update_kernel<T>, param, grad, exp_avg, exp_avg_sq, \
                n, C(beta1), C(one_minus_beta1), C(beta2), C(one_minus_beta2), C(step_size),    \
                C(bias_correction2_sqrt), C(eps), C(weight_decay), C(decay_factor), decoupled); \
  }

GF_EXPORT(f32, float)
GF_EXPORT(f64, double)
#ifdef GRADFLOW_HAS_HALF
GF_EXPORT(f16, __half)
extern "C" int gf_has_half() { return 1; }
#else
extern "C" int gf_has_half() { return 0; }
#endif
