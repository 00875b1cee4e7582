// Categorical and binary cross-entropy with Keras's clipping, weighted per sample or not, on the
// CPU; sums in double. A missing weight is 1, and multiplying by it changes no bit.
#include "attnkit/ops/loss.h"

#include <algorithm>
#include <cmath>

#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

void check_operands(const char* op, const Tensor& pred, const Tensor& target, const Tensor& sample_weight,
                    bool categorical) {
  detail::check_float(op, "pred", pred);
  if (categorical) detail::check_rank(op, "pred", pred, 2, "[N, C]");
  ATTNKIT_CHECK(pred.numel() > 0, op, ": pred is empty");
  detail::check_like(op, "target", target, pred.shape(), pred);
  if (sample_weight.defined()) {
    ATTNKIT_CHECK(pred.dim() >= 1, op, ": sample_weight needs pred with a sample axis, got ", pred.describe());
    detail::check_like(op, "sample_weight", sample_weight, {pred.size(0)}, pred);
  }
  const Device device =
      detail::common_device(op, {{"pred", &pred}, {"target", &target}, {"sample_weight", &sample_weight}});
  if (!device.is_cpu()) detail::require_device_f32(op, pred);
}

// The weights' values, or nullptr when there are none.
template <typename T>
const T* weights_or_null(const Tensor& sample_weight) {
  return sample_weight.defined() ? sample_weight.data<T>() : nullptr;
}

Tensor scalar(double value, DType dtype) { return Tensor::full({}, value, dtype); }

}  // namespace

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits,
                                const Tensor& sample_weight) {
  check_operands("categorical_crossentropy", pred, target, sample_weight, true);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(), categorical_crossentropy(pred, target, from_logits, sample_weight));
  const std::int64_t N = pred.size(0), C = pred.size(1);
  double total = 0;
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    const T* w = weights_or_null<T>(sample_weight);
    for (std::int64_t n = 0; n < N; ++n) {
      const T* pr = p + n * C;
      const T* yr = y + n * C;
      const double weight = w == nullptr ? 1.0 : double(w[n]);
      if (from_logits) {
        const double max = *std::max_element(pr, pr + C);
        double sum = 0;
        for (std::int64_t c = 0; c < C; ++c) sum += std::exp(double(pr[c]) - max);
        const double log_sum = max + std::log(sum);
        for (std::int64_t c = 0; c < C; ++c) total -= weight * yr[c] * (double(pr[c]) - log_sum);
      } else {
        double sum = 0;
        for (std::int64_t c = 0; c < C; ++c) sum += pr[c];
        for (std::int64_t c = 0; c < C; ++c)
          total -= weight * yr[c] * std::log(std::clamp(pr[c] / sum, kKerasEpsilon, 1 - kKerasEpsilon));
      }
    }
  });
  return scalar(total / double(N), pred.dtype());
}

Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target, bool from_logits,
                                         double dloss, const Tensor& sample_weight) {
  check_operands("categorical_crossentropy_backward", pred, target, sample_weight, true);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(), categorical_crossentropy_backward(pred, target, static_cast<float>(dloss),
                                                                              from_logits, sample_weight));
  const std::int64_t N = pred.size(0), C = pred.size(1);
  Tensor dpred = Tensor::empty_like(pred);
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    const T* w = weights_or_null<T>(sample_weight);
    T* dp = dpred.data<T>();
    for (std::int64_t n = 0; n < N; ++n) {
      const T* pr = p + n * C;
      const T* yr = y + n * C;
      T* dr = dp + n * C;
      const double scale = dloss / double(N) * (w == nullptr ? 1.0 : double(w[n]));
      double target_sum = 0;
      for (std::int64_t c = 0; c < C; ++c) target_sum += yr[c];
      if (from_logits) {
        // d/dz of -sum_c y_c log_softmax(z)_c = softmax(z) sum_c y_c - y.
        const double max = *std::max_element(pr, pr + C);
        double sum = 0;
        for (std::int64_t c = 0; c < C; ++c) sum += std::exp(double(pr[c]) - max);
        for (std::int64_t c = 0; c < C; ++c)
          dr[c] = static_cast<T>(scale * (std::exp(double(pr[c]) - max) / sum * target_sum - yr[c]));
      } else {
        // q = pred / s; dq_c = -y_c / q_c inside the clip range; dpred_k = (dq_k - sum_c dq_c q_c) / s.
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) s += pr[c];
        double dq_dot_q = 0;
        for (std::int64_t c = 0; c < C; ++c) {
          const double q = pr[c] / s;
          const bool inside = q > kKerasEpsilon && q < 1 - kKerasEpsilon;
          const double dq = inside ? -yr[c] / q : 0.0;
          dr[c] = static_cast<T>(dq);
          dq_dot_q += dq * q;
        }
        for (std::int64_t c = 0; c < C; ++c) dr[c] = static_cast<T>(scale * (double(dr[c]) - dq_dot_q) / s);
      }
    }
  });
  return dpred;
}

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits, const Tensor& sample_weight) {
  check_operands("binary_crossentropy", pred, target, sample_weight, false);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(), binary_crossentropy(pred, target, from_logits, sample_weight));
  double total = 0;
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    const T* w = weights_or_null<T>(sample_weight);
    const std::int64_t per_sample = w == nullptr ? 1 : pred.numel() / pred.size(0);
    for (std::int64_t i = 0; i < pred.numel(); ++i) {
      const double weight = w == nullptr ? 1.0 : double(w[i / per_sample]);
      if (from_logits) {
        const double z = p[i];
        total += weight * (std::max(z, 0.0) - z * y[i] + std::log1p(std::exp(-std::abs(z))));
      } else {
        const double q = std::clamp(double(p[i]), kKerasEpsilon, 1 - kKerasEpsilon);
        total -= weight * (y[i] * std::log(q + kKerasEpsilon) + (1 - double(y[i])) * std::log(1 - q + kKerasEpsilon));
      }
    }
  });
  return scalar(total / double(pred.numel()), pred.dtype());
}

Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target, bool from_logits,
                                    double dloss, const Tensor& sample_weight) {
  check_operands("binary_crossentropy_backward", pred, target, sample_weight, false);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(), binary_crossentropy_backward(pred, target, static_cast<float>(dloss),
                                                                         from_logits, sample_weight));
  Tensor dpred = Tensor::empty_like(pred);
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    const T* w = weights_or_null<T>(sample_weight);
    const std::int64_t per_sample = w == nullptr ? 1 : pred.numel() / pred.size(0);
    T* dp = dpred.data<T>();
    for (std::int64_t i = 0; i < pred.numel(); ++i) {
      const double scale = dloss / double(pred.numel()) * (w == nullptr ? 1.0 : double(w[i / per_sample]));
      if (from_logits) {
        const double z = p[i];
        const double sigma = z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
        dp[i] = static_cast<T>(scale * (sigma - y[i]));
      } else {
        const double q = p[i];
        const bool inside = q > kKerasEpsilon && q < 1 - kKerasEpsilon;
        dp[i] = inside ? static_cast<T>(scale * (-y[i] / (q + kKerasEpsilon) +
                                                 (1 - double(y[i])) / (1 - q + kKerasEpsilon)))
                       : T(0);
      }
    }
  });
  return dpred;
}

}  // namespace attnkit::ops
