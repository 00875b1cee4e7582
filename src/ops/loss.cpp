// Categorical and binary cross-entropy with Keras's clipping, on the CPU; sums in double.
#include "attnkit/ops/loss.h"

#include <algorithm>
#include <cmath>

#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

void check_pair(const char* op, const Tensor& pred, const Tensor& target, bool categorical) {
  detail::check_float(op, "pred", pred);
  if (categorical) detail::check_rank(op, "pred", pred, 2, "[N, C]");
  ATTNKIT_CHECK(pred.numel() > 0, op, ": pred is empty");
  detail::check_like(op, "target", target, pred.shape(), pred);
  const Device device = detail::common_device(op, {{"pred", &pred}, {"target", &target}});
  if (!device.is_cpu()) detail::require_device_f32(op, pred);
}

Tensor scalar(double value, DType dtype) { return Tensor::full({}, value, dtype); }

}  // namespace

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits) {
  check_pair("categorical_crossentropy", pred, target, true);
  if (!pred.is_cpu()) return ATTNKIT_DEVICE_OP(pred.device(), categorical_crossentropy(pred, target, from_logits));
  const std::int64_t N = pred.size(0), C = pred.size(1);
  double total = 0;
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    for (std::int64_t n = 0; n < N; ++n) {
      const T* pr = p + n * C;
      const T* yr = y + n * C;
      if (from_logits) {
        const double max = *std::max_element(pr, pr + C);
        double sum = 0;
        for (std::int64_t c = 0; c < C; ++c) sum += std::exp(double(pr[c]) - max);
        const double log_sum = max + std::log(sum);
        for (std::int64_t c = 0; c < C; ++c) total -= yr[c] * (double(pr[c]) - log_sum);
      } else {
        double sum = 0;
        for (std::int64_t c = 0; c < C; ++c) sum += pr[c];
        for (std::int64_t c = 0; c < C; ++c)
          total -= yr[c] * std::log(std::clamp(pr[c] / sum, kKerasEpsilon, 1 - kKerasEpsilon));
      }
    }
  });
  return scalar(total / double(N), pred.dtype());
}

Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target, bool from_logits,
                                         double dloss) {
  check_pair("categorical_crossentropy_backward", pred, target, true);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(),
                             categorical_crossentropy_backward(pred, target, static_cast<float>(dloss), from_logits));
  const std::int64_t N = pred.size(0), C = pred.size(1);
  Tensor dpred = Tensor::empty_like(pred);
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    T* dp = dpred.data<T>();
    const double scale = dloss / double(N);
    for (std::int64_t n = 0; n < N; ++n) {
      const T* pr = p + n * C;
      const T* yr = y + n * C;
      T* dr = dp + n * C;
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

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits) {
  check_pair("binary_crossentropy", pred, target, false);
  if (!pred.is_cpu()) return ATTNKIT_DEVICE_OP(pred.device(), binary_crossentropy(pred, target, from_logits));
  double total = 0;
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    for (std::int64_t i = 0; i < pred.numel(); ++i) {
      if (from_logits) {
        const double z = p[i];
        total += std::max(z, 0.0) - z * y[i] + std::log1p(std::exp(-std::abs(z)));
      } else {
        const double q = std::clamp(double(p[i]), kKerasEpsilon, 1 - kKerasEpsilon);
        total -= y[i] * std::log(q + kKerasEpsilon) + (1 - double(y[i])) * std::log(1 - q + kKerasEpsilon);
      }
    }
  });
  return scalar(total / double(pred.numel()), pred.dtype());
}

Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target, bool from_logits,
                                    double dloss) {
  check_pair("binary_crossentropy_backward", pred, target, false);
  if (!pred.is_cpu())
    return ATTNKIT_DEVICE_OP(pred.device(),
                             binary_crossentropy_backward(pred, target, static_cast<float>(dloss), from_logits));
  Tensor dpred = Tensor::empty_like(pred);
  detail::dispatch_float(pred.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = pred.data<T>(), *y = target.data<T>();
    T* dp = dpred.data<T>();
    const double scale = dloss / double(pred.numel());
    for (std::int64_t i = 0; i < pred.numel(); ++i) {
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
