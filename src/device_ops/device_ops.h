// Internal: the ops of src/ops on a device (cuda or sim). src/ops validates the arguments, then
// calls the twin here for tensors that are not on the cpu; these allocate the results on the
// device of their inputs and launch the kernels of kernels/ (and cuBLAS and cuDNN on cuda).
//
// This header is read twice (device_ops/dispatch.h), and every ops_*.cpp compiled twice (see
// CMakeLists.txt), with ATTNKIT_DEVICE_OPS naming the namespace: attnkit::sim_ops, whose
// kernels run on the sim executor, and with CUDA attnkit::cuda_ops. The tensors are float32.
// No include guard: each reading declares another namespace.

#include <cstdint>
#include <vector>

#include "attnkit/ops/attention.h"
#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/norm.h"
#include "attnkit/ops/recurrent.h"
#include "attnkit/tensor.h"
#include "ops/attention_operands.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {

// ---------------------------------------------------------------- the device's services
// The stream every op of this device runs on (nullptr, the sim's only stream, on the sim).
void* stream(Device device);
// Row-major float32 products on the device: C = alpha op(A) op(B) + beta C for `batch` triples
// of matrices `stride_a`, `stride_b`, `stride_c` floats apart; op(A) [m, k], op(B) [k, n].
void gemm(Device device, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc, std::int64_t batch, std::int64_t stride_a, std::int64_t stride_b, std::int64_t stride_c);

// ---------------------------------------------------------------- elementwise, softmax, dropout
Tensor activation(const Tensor& x, ops::Activation kind);  // not softmax
Tensor activation_backward(const Tensor& y, const Tensor& dy, ops::Activation kind);
Tensor multiply(const Tensor& a, const Tensor& b);
void multiply_backward(const Tensor& a, const Tensor& b, const Tensor& dy, Tensor& da, Tensor& db);
Tensor add(const Tensor& a, const Tensor& b);
// Over the last axis.
Tensor softmax(const Tensor& x, bool log);
Tensor softmax_backward(const Tensor& y, const Tensor& dy, bool log);
// mask: u8 like x; offset: the first Philox block (Generator::reserve).
void dropout(const Tensor& x, double rate, std::uint64_t seed, std::uint64_t offset, Tensor& y, Tensor& mask);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double rate);

// ---------------------------------------------------------------- dtype conversion
// x (f32, f16 or bf16) converted to `dtype` (one of those) into a new tensor.
Tensor cast(const Tensor& x, DType dtype);

// ---------------------------------------------------------------- bias (products: gemm above)
// y = x + bias over the last axis; may be done in place (y = x).
void bias_add(const Tensor& x, const Tensor& bias, Tensor& y);
Tensor bias_add_backward(const Tensor& dy);

// ---------------------------------------------------------------- embedding, loss
Tensor embedding(const Tensor& ids, const Tensor& table);
Tensor embedding_backward(const Tensor& ids, const Tensor& dy, std::int64_t vocabulary_size);
// A scalar tensor on the device.
// sample_weight: [pred.size(0)] or undefined (unweighted).
Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits,
                                const Tensor& sample_weight);
Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits,
                                         const Tensor& sample_weight);
Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits, const Tensor& sample_weight);
Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits,
                                    const Tensor& sample_weight);

// ---------------------------------------------------------------- reductions and shapes
// x viewed as [outer, n, inner]; the result [outer, inner] has `shape`.
Tensor mean(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, const Shape& shape);
Tensor mean_backward(const Tensor& dy, std::int64_t outer, std::int64_t n, std::int64_t inner, const Shape& shape);
Tensor flip(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner);
// x viewed as [outer, a, mid, b, inner]; the result [outer, b, mid, a, inner] has `shape`.
Tensor swap_axes(const Tensor& x, const Shape& shape, std::int64_t outer, std::int64_t a, std::int64_t mid,
                 std::int64_t b, std::int64_t inner);
// Each part viewed as [outer, columns[i]] (the axis and all after it), y as [outer, sum of
// columns]; y has `shape`, and grads[i] the shape of part i (`shapes`).
Tensor concat(const std::vector<Tensor>& xs, const Shape& shape, std::int64_t outer,
              const std::vector<std::int64_t>& columns);
std::vector<Tensor> concat_backward(const Tensor& dy, const std::vector<Shape>& shapes, std::int64_t outer,
                                    const std::vector<std::int64_t>& columns);

// ---------------------------------------------------------------- convolution and pooling over time
// x [B, T, C] through windows of `window` steps every `stride`, the first at step -left;
// out_steps windows. im2col: [B * out_steps, window * C]; col2im its adjoint, into x_shape.
Tensor im2col(const Tensor& x, std::int64_t window, std::int64_t stride, std::int64_t left, std::int64_t out_steps);
Tensor col2im(const Tensor& dcols, const Shape& x_shape, std::int64_t window, std::int64_t stride, std::int64_t left,
              std::int64_t out_steps);
