// Activation math: φ(x) and φ' computed from what the op saves (gradflow.backends.numpy_kernels.
// ACTIVATION_SAVES). Where φ' can be written from the output (relu, sigmoid, tanh, softplus) the op
// saves only the output, so its input can be freed after forward. Formulas and their evaluation
// order follow the NumPy twins so the host tests can hold both to a few ulp.
#ifndef GRADFLOW_ACTIVATIONS_CUH
#define GRADFLOW_ACTIVATIONS_CUH

#include "common.cuh"

namespace gradflow {

// The activation list, once: X(python_name, StructName, saves). Kernel instantiations and the
// host test's name table expand it; the Python kernel table checks its own list against it.
#define GRADFLOW_ACTIVATIONS(X)   \
  X(relu, Relu, out)              \
  X(leaky_relu, LeakyRelu, x)     \
  X(sigmoid, Sigmoid, out)        \
  X(tanh, Tanh, out)              \
  X(gelu, Gelu, x)                \
  X(gelu_tanh, GeluTanh, x)       \
  X(softplus, Softplus, out)      \
  X(silu, Silu, x)

// backward = g * φ'(saved) unless an activation hides it with a cheaper or more exact form
// (CRTP, so the default reaches the derived struct's derivative without virtual calls).
template <typename Self> struct ActivationBase {
  template <typename C> __host__ __device__ static C backward(C g, C saved, C alpha) {
    return g * Self::derivative(saved, alpha);
  }
};

struct Relu : ActivationBase<Relu> {
  // `x < 0 ? 0 : x` keeps NaN, as np.maximum does.
  template <typename C> __host__ __device__ static C forward(C x, C) { return x < C(0) ? C(0) : x; }
  template <typename C> __host__ __device__ static C derivative(C out, C) {
    return out > C(0) ? C(1) : C(0);
  }
  // Chainer's one-liner on the output: a NaN or inf g where out <= 0 gives 0, not NaN.
  template <typename C> __host__ __device__ static C backward(C g, C out, C) {
    return out > C(0) ? g : C(0);
  }
};

struct LeakyRelu : ActivationBase<LeakyRelu> {
  template <typename C> __host__ __device__ static C forward(C x, C alpha) {
    return x > C(0) ? x : x * alpha;
  }
  template <typename C> __host__ __device__ static C derivative(C x, C alpha) {
    return x > C(0) ? C(1) : alpha;
  }
};

struct Sigmoid : ActivationBase<Sigmoid> {
  template <typename C> __host__ __device__ static C forward(C x, C) {
    return C(1) / (C(1) + math::exp(-x));
  }
  template <typename C> __host__ __device__ static C derivative(C out, C) {
    return out * (C(1) - out);
  }
};

struct Tanh : ActivationBase<Tanh> {
  template <typename C> __host__ __device__ static C forward(C x, C) { return math::tanh(x); }
  template <typename C> __host__ __device__ static C derivative(C out, C) {
    return C(1) - out * out;
  }
};

// Exact GELU, x Φ(x). At x = -inf it gives NaN (-inf * 0), as the twin and PyTorch do.
struct Gelu : ActivationBase<Gelu> {
  template <typename C> __host__ __device__ static C cdf(C x) {
    return C(0.5) * (C(1) + math::erf(x * C(0.70710678118654752440)));
  }
  template <typename C> __host__ __device__ static C forward(C x, C) {
    return x * (C(1) + math::erf(x * C(0.70710678118654752440))) * C(0.5);
  }
  template <typename C> __host__ __device__ static C derivative(C x, C) {
    C pdf = C(0.39894228040143267794) * math::exp(C(-0.5) * x * x);
    return cdf(x) + x * pdf;
  }
};

// GELU with the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct GeluTanh : ActivationBase<GeluTanh> {
  template <typename C> __host__ __device__ static C inner(C x) {
    return C(0.79788456080286535588) * (x + C(0.044715) * x * x * x);
  }
  template <typename C> __host__ __device__ static C forward(C x, C) {
    return C(0.5) * x * (C(1) + math::tanh(inner(x)));
  }
  template <typename C> __host__ __device__ static C derivative(C x, C) {
    C t = math::tanh(inner(x));
    C dinner = C(0.79788456080286535588) * (C(1) + C(3 * 0.044715) * x * x);
    return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
  }
};

// softplus = log(1 + e^x), split at 0 like np.logaddexp(0, x) so neither branch overflows.
// Its derivative sigmoid(x) is recovered from the output: 1 - e^-out = -expm1(-out).
struct Softplus : ActivationBase<Softplus> {
  template <typename C> __host__ __device__ static C forward(C x, C) {
    return x > C(0) ? x + math::log1p(math::exp(-x)) : math::log1p(math::exp(x));
  }
  template <typename C> __host__ __device__ static C derivative(C out, C) {
    return -math::expm1(-out);
  }
};

struct Silu : ActivationBase<Silu> {
  template <typename C> __host__ __device__ static C forward(C x, C alpha) {
    return x * Sigmoid::forward(x, alpha);
  }
  template <typename C> __host__ __device__ static C derivative(C x, C alpha) {
    C s = Sigmoid::forward(x, alpha);
    return s * (C(1) + x * (C(1) - s));
  }
};

// Storage-type entry points: load T, compute in compute_t<T>, round once on the way out. The
// activation is a template argument, so each kernel instantiation inlines exactly one formula.
template <typename Act, typename T>
__host__ __device__ inline T activation_forward(T x, compute_t<T> alpha) {
  typedef compute_t<T> C;
  return T(Act::forward(C(x), alpha));
}

template <typename Act, typename T>
__host__ __device__ inline T activation_derivative(T saved, compute_t<T> alpha) {
  typedef compute_t<T> C;
  return T(Act::derivative(C(saved), alpha));
}

template <typename Act, typename T>
__host__ __device__ inline T activation_backward(T g, T saved, compute_t<T> alpha) {
  typedef compute_t<T> C;
  return T(Act::template backward<C>(C(g), C(saved), alpha));
}

}  // namespace gradflow

#endif  // GRADFLOW_ACTIVATIONS_CUH
