// Internal: exp, tanh and sigmoid for the CPU's recurrent cells, in float, without branches so
// that loops over them vectorize (the C library's expf and tanhf are scalar calls, and were half
// the time of an LSTM epoch). Double arguments use the C library.
//
//   exp(x)      x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so r is exact), then the
//               Taylor series of exp(r) to r^7 (the next term is below 6e-9 relative) times 2^n
//               built in the exponent bits; x is clamped to [-87, 88] first (the result stays a
//               normal float)
//   tanh(x)     the Taylor series to x^9 for |x| < 0.2 (the next term is below 2e-10), else
//               1 - 2 / (exp(2 |x|) + 1) with the sign of x
//   sigmoid(x)  1 / (1 + exp(-x))
// Each is within a few units in the last place of the float result; NaN gives NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace attnkit::cpu {

inline float fast_exp(float x) {
  // Written so that NaN becomes -87 here (never cast to an integer) and comes back at the end.
  const float clamped = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;
  const float n = std::floor(clamped * 1.44269504088896341f + 0.5f);
  const float r = (clamped - n * 0.693359375f) + n * 2.12194440e-4f;  // ln 2 = 0.693359375 - 2.12194440e-4
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float result = p * scale;
  return x != x ? x : result;  // NaN stays NaN
}

inline float fast_tanh(float x) {
  const float a = std::fabs(x);
  const float a2 = a * a;
  // x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835
  const float series = a * (1.0f + a2 * (-1.0f / 3.0f + a2 * (2.0f / 15.0f + a2 * (-17.0f / 315.0f + a2 * (62.0f / 2835.0f)))));
  const float far = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  const float magnitude = a < 0.2f ? series : far;
  return std::copysign(magnitude, x);
}

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

inline double fast_exp(double x) { return std::exp(x); }
inline double fast_tanh(double x) { return std::tanh(x); }
inline double fast_sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace attnkit::cpu