void max_pool1d(const Tensor& x, std::int64_t window, std::int64_t stride, std::int64_t left, std::int64_t out_steps,
                Tensor& y, Tensor& argmax);
Tensor max_pool1d_backward(const Tensor& dy, const Tensor& argmax, std::int64_t input_steps);

// ---------------------------------------------------------------- normalisation (ops/norm.h)
ops::NormResult layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);
ops::NormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& dy);
ops::NormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                           Tensor& running_var, bool training, double momentum, double eps);
ops::NormGrads batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& dy, bool training);

// ---------------------------------------------------------------- attention (ops/attention.h)
// Scaled dot-product attention, unfused (f32; key_mask only, no key_lengths). The backward
// recomputes the probabilities and writes dq, dk, dv into the heads given (layouts of q, k, v).
ops::AttentionResult scaled_dot_product_attention(const ops::detail::AttentionOperands& a, bool return_weights);
void scaled_dot_product_attention_backward(const ops::detail::AttentionOperands& a, const Tensor& dout,
                                           const ops::detail::Heads& dq, const ops::detail::Heads& dk,
                                           const ops::detail::Heads& dv);
// The probabilities P [B, H, Tq, Tk] by the unfused steps (f32), for inspection.
Tensor attention_weights(const ops::detail::AttentionOperands& a);
// Fused (kernels/flash_attention.h): out in q's dtype, lse f32. _unfit: why the kernels do not
// take the operands, or "".
std::string flash_attention_unfit(const ops::detail::AttentionOperands& a);
ops::AttentionResult flash_attention(const ops::detail::AttentionOperands& a);
// ds: f32 zeros [B, H, Tq, Tk] that receive the gradient of every score (dbias), or undefined.
void flash_attention_backward(const ops::detail::AttentionOperands& a, const ops::AttentionResult& forward,
                              const Tensor& dout, const ops::detail::Heads& dq, const ops::detail::Heads& dk,
                              const ops::detail::Heads& dv, const Tensor& ds);
// Decoding against a key/value cache (kernels/decode_attention.h), the new steps written into the
// caches first: out in q's dtype, lse f32. _unfit: why the kernels do not take the operands, or "".
std::string decode_attention_unfit(const ops::detail::AttentionOperands& a, const ops::detail::DecodeSteps& steps);
ops::AttentionResult decode_attention(const ops::detail::AttentionOperands& a, const ops::detail::DecodeSteps& steps);
// Additive pooling fused (kernels/additive_attention.h), for x [B, T, D] that fits the kernels;
// and its unfused path's weights from the tanh scores [B, T] (mask u8 [B, T] or undefined).
std::string additive_attention_unfit(const Tensor& x);  // why the kernels do not take x, or ""
ops::AdditiveAttentionResult additive_attention(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mask,
                                                bool return_sequences, double epsilon);
ops::AdditiveAttentionGrads additive_attention_backward(const Tensor& x, const Tensor& w, const Tensor& b,
                                                        const Tensor& weights, const Tensor& dy,
                                                        bool return_sequences);
Tensor epsilon_softmax(const Tensor& scores, const Tensor& mask, double epsilon);
// Gating fused (kernels/gating_attention.h), over features or over time, for x that fits the
// kernels. bias may be undefined; probs is the forward's over features, unused over time (the
// rows' softmaxes are recomputed). The backward returns dx and sets dz [rows, width].
std::string gating_attention_unfit(const Tensor& x, bool over_time, bool single_vector);  // or ""
ops::GatingResult gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias, bool over_time,
                                   bool single_vector);
Tensor gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& probs,
                                 const Tensor& dy, bool over_time, bool single_vector, Tensor& dz);

// ---------------------------------------------------------------- recurrent (ops/recurrent.h)
// Through the step kernels of kernels/recurrent.cu; the GRU with reset_after only.
ops::RecurrentResult recurrent(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                               const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0, const Tensor& c0,
                               const ops::RecurrentOptions& options);
ops::RecurrentGrads recurrent_backward(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                       const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                                       const Tensor& c0, const ops::RecurrentResult& forward, const Tensor& dy,
                                       const Tensor& dh_last, const Tensor& dc_last,
                                       const ops::RecurrentOptions& options, bool needs_dx);

// ---------------------------------------------------------------- optimizers
// What precedes an update (kernels/optimizers.h): the sum of the squares of x's elements (a
// one-element tensor on x's device); grad * scale clamped to [-clipvalue, clipvalue] when
// clipvalue > 0, as a new tensor; param -= param * decay in place.
Tensor squared_norm(const Tensor& x);
Tensor clip_gradient(const Tensor& grad, double scale, double clipvalue);
void decay_weights(Tensor& param, double decay);
void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double learning_rate, double beta_1,
               double beta_2, double epsilon, std::int64_t step);
// velocity: null when momentum is 0.
void sgd_step(Tensor& param, const Tensor& grad, Tensor* velocity, double learning_rate, double momentum);

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
