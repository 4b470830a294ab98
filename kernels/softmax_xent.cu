// Softmax cross-entropy, one row per thread, with the output layer's bias added on the fly: the
// logits the loss sees are x[r, j] + bias[j] (bias may be null), so `linear` + cross-entropy needs
// no separate bias-add pass and its bias gradient is the column sum of what backward writes.
// Forward reads each logit once, keeping a running max m and a running Σ e^(x - m) rescaled
// whenever m grows (online logsumexp), so it is stable without a separate max pass. Backward
// needs that pass plus one more to write the gradient. One thread per row suits class counts up
// to a few thousand; a vocabulary-sized row wants a block per row with a shared-memory reduction.
#include "common.cuh"

namespace gradflow {

// Row r of the logits as the loss sees it. With a bias, x + b is rounded to the storage type
// first, as the NumPy twin (which adds the arrays) does.
template <typename T> struct LogitRow {
  const T* row;
  const T* bias;  // null: no bias
  __host__ __device__ compute_t<T> operator[](long long j) const {
    typedef compute_t<T> C;
    return bias ? C(T(C(row[j]) + C(bias[j]))) : C(row[j]);
  }
};

template <typename C> struct RowLogSumExp {
  C max;
  C sum;  // Σ e^(x - max)

  template <typename Row> __host__ __device__ RowLogSumExp(const Row& row, long long cols) {
    max = row[0];
    sum = C(1);
    for (long long j = 1; j < cols; ++j) {
      C x = row[j];
      if (x > max) {
        sum = sum * math::exp(max - x) + C(1);
        max = x;
      } else {
        // x == max counts e^0 = 1 directly, so rows of equal infinities do not make inf - inf.
        // A NaN x lands here and turns the sum into NaN.
        sum += x == max ? C(1) : math::exp(x - max);
      }
    }
  }
  __host__ __device__ C value() const { return math::log(sum) + max; }
  // The loss against the label's logit: log Σ e^(x - max) + (max - x_label). The two large
  // terms cancel first; (log Σ + max) - x_label would round the logsumexp to the spacing of the
  // logits (about 1e-3 at 1e4 in float32) before the cancellation.
  __host__ __device__ C loss(C x_label) const { return math::log(sum) + (max - x_label); }
};

__host__ __device__ inline bool label_in_range(long long label, long long cols) {
  return label >= 0 && label < cols;
}

// Labels equal to ignore_index (PyTorch's padding convention, -100 by default) add nothing to the
// loss or its gradient. `ignoring` is 0 for callers with no ignore_index (linear_cross_entropy):
// there every label must be a class.
struct IgnoredLabel {
  long long index;
  unsigned char ignoring;
  __host__ __device__ bool operator()(long long label) const { return ignoring && label == index; }
};

// loss[r] = logsumexp(z[r]) - z[r, labels[r]] with z = logits + bias; 0 for an ignored label. A
// label outside [0, cols) gives NaN and sets bad_label[r] (when given): the host reads those flags
// only when the loss is read, so validating labels costs the step no device-to-host copy.
template <typename T>
__global__ void softmax_xent_forward_kernel(const T* __restrict__ logits,
                                            const T* __restrict__ bias,
                                            const long long* __restrict__ labels,
                                            T* __restrict__ loss,
                                            unsigned char* __restrict__ bad_label, long long rows,
                                            long long cols, long long ignore_index,
                                            unsigned char ignoring) {
  typedef compute_t<T> C;
  const IgnoredLabel ignored{ignore_index, ignoring};
  for (long long r = grid_first_index(); r < rows; r += grid_stride()) {
    long long label = labels[r];
    if (ignored(label)) {
      if (bad_label) bad_label[r] = 0;
      loss[r] = T(C(0));
      continue;
    }
    LogitRow<T> row{logits + r * cols, bias};
    RowLogSumExp<C> lse(row, cols);
    bool good = label_in_range(label, cols);
    if (bad_label) bad_label[r] = good ? 0 : 1;
    loss[r] = good ? T(lse.loss(row[label])) : T(math::quiet_nan(C(0)));
  }
}

// gz[r] = (softmax(z[r]) - onehot(labels[r])) * scale[r * scale_stride] * factor / divisor[0],
// z = logits + bias; 0 for an ignored label. `scale` is the upstream gradient read on the device
// (stride 0: the 0-d gradient of a mean or sum; 1: one per row) or null (factor alone); `factor`
// is 1/N for a mean over all rows, passed from the host; `divisor` (or null) is the count of
// labels not ignored, written on the device by masked_reduce_kernel. So neither a scale multiply
// nor a copy to the host is needed. A label outside [0, cols) makes the row NaN, as the forward's
// loss is: a plain softmax would pass for a gradient.
template <typename T>
__global__ void softmax_xent_backward_kernel(const T* __restrict__ logits,
                                             const T* __restrict__ bias,
                                             const long long* __restrict__ labels,
                                             T* __restrict__ gz, long long rows, long long cols,
                                             const T* __restrict__ scale, long long scale_stride,
                                             compute_t<T> factor, long long ignore_index,
                                             unsigned char ignoring,
                                             const compute_t<T>* __restrict__ divisor) {
  typedef compute_t<T> C;
  const IgnoredLabel ignored{ignore_index, ignoring};
  for (long long r = grid_first_index(); r < rows; r += grid_stride()) {
    T* out = gz + r * cols;
    long long label = labels[r];
    if (ignored(label)) {
      for (long long j = 0; j < cols; ++j) out[j] = T(C(0));
      continue;
    }
    LogitRow<T> row{logits + r * cols, bias};
    RowLogSumExp<C> lse(row, cols);
    // Softmax of a row holding +inf is undefined; make the whole row NaN like the twin (and
    // PyTorch), whose inf - inf shift does it.
    bool undefined = (lse.max > C(0) && math::isinf(lse.max)) || !label_in_range(label, cols);
    C sum = undefined ? math::quiet_nan(C(0)) : lse.sum;
    C row_factor = scale ? C(scale[r * scale_stride]) * factor : factor;
    if (divisor) row_factor /= divisor[0];
    for (long long j = 0; j < cols; ++j) {
      C p = math::exp(row[j] - lse.max) / sum;
      if (j == label) p -= C(1);
      out[j] = T(p * row_factor);
    }
  }
}

// The loss reduced over the labels not ignored: total[0] = Σ loss (sum) or Σ loss / count (mean;
// 0/0 = NaN when every label is ignored, as PyTorch), count[0] = how many labels were not. The
// count stays on the device for the backward kernel's `divisor`, so a mean that skips labels
// costs no device-to-host copy and no launch more than an ordinary mean. One thread sums in row
// order: deterministic, and free of shared memory so the host shim runs it; batch-sized rows
// cost microseconds (a token-sized N wants a block reduction).
template <typename T>
__global__ void masked_reduce_kernel(const T* __restrict__ loss, const long long* __restrict__ labels,
                                     long long rows, long long ignore_index,
                                     unsigned char ignoring, unsigned char mean,
                                     T* __restrict__ total, compute_t<T>* __restrict__ count) {
  typedef compute_t<T> C;
  const IgnoredLabel ignored{ignore_index, ignoring};
  if (grid_first_index() != 0) return;
  C sum = C(0);
  long long kept = 0;
  for (long long r = 0; r < rows; ++r) {
    if (ignored(labels[r])) continue;
    sum += C(loss[r]);
    ++kept;
  }
  total[0] = T(mean ? sum / C(kept) : sum);
  count[0] = C(kept);
}

}  // namespace gradflow

#ifdef GRADFLOW_INSTANTIATE
#define GRADFLOW_XENT_KERNELS(T)                                                                \
  template __global__ void gradflow::softmax_xent_forward_kernel<T>(                            \
      const T*, const T*, const long long*, T*, unsigned char*, long long, long long,           \
      long long, unsigned char);                                                                \
  template __global__ void gradflow::softmax_xent_backward_kernel<T>(                           \
      const T*, const T*, const long long*, T*, long long, long long, const T*, long long,      \
      gradflow::compute_t<T>, long long, unsigned char, const gradflow::compute_t<T>*);       \
  template __global__ void gradflow::masked_reduce_kernel<T>(                                   \
      const T*, const long long*, long long, long long, unsigned char, unsigned char, T*,       \
      gradflow::compute_t<T>*);
GRADFLOW_XENT_KERNELS(float)
GRADFLOW_XENT_KERNELS(double)
#ifdef GRADFLOW_HAS_HALF
GRADFLOW_XENT_KERNELS(__half)
#endif
#endif
