// Layer and batch normalisation: checks, then the CPU (statistics accumulated in double) or the
// device ops.
#include "attnkit/ops/norm.h"

#include <cmath>
#include <vector>

#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

struct RowsChannels {
  std::int64_t rows, channels;
};

RowsChannels check_norm(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  detail::check_float(op, "x", x);
  ATTNKIT_CHECK(x.dim() >= 1 && x.size(-1) > 0, op, ": x must be [..., C] with C > 0, got ",
                x.describe());
  const std::int64_t channels = x.size(-1);
  detail::check_like(op, "gamma", gamma, {channels}, x);
  if (beta.defined()) detail::check_like(op, "beta", beta, {channels}, x);
  return {x.numel() / channels, channels};
}

}  // namespace

NormResult layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const RowsChannels rc = check_norm("layer_norm", x, gamma, beta);
  ATTNKIT_CHECK(beta.defined(), "layer_norm: beta is undefined");
  ATTNKIT_CHECK(eps > 0, "layer_norm: eps must be positive, got ", eps);
  const Device device = detail::common_device("layer_norm", {{"x", &x}, {"gamma", &gamma}, {"beta", &beta}});
  if (!device.is_cpu()) {
    detail::require_device_f32("layer_norm", x);
    return ATTNKIT_DEVICE_OP(device, layer_norm(x, gamma, beta, eps));
  }
  Shape rows_shape(x.shape().begin(), x.shape().end() - 1);
  NormResult r{Tensor::empty_like(x), Tensor::empty(rows_shape, x.dtype()),
               Tensor::empty(rows_shape, x.dtype())};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pg = gamma.data<T>(), *pb = beta.data<T>();
    T *py = r.y.data<T>(), *pm = r.mean.data<T>(), *ps = r.rstd.data<T>();
    const std::int64_t C = rc.channels;
    cpu::parallel_for(rc.rows, 6 * C, [&](std::int64_t row) {
      const T* xr = px + row * C;
      double sum = 0;
      for (std::int64_t c = 0; c < C; ++c) sum += xr[c];
      const double mean = sum / double(C);
      double squares = 0;
      for (std::int64_t c = 0; c < C; ++c) squares += (xr[c] - mean) * (xr[c] - mean);
      const double rstd = 1.0 / std::sqrt(squares / double(C) + eps);
      for (std::int64_t c = 0; c < C; ++c)
        py[row * C + c] = static_cast<T>(pg[c] * (xr[c] - mean) * rstd + pb[c]);
      pm[row] = static_cast<T>(mean);
      ps[row] = static_cast<T>(rstd);
    });
  });
  return r;
}

NormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy) {
  const RowsChannels rc = check_norm("layer_norm_backward", x, gamma, Tensor());
  const Shape rows_shape(x.shape().begin(), x.shape().end() - 1);
  detail::check_like("layer_norm_backward", "mean", mean, rows_shape, x);
  detail::check_like("layer_norm_backward", "rstd", rstd, rows_shape, x);
  detail::check_like("layer_norm_backward", "dy", dy, x.shape(), x);
  const Device device = detail::common_device(
      "layer_norm_backward", {{"x", &x}, {"gamma", &gamma}, {"mean", &mean}, {"rstd", &rstd}, {"dy", &dy}});
  if (!device.is_cpu()) {
    detail::require_device_f32("layer_norm_backward", x);
    return ATTNKIT_DEVICE_OP(device, layer_norm_backward(x, gamma, mean, rstd, dy));
  }
  NormGrads g{Tensor::empty_like(x), Tensor::empty_like(gamma), Tensor::empty_like(gamma)};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pg = gamma.data<T>(), *pm = mean.data<T>(), *ps = rstd.data<T>(),
            *pdy = dy.data<T>();
    T* pdx = g.dx.data<T>();
    const std::int64_t C = rc.channels;
    cpu::parallel_for(rc.rows, 8 * C, [&](std::int64_t row) {
      const double m = pm[row], s = ps[row];
      double mean_g = 0, mean_gx = 0;
      for (std::int64_t c = 0; c < C; ++c) {
        const double gc = double(pdy[row * C + c]) * pg[c];
        mean_g += gc;
        mean_gx += gc * (px[row * C + c] - m) * s;
      }
      mean_g /= double(C);
      mean_gx /= double(C);
      for (std::int64_t c = 0; c < C; ++c) {
        const double xhat = (px[row * C + c] - m) * s;
        pdx[row * C + c] = static_cast<T>(s * (double(pdy[row * C + c]) * pg[c] - mean_g - xhat * mean_gx));
      }
    });
    // Parameter gradients sum over rows: one pass, channels innermost.
    std::vector<double> dgamma(static_cast<std::size_t>(C), 0.0), dbeta(static_cast<std::size_t>(C), 0.0);
    for (std::int64_t row = 0; row < rc.rows; ++row)
      for (std::int64_t c = 0; c < C; ++c) {
        const double d = pdy[row * C + c];
        dgamma[static_cast<std::size_t>(c)] += d * (px[row * C + c] - double(pm[row])) * double(ps[row]);
        dbeta[static_cast<std::size_t>(c)] += d;
      }
    for (std::int64_t c = 0; c < C; ++c) {
      g.dgamma.data<T>()[c] = static_cast<T>(dgamma[static_cast<std::size_t>(c)]);
      g.dbeta.data<T>()[c] = static_cast<T>(dbeta[static_cast<std::size_t>(c)]);
    }
  });
  return g;
}

NormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                      Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                      double eps) {
  const RowsChannels rc = check_norm("batch_norm", x, gamma, beta);
  ATTNKIT_CHECK(beta.defined(), "batch_norm: beta is undefined");
  detail::check_like("batch_norm", "running_mean", running_mean, {rc.channels}, x);
  detail::check_like("batch_norm", "running_var", running_var, {rc.channels}, x);
  ATTNKIT_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  ATTNKIT_CHECK(momentum >= 0 && momentum <= 1, "batch_norm: momentum must be in [0, 1], got ", momentum);
  ATTNKIT_CHECK(!training || rc.rows > 0, "batch_norm: training needs at least one row");
  const Device device =
      detail::common_device("batch_norm", {{"x", &x}, {"gamma", &gamma}, {"beta", &beta},
                                           {"running_mean", &running_mean}, {"running_var", &running_var}});
  if (!device.is_cpu()) {
    detail::require_device_f32("batch_norm", x);
    return ATTNKIT_DEVICE_OP(device, batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps));
  }
  const std::int64_t C = rc.channels;
  NormResult r{Tensor::empty_like(x), Tensor::empty({C}, x.dtype()), Tensor::empty({C}, x.dtype())};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pg = gamma.data<T>(), *pb = beta.data<T>();
    T *pm = r.mean.data<T>(), *ps = r.rstd.data<T>();
    T *run_mean = running_mean.data<T>(), *run_var = running_var.data<T>();
    std::vector<double> mean(static_cast<std::size_t>(C), 0.0), var(static_cast<std::size_t>(C), 0.0);
    if (training) {
      for (std::int64_t row = 0; row < rc.rows; ++row)
        for (std::int64_t c = 0; c < C; ++c) mean[static_cast<std::size_t>(c)] += px[row * C + c];
      for (auto& m : mean) m /= double(rc.rows);
      for (std::int64_t row = 0; row < rc.rows; ++row)
        for (std::int64_t c = 0; c < C; ++c) {
          const double d = px[row * C + c] - mean[static_cast<std::size_t>(c)];
          var[static_cast<std::size_t>(c)] += d * d;
        }
      for (std::int64_t c = 0; c < C; ++c) {
        auto& v = var[static_cast<std::size_t>(c)];
        v /= double(rc.rows);
        run_mean[c] = static_cast<T>(momentum * run_mean[c] + (1 - momentum) * mean[static_cast<std::size_t>(c)]);
        run_var[c] = static_cast<T>(momentum * run_var[c] + (1 - momentum) * v);
      }
    } else {
      for (std::int64_t c = 0; c < C; ++c) {
        mean[static_cast<std::size_t>(c)] = run_mean[c];
        var[static_cast<std::size_t>(c)] = run_var[c];
      }
    }
    for (std::int64_t c = 0; c < C; ++c) {
      pm[c] = static_cast<T>(mean[static_cast<std::size_t>(c)]);
      ps[c] = static_cast<T>(1.0 / std::sqrt(var[static_cast<std::size_t>(c)] + eps));
    }
    T* py = r.y.data<T>();
    cpu::parallel_for(rc.rows, 3 * C, [&](std::int64_t row) {
      for (std::int64_t c = 0; c < C; ++c)
        py[row * C + c] = static_cast<T>(pg[c] * (double(px[row * C + c]) - mean[static_cast<std::size_t>(c)]) * ps[c] + pb[c]);
    });
  });
  return r;
}

NormGrads batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy, bool training) {
  const RowsChannels rc = check_norm("batch_norm_backward", x, gamma, Tensor());
  const std::int64_t C = rc.channels;
  detail::check_like("batch_norm_backward", "mean", mean, {C}, x);
  detail::check_like("batch_norm_backward", "rstd", rstd, {C}, x);
  detail::check_like("batch_norm_backward", "dy", dy, x.shape(), x);
  const Device device = detail::common_device(
      "batch_norm_backward", {{"x", &x}, {"gamma", &gamma}, {"mean", &mean}, {"rstd", &rstd}, {"dy", &dy}});
  if (!device.is_cpu()) {
    detail::require_device_f32("batch_norm_backward", x);
    return ATTNKIT_DEVICE_OP(device, batch_norm_backward(x, gamma, mean, rstd, dy, training));
  }
  NormGrads g{Tensor::empty_like(x), Tensor::empty_like(gamma), Tensor::empty_like(gamma)};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pg = gamma.data<T>(), *pm = mean.data<T>(), *ps = rstd.data<T>(),
            *pdy = dy.data<T>();
    // Per channel: sum(dy) and sum(dy xhat), which give dbeta, dgamma and the mean terms of dx.
    std::vector<double> sum_dy(static_cast<std::size_t>(C), 0.0), sum_dy_xhat(static_cast<std::size_t>(C), 0.0);
    for (std::int64_t row = 0; row < rc.rows; ++row)
      for (std::int64_t c = 0; c < C; ++c) {
        const double d = pdy[row * C + c];
        sum_dy[static_cast<std::size_t>(c)] += d;
        sum_dy_xhat[static_cast<std::size_t>(c)] += d * (px[row * C + c] - double(pm[c])) * ps[c];
      }
    for (std::int64_t c = 0; c < C; ++c) {
      g.dbeta.data<T>()[c] = static_cast<T>(sum_dy[static_cast<std::size_t>(c)]);
      g.dgamma.data<T>()[c] = static_cast<T>(sum_dy_xhat[static_cast<std::size_t>(c)]);
    }
    T* pdx = g.dx.data<T>();
    const double rows = double(rc.rows);
    cpu::parallel_for(rc.rows, 6 * C, [&](std::int64_t row) {
      for (std::int64_t c = 0; c < C; ++c) {
        const std::size_t cc = static_cast<std::size_t>(c);
        const double gc = double(pdy[row * C + c]) * pg[c];
        if (!training) {
          pdx[row * C + c] = static_cast<T>(gc * ps[c]);
          continue;
        }
        // mean_rows(g) = gamma sum(dy) / N and mean_rows(g xhat) = gamma sum(dy xhat) / N.
        const double xhat = (px[row * C + c] - double(pm[c])) * ps[c];
        pdx[row * C + c] = static_cast<T>(
            ps[c] * (gc - pg[c] * sum_dy[cc] / rows - xhat * pg[c] * sum_dy_xhat[cc] / rows));
      }
    });
  });
  return g;
}

}  // namespace attnkit::ops
