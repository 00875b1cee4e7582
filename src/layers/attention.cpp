// Attention layers: AttentionPooling, GatingAttention (over features and over time),
// MultiHeadSelfAttention, DotAttention, and Keras's MultiHeadAttention, Attention and
// AdditiveAttention.
//
// A layer created with return_attention has a second output, its attention weights, for
// inspection: no gradient flows back through it.
//
// MultiHeadSelfAttention, DotAttention and MultiHeadAttention run their scaled dot-product
// attention in the compute dtype of their dtype policy (mixed_precision.h): under mixed_bfloat16,
// at head dims the bf16 kernels take (32, 64, 128), its operands are cast to bf16 before it and
// its results back to the inputs' dtype after it, forward and backward; the rest computes in the
// inputs' dtype, as everything does under float32 (f32; f64 in the gradient checks).
#include "attnkit/ops/attention.h"
#include "attnkit/ops/cast.h"
#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/shape.h"
#include "json_integers.h"
#include "layers/initializers.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

// The optional mask input: u8 [steps].
void expect_mask(const std::string& label, const Shape& mask, std::int64_t steps) {
  ATTNKIT_CHECK(mask.size() == 1 && (mask[0] == steps || mask[0] < 0 || steps < 0), label,
                ": the mask must be [", steps, "] (one entry per step), got ", shape_str(mask));
}

void refuse_weight_gradient(const std::string& label, const Tensors& output_grads) {
  ATTNKIT_CHECK(output_grads.size() < 2 || !output_grads[1].defined(), label,
                ": its attention weights output is for inspection; a loss cannot depend on it");
}

// The dtype a layer's attention runs in, for inputs of dtype `input` and heads of head_dim
// features: the policy's 16-bit compute dtype where the 16-bit kernels take that head dim (32, 64
// or 128), else (and under float32) `input`; the same on every device, so that a model computes alike
// wherever it runs.
DType attention_dtype(const mixed_precision::Policy& policy, DType input, std::int64_t head_dim) {
  const bool kernels_take_it = head_dim == 32 || head_dim == 64 || head_dim == 128;
  return policy.compute_dtype() == DType::f32 || !kernels_take_it ? input : policy.compute_dtype();
}

// The weights [B, 1, Tq, Tk] of a one-head attention as [B, Tq, Tk] in `dtype`.
Tensor one_head_weights(const ops::AttentionResult& attention, DType dtype) {
  const Tensor w = ops::cast(attention.weights, dtype);
  return w.reshape({w.size(0), w.size(2), w.size(3)});
}

// Attention dropout at `rate` for a training call of an attention of H heads, Tq queries and Tk
// keys over `rows` rows of a batch: the options take the rate and the call's rows' part of the
// batch's draw (CallContext), so that a batch split into shards drops what it would whole.
void add_attention_dropout(ops::AttentionOptions& options, double rate, const CallContext& context, std::int64_t rows,
                           std::int64_t H, std::int64_t Tq, std::int64_t Tk, const std::string& label) {
  if (!context.training || rate == 0) return;
  ATTNKIT_CHECK(context.generator != nullptr, label, ": training with dropout needs a random generator");
  const std::uint64_t per_row = ops::attention_dropout_numbers(1, H, Tq, Tk);
  const std::int64_t batch_rows = context.batch_rows > 0 ? context.batch_rows : rows;
  options.dropout = rate;
  options.dropout_seed = context.generator->seed();
  options.dropout_offset = context.reserve(static_cast<std::uint64_t>(batch_rows) * per_row) +
                           static_cast<std::uint64_t>(context.shard_begin) * per_row / 4;
}

// An operand of the shape and dtype given, on `device`, for an op's *_supports (which reads no
// element of it).
Tensor placeholder(const Shape& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

}  // namespace

// ------------------------------------------------------------------ AttentionPooling

AttentionPoolingLayer::AttentionPoolingLayer(const AttentionPoolingOptions& options, std::string type)
    : Layer(std::move(type)), options_(options) {}

std::vector<Shape> AttentionPoolingLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 2);
  const Shape& x = input_shapes[0];
  ATTNKIT_CHECK(x.size() == 2 && x[0] > 0 && x[1] > 0, label(),
                ": needs inputs [steps, features] with both known (it has a bias per step), got ", shape_str(x));
  if (input_shapes.size() == 2) expect_mask(label(), input_shapes[1], x[0]);
  std::vector<Shape> out{options_.return_sequences() ? x : Shape{x[1]}};
  if (options_.return_attention()) out.push_back({x[0]});
  return out;
}

void AttentionPoolingLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  const Shape& x = input_shapes[0];
  w_ = &add_parameter("W", glorot_uniform({x[1]}, init));
  if (options_.use_bias()) b_ = &add_parameter("b", Tensor::zeros({x[0]}));
}

namespace {
ops::AdditiveAttentionOptions op_options(const AttentionPoolingOptions& o) {
  ops::AdditiveAttentionOptions options;
  options.return_sequences = o.return_sequences();
  options.epsilon = o.epsilon();
  return options;
}
}  // namespace

Tensors AttentionPoolingLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  const Tensor mask = inputs.size() > 1 ? inputs[1] : Tensor();
  ops::AdditiveAttentionResult r = ops::additive_attention(inputs[0], w_->value, b_ ? b_->value : Tensor(), mask,
                                                           op_options(options_));
  cache = r.weights;
  if (options_.return_attention()) return {r.y, r.weights};
  return {r.y};
}

Tensors AttentionPoolingLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                         const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  ops::AdditiveAttentionGrads g = ops::additive_attention_backward(
      inputs[0], w_->value, b_ ? b_->value : Tensor(), std::any_cast<const Tensor&>(cache), output_grads[0],
      op_options(options_));
  if (w_->trainable) {
    accumulate(*w_, g.dw);
    if (b_) accumulate(*b_, g.db);
  }
  Tensors grads{needs_grad[0] ? g.dx : Tensor()};
  if (inputs.size() > 1) grads.push_back(Tensor());
  return grads;
}

std::vector<ops::AttentionSupport> AttentionPoolingLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                             const std::vector<DType>& input_dtypes,
                                                                             Device device) const {
  const DType dtype = input_dtypes[0];
  return {ops::additive_attention_supports(placeholder(input_shapes[0], dtype, device),
                                           placeholder(w_->value.shape(), dtype, device),
                                           b_ ? placeholder(b_->value.shape(), dtype, device) : Tensor(), Tensor(),
                                           op_options(options_))};
}

Json AttentionPoolingLayer::options_config() const {
  return {{"return_sequences", options_.return_sequences()},
          {"epsilon", options_.epsilon()},
          {"use_bias", options_.use_bias()},
          {"return_attention", options_.return_attention()}};
}

LayerPtr AttentionPoolingLayer::from_config(const Json& config) {
  return std::make_shared<AttentionPoolingLayer>(AttentionPoolingOptions()
                                                     .return_sequences(config.at("return_sequences").get<bool>())
                                                     .epsilon(config.at("epsilon").get<double>())
                                                     .use_bias(config.at("use_bias").get<bool>())
                                                     .return_attention(config.at("return_attention").get<bool>()));
}

// ------------------------------------------------------------------ GatingAttention

GatingAttentionLayer::GatingAttentionLayer(bool over_time, bool single_vector, bool return_attention)
    : Layer(over_time ? "TemporalGatingAttention" : "GatingAttention"),
      over_time_(over_time),
      single_vector_(single_vector),
      return_attention_(return_attention) {}

std::vector<Shape> GatingAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  const Shape& x = input_shapes[0];
  if (over_time_)
    ATTNKIT_CHECK(x.size() == 2 && x[0] > 0 && x[1] > 0, label(),
                  ": needs inputs [steps, features] with both known, got ", shape_str(x));
  else
    ATTNKIT_CHECK(!x.empty() && x.back() > 0, label(), ": needs inputs with a known last axis, got ", shape_str(x));
  std::vector<Shape> out{x};
  if (return_attention_) out.push_back(x);
  return out;
}

void GatingAttentionLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  const std::int64_t n = over_time_ ? input_shapes[0][0] : input_shapes[0].back();
  kernel_ = &add_parameter("kernel", glorot_uniform({n, n}, init));
  bias_ = &add_parameter("bias", Tensor::zeros({n}));
}

Tensors GatingAttentionLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  ops::GatingResult r = over_time_
                            ? ops::temporal_gating_attention(inputs[0], kernel_->value, bias_->value, single_vector_)
                            : ops::gating_attention(inputs[0], kernel_->value, bias_->value);
  cache = r.probs;
  if (return_attention_) return {r.y, r.probs};
  return {r.y};
}

Tensors GatingAttentionLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                       const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  ops::GatingGrads g =
      over_time_ ? ops::temporal_gating_attention_backward(inputs[0], kernel_->value, bias_->value, output_grads[0],
                                                           single_vector_)
                 : ops::gating_attention_backward(inputs[0], kernel_->value, std::any_cast<const Tensor&>(cache),
                                                  output_grads[0], true);
  if (kernel_->trainable) {
    accumulate(*kernel_, g.dweight);
    accumulate(*bias_, g.dbias);
  }
  return {needs_grad[0] ? g.dx : Tensor()};
}

std::vector<ops::AttentionSupport> GatingAttentionLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                           const std::vector<DType>& input_dtypes,
                                                                           Device device) const {
  const DType dtype = input_dtypes[0];
  const Tensor x = placeholder(input_shapes[0], dtype, device);
  const Tensor kernel = placeholder(kernel_->value.shape(), dtype, device);
  const Tensor bias = bias_ ? placeholder(bias_->value.shape(), dtype, device) : Tensor();
  return {over_time_ ? ops::temporal_gating_attention_supports(x, kernel, bias, single_vector_)
                     : ops::gating_attention_supports(x, kernel, bias)};
}

Json GatingAttentionLayer::options_config() const {
  Json config{{"return_attention", return_attention_}};
  if (over_time_) config["single_vector"] = single_vector_;
  return config;
}

LayerPtr GatingAttentionLayer::from_config(const Json& config, bool over_time) {
  return std::make_shared<GatingAttentionLayer>(over_time, over_time && config.at("single_vector").get<bool>(),
                                                config.at("return_attention").get<bool>());
}

// ------------------------------------------------------------------ MultiHeadSelfAttention

MultiHeadSelfAttentionLayer::MultiHeadSelfAttentionLayer(std::int64_t num_heads, std::int64_t weights_dim,
                                                         bool causal, bool return_attention)
    : Layer("MultiHeadSelfAttention"),
      num_heads_(num_heads),
      weights_dim_(weights_dim),
      causal_(causal),
      return_attention_(return_attention) {
  ATTNKIT_CHECK(num_heads > 0 && weights_dim > 0, "MultiHeadSelfAttention: num_heads and weights_dim must be positive");
  ATTNKIT_CHECK(weights_dim % num_heads == 0, "MultiHeadSelfAttention: weights_dim = ", weights_dim,
                " must be divisible by num_heads = ", num_heads, " to split it into heads");
}

std::vector<Shape> MultiHeadSelfAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 2);
  const Shape& x = input_shapes[0];
  ATTNKIT_CHECK(x.size() == 2 && x[1] > 0, label(), ": needs inputs [steps, features] with known features, got ",
                shape_str(x));
  if (input_shapes.size() == 2) expect_mask(label(), input_shapes[1], x[0]);
  std::vector<Shape> out{x};
  if (return_attention_) out.push_back({num_heads_, x[0], x[0]});
  return out;
}

void MultiHeadSelfAttentionLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  const std::int64_t d = input_shapes[0][1], w = weights_dim_;
  query_kernel_ = &add_parameter("query/kernel", glorot_uniform({d, w}, init));
  query_bias_ = &add_parameter("query/bias", Tensor::zeros({w}));
  key_kernel_ = &add_parameter("key/kernel", glorot_uniform({d, w}, init));
  key_bias_ = &add_parameter("key/bias", Tensor::zeros({w}));
  value_kernel_ = &add_parameter("value/kernel", glorot_uniform({d, w}, init));
  value_bias_ = &add_parameter("value/bias", Tensor::zeros({w}));
  output_kernel_ = &add_parameter("output/kernel", glorot_uniform({w, d}, init));
  output_bias_ = &add_parameter("output/bias", Tensor::zeros({d}));
}

// The three projections run as one product with their kernels side by side ([d, 3 w]), the
// attention reads q, k and v in place from its result, and the backward gives their gradients
// side by side for one product back (split into the three kernels' gradients).
struct SelfAttentionCache {
  Tensor qkv_kernel;
  Tensor qkv;                      // in the attention's dtype, as the attention read it
  ops::AttentionResult attention;  // in the attention's dtype
  Tensor attended;                 // attention.out in x's dtype, the output projection's input
};

namespace {
ops::AttentionOptions sdpa_options(std::int64_t heads, bool causal, std::optional<double> scale, bool weights) {
  ops::AttentionOptions options;
  options.num_heads = heads;
  options.causal = causal;
  options.scale = scale;
  options.return_weights = weights;
  return options;
}
}  // namespace

Tensors MultiHeadSelfAttentionLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  const Tensor& x = inputs[0];
  const Tensor mask = inputs.size() > 1 ? inputs[1] : Tensor();
  SelfAttentionCache c;
  c.qkv_kernel = ops::concat({query_kernel_->value, key_kernel_->value, value_kernel_->value}, 1);
  const Tensor qkv =
      ops::linear(x, c.qkv_kernel, ops::concat({query_bias_->value, key_bias_->value, value_bias_->value}, 0));
  c.qkv = ops::cast(qkv, attention_dtype(dtype_policy(), x.dtype(), weights_dim_ / num_heads_));
  c.attention = ops::packed_self_attention(c.qkv, mask, sdpa_options(num_heads_, causal_, std::nullopt, return_attention_));
  c.attended = ops::cast(c.attention.out, x.dtype());
  Tensor y = ops::linear(c.attended, output_kernel_->value, output_bias_->value);
  Tensors out{y};
  if (return_attention_) out.push_back(ops::cast(c.attention.weights, x.dtype()));
  cache = std::move(c);
  return out;
}

Tensors MultiHeadSelfAttentionLayer::backward(const Tensors& inputs, const std::any& cache,
                                              const Tensors& output_grads, const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  const auto& c = std::any_cast<const SelfAttentionCache&>(cache);
  const Tensor& x = inputs[0];
  const Tensor mask = inputs.size() > 1 ? inputs[1] : Tensor();
  const ops::LinearGrads out = ops::linear_backward(c.attended, output_kernel_->value, output_grads[0]);
  const Tensor dqkv = ops::cast(
      ops::packed_self_attention_backward(c.qkv, mask, c.attention, ops::cast(out.dx, c.qkv.dtype()),
                                          sdpa_options(num_heads_, causal_, std::nullopt, false)),
      x.dtype());
  const ops::LinearGrads qkv = ops::linear_backward(x, c.qkv_kernel, dqkv, true, needs_grad[0]);
  if (query_kernel_->trainable) {
    const std::vector<std::int64_t> widths{weights_dim_, weights_dim_, weights_dim_};
    const std::vector<Tensor> dkernels = ops::concat_backward(qkv.dweight, widths, 1);
    const std::vector<Tensor> dbiases = ops::concat_backward(qkv.dbias, widths, 0);
    accumulate(*output_kernel_, out.dweight);
    accumulate(*output_bias_, out.dbias);
    accumulate(*query_kernel_, dkernels[0]);
    accumulate(*query_bias_, dbiases[0]);
    accumulate(*key_kernel_, dkernels[1]);
    accumulate(*key_bias_, dbiases[1]);
    accumulate(*value_kernel_, dkernels[2]);
    accumulate(*value_bias_, dbiases[2]);
  }
  Tensors grads{needs_grad[0] ? qkv.dx : Tensor()};
  if (inputs.size() > 1) grads.push_back(Tensor());
  return grads;
}

std::vector<ops::AttentionSupport> MultiHeadSelfAttentionLayer::attention_support(
    const std::vector<Shape>& input_shapes, const std::vector<DType>& input_dtypes, Device device) const {
  const Shape& x = input_shapes[0];
  const Tensor qkv = placeholder({x[0], x[1], 3 * weights_dim_},
                                 attention_dtype(dtype_policy(), input_dtypes[0], weights_dim_ / num_heads_), device);
  return {ops::packed_self_attention_supports(qkv, Tensor(),
                                              sdpa_options(num_heads_, causal_, std::nullopt, return_attention_))};
}

Json MultiHeadSelfAttentionLayer::options_config() const {
  return {{"num_heads", num_heads_},
          {"weights_dim", weights_dim_},
          {"causal", causal_},
          {"return_attention", return_attention_}};
}

LayerPtr MultiHeadSelfAttentionLayer::from_config(const Json& config) {
  return std::make_shared<MultiHeadSelfAttentionLayer>(detail::json_integer(config.at("num_heads"), "num_heads"),
                                                       detail::json_integer(config.at("weights_dim"), "weights_dim"),
                                                       config.at("causal").get<bool>(),
                                                       config.at("return_attention").get<bool>());
}

// ------------------------------------------------------------------ DotAttention

DotAttentionLayer::DotAttentionLayer(double scale, bool return_attention)
    : Layer("DotAttention"), scale_(scale), return_attention_(return_attention) {}

std::vector<Shape> DotAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 2, 3);
  const Shape& query = input_shapes[0];
  const Shape& value = input_shapes[1];
  ATTNKIT_CHECK(query.size() == 2 && value.size() == 2 && query[1] == value[1] && query[1] > 0, label(),
                ": query [Tq, D] and value [Tk, D] must share a known D, got ", shape_str(query), " and ",
                shape_str(value));
  if (input_shapes.size() == 3) expect_mask(label(), input_shapes[2], value[0]);
  std::vector<Shape> out{query};
  if (return_attention_) out.push_back({query[0], value[0]});
  return out;
}

// The query and value in the attention's dtype, as it read them, and its results.
struct DotAttentionCache {
  Tensor query, value;
  ops::AttentionResult attention;
};

Tensors DotAttentionLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  const Tensor mask = inputs.size() > 2 ? inputs[2] : Tensor();
  const DType dtype = attention_dtype(dtype_policy(), inputs[0].dtype(), inputs[0].size(-1));
  DotAttentionCache c{ops::cast(inputs[0], dtype), ops::cast(inputs[1], dtype), {}};
  c.attention = ops::scaled_dot_product_attention(c.query, c.value, c.value, mask,
                                                  sdpa_options(1, false, scale_, return_attention_));
  Tensors out{ops::cast(c.attention.out, inputs[0].dtype())};
  if (return_attention_) {
    out.push_back(one_head_weights(c.attention, inputs[0].dtype()));
  }
  cache = std::move(c);
  return out;
}

Tensors DotAttentionLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                    const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  const Tensor mask = inputs.size() > 2 ? inputs[2] : Tensor();
  const auto& c = std::any_cast<const DotAttentionCache&>(cache);
  const ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(
      c.query, c.value, c.value, mask, c.attention, ops::cast(output_grads[0], c.query.dtype()),
      sdpa_options(1, false, scale_, false));
  const DType dtype = inputs[0].dtype();
  Tensors grads{needs_grad[0] ? ops::cast(g.dq, dtype) : Tensor(),
                needs_grad[1] ? ops::add(ops::cast(g.dk, dtype), ops::cast(g.dv, dtype)) : Tensor()};
  if (inputs.size() > 2) grads.push_back(Tensor());
  return grads;
}

std::vector<ops::AttentionSupport> DotAttentionLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                        const std::vector<DType>& input_dtypes,
                                                                        Device device) const {
  const DType dtype = attention_dtype(dtype_policy(), input_dtypes[0], input_shapes[0].back());
  const Tensor query = placeholder(input_shapes[0], dtype, device), value = placeholder(input_shapes[1], dtype, device);
  return {ops::scaled_dot_product_attention_supports(query, value, value, Tensor(),
                                                     sdpa_options(1, false, scale_, return_attention_))};
}

Json DotAttentionLayer::options_config() const { return {{"scale", scale_}, {"return_attention", return_attention_}}; }

LayerPtr DotAttentionLayer::from_config(const Json& config) {
  return std::make_shared<DotAttentionLayer>(config.at("scale").get<double>(),
                                             config.at("return_attention").get<bool>());
}

// ------------------------------------------------------------------ MultiHeadAttention

MultiHeadAttentionLayer::MultiHeadAttentionLayer(std::int64_t num_heads, std::int64_t key_dim,
                                                 const MultiHeadAttentionOptions& options)
    : Layer("MultiHeadAttention"), num_heads_(num_heads), key_dim_(key_dim), options_(options) {
  ATTNKIT_CHECK(num_heads > 0 && key_dim > 0, "MultiHeadAttention: num_heads and key_dim must be positive, got ",
                num_heads, " and ", key_dim);
  ATTNKIT_CHECK(options.value_dim() >= 0 && options.output_shape() >= 0,
                "MultiHeadAttention: value_dim and output_shape must not be negative, got ", options.value_dim(),
                " and ", options.output_shape());
  ATTNKIT_CHECK(options.dropout() >= 0 && options.dropout() < 1, "MultiHeadAttention: dropout must be in [0, 1), got ",
                options.dropout());
}

std::vector<Shape> MultiHeadAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 2, 4);
  const Shape& query = input_shapes[0];
  const Shape& value = input_shapes[1];
  const Shape& key = input_shapes.size() > 2 ? input_shapes[2] : value;
  for (const Shape* x : {&query, &value, &key})
    ATTNKIT_CHECK(x->size() == 2 && (*x)[1] > 0, label(),
                  ": query, value and key must be [steps, features] with known features, got ", shape_str(*x));
  ATTNKIT_CHECK(key[0] == value[0] || key[0] < 0 || value[0] < 0, label(), ": key ", shape_str(key),
                " and value ", shape_str(value), " must have the same steps");
  if (input_shapes.size() == 4) {
    const Shape& mask = input_shapes[3];
    const bool steps_match = mask.size() == 2 ? (mask[0] == query[0] || mask[0] < 0 || query[0] < 0) &&
                                                    (mask[1] == value[0] || mask[1] < 0 || value[0] < 0)
                                              : mask.size() == 1 && (mask[0] == value[0] || mask[0] < 0 || value[0] < 0);
    ATTNKIT_CHECK(steps_match, label(), ": the mask must be [", query[0], ", ", value[0], "] (an attention mask) or [",
                  value[0], "] (the keys' padding), got ", shape_str(mask));
  }
  std::vector<Shape> out{{query[0], options_.output_shape() > 0 ? options_.output_shape() : query[1]}};
  if (options_.return_attention_scores()) out.push_back({num_heads_, query[0], value[0]});
  return out;
}

void MultiHeadAttentionLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  const std::int64_t H = num_heads_, dq = input_shapes[0][1], dv = input_shapes[1][1];
  const std::int64_t dk = input_shapes.size() > 2 ? input_shapes[2][1] : dv;
  const std::int64_t out = options_.output_shape() > 0 ? options_.output_shape() : dq;
  const auto make = [&](const std::string& name, const Shape& kernel, const Shape& bias) {
    Projection p;
    p.kernel = &add_parameter(name + "/kernel", glorot_uniform(kernel, init));
    if (options_.use_bias()) p.bias = &add_parameter(name + "/bias", Tensor::zeros(bias));
    return p;
  };
  query_ = make("query", {dq, H, key_dim_}, {H, key_dim_});
  key_ = make("key", {dk, H, key_dim_}, {H, key_dim_});
  value_ = make("value", {dv, H, value_dim()}, {H, value_dim()});
  output_ = make("attention_output", {H, value_dim(), out}, {out});
}

ops::AttentionOptions MultiHeadAttentionLayer::attention_options(bool weights) const {
  return sdpa_options(num_heads_, options_.use_causal_mask(), std::nullopt, weights);
}

DType MultiHeadAttentionLayer::attention_dtype_for(DType input) const {
  // The 16-bit kernels take q, k and v of one head dim: other value dims stay in the inputs' dtype.
  return attention_dtype(dtype_policy(), input, key_dim_ == value_dim() ? key_dim_ : 0);
}

namespace {

// x [..., in] times a kernel of Keras's shape flattened to [in, width], plus its bias.
Tensor project(const Tensor& x, const Parameter* kernel, const Parameter* bias, std::int64_t width) {
  return ops::linear(x, kernel->value.reshape({x.size(-1), width}), bias ? bias->value.reshape({width}) : Tensor());
}

// The mask input as the attention takes it: an attention mask [B, Tq, Tk], or the keys' padding.
void place_mask(const Tensor& mask, ops::AttentionOptions& options, Tensor& key_mask) {
  if (!mask.defined()) return;
  if (mask.dim() == 3)
    options.attention_mask = mask;
  else
    key_mask = mask;
}

}  // namespace

// The projections in the attention's dtype as it read them, its results, and its output in the
// inputs' dtype (the output projection's input).
struct MultiHeadAttentionCache {
  Tensor q, k, v;
  ops::AttentionOptions options;  // the attention's, its dropout among them
  ops::AttentionResult attention;
  Tensor attended;
};

Tensors MultiHeadAttentionLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  const Tensor& query = inputs[0];
  const Tensor& value = inputs[1];
  const Tensor& key = inputs.size() > 2 ? inputs[2] : value;
  const DType dtype = attention_dtype_for(query.dtype());
  const std::int64_t qk_width = num_heads_ * key_dim_, v_width = num_heads_ * value_dim();
  MultiHeadAttentionCache c;
  c.q = ops::cast(project(query, query_.kernel, query_.bias, qk_width), dtype);
  c.k = ops::cast(project(key, key_.kernel, key_.bias, qk_width), dtype);
  c.v = ops::cast(project(value, value_.kernel, value_.bias, v_width), dtype);
  ops::AttentionOptions options = attention_options(options_.return_attention_scores());
  Tensor key_mask;
  place_mask(inputs.size() > 3 ? inputs[3] : Tensor(), options, key_mask);
  add_attention_dropout(options, options_.dropout(), context, query.size(0), num_heads_, query.size(1), value.size(1),
                        label());
  c.attention = ops::scaled_dot_product_attention(c.q, c.k, c.v, key_mask, options);
  c.options = options;
  c.attended = ops::cast(c.attention.out, query.dtype());
  Tensors out{project(c.attended, output_.kernel, output_.bias, output_.kernel->value.size(2))};
  if (options_.return_attention_scores()) out.push_back(ops::cast(c.attention.weights, query.dtype()));
  cache = std::move(c);
  return out;
}

Tensors MultiHeadAttentionLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                          const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  const auto& c = std::any_cast<const MultiHeadAttentionCache&>(cache);
  const Tensor& query = inputs[0];
  const Tensor& value = inputs[1];
  const bool own_key = inputs.size() > 2;
  const Tensor& key = own_key ? inputs[2] : value;
  const std::int64_t qk_width = num_heads_ * key_dim_, v_width = num_heads_ * value_dim();
  const std::int64_t out_width = output_.kernel->value.size(2);
  const ops::LinearGrads out = ops::linear_backward(c.attended, output_.kernel->value.reshape({v_width, out_width}),
                                                    output_grads[0], output_.bias != nullptr);
  ops::AttentionOptions options = c.options;
  options.return_weights = false;
  Tensor key_mask;
  place_mask(inputs.size() > 3 ? inputs[3] : Tensor(), options, key_mask);
  const ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(
      c.q, c.k, c.v, key_mask, c.attention, ops::cast(out.dx, c.q.dtype()), options);
  const DType dtype = query.dtype();
  const bool key_needs_grad = own_key ? needs_grad[2] : needs_grad[1];
  const auto back = [&](const Tensor& x, const Projection& p, const Tensor& dy, std::int64_t width, bool needs_dx) {
    return ops::linear_backward(x, p.kernel->value.reshape({x.size(-1), width}), ops::cast(dy, dtype),
                                p.bias != nullptr, needs_dx);
  };
  const ops::LinearGrads q = back(query, query_, g.dq, qk_width, needs_grad[0]);
  const ops::LinearGrads k = back(key, key_, g.dk, qk_width, key_needs_grad);
  const ops::LinearGrads v = back(value, value_, g.dv, v_width, needs_grad[1]);
  if (query_.kernel->trainable) {
    const auto add_to = [&](const Projection& p, const ops::LinearGrads& grads) {
      accumulate(*p.kernel, grads.dweight.reshape(p.kernel->value.shape()));
      if (p.bias) accumulate(*p.bias, grads.dbias.reshape(p.bias->value.shape()));
    };
    add_to(query_, q);
    add_to(key_, k);
    add_to(value_, v);
    add_to(output_, out);
  }
  Tensors grads{q.dx, Tensor()};
  if (needs_grad[1]) grads[1] = own_key ? v.dx : ops::add(v.dx, k.dx);
  if (own_key) grads.push_back(k.dx);
  if (inputs.size() > 3) grads.push_back(Tensor());
  return grads;
}

std::vector<ops::AttentionSupport> MultiHeadAttentionLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                              const std::vector<DType>& input_dtypes,
                                                                              Device device) const {
  const DType dtype = attention_dtype_for(input_dtypes[0]);
  const std::int64_t B = input_shapes[0][0], Tq = input_shapes[0][1], Tk = input_shapes[1][1];
  const Tensor q = placeholder({B, Tq, num_heads_ * key_dim_}, dtype, device);
  const Tensor k = placeholder({B, Tk, num_heads_ * key_dim_}, dtype, device);
  const Tensor v = placeholder({B, Tk, num_heads_ * value_dim()}, dtype, device);
  ops::AttentionOptions options = attention_options(options_.return_attention_scores());
  Tensor key_mask;
  if (input_shapes.size() > 3) place_mask(placeholder(input_shapes[3], DType::u8, device), options, key_mask);
  return {ops::scaled_dot_product_attention_supports(q, k, v, key_mask, options)};
}

Json MultiHeadAttentionLayer::options_config() const {
  return {{"num_heads", num_heads_},
          {"key_dim", key_dim_},
          {"value_dim", options_.value_dim()},
          {"dropout", options_.dropout()},
          {"use_bias", options_.use_bias()},
          {"output_shape", options_.output_shape()},
          {"use_causal_mask", options_.use_causal_mask()},
          {"return_attention_scores", options_.return_attention_scores()}};
}

LayerPtr MultiHeadAttentionLayer::from_config(const Json& config) {
  return std::make_shared<MultiHeadAttentionLayer>(
      config.at("num_heads").get<std::int64_t>(), config.at("key_dim").get<std::int64_t>(),
      MultiHeadAttentionOptions()
          .value_dim(config.at("value_dim").get<std::int64_t>())
          .dropout(config.at("dropout").get<double>())
          .use_bias(config.at("use_bias").get<bool>())
          .output_shape(config.at("output_shape").get<std::int64_t>())
          .use_causal_mask(config.at("use_causal_mask").get<bool>())
          .return_attention_scores(config.at("return_attention_scores").get<bool>()));
}

// ------------------------------------------------------------------ Attention and AdditiveAttention (Keras's)

KerasAttentionLayer::KerasAttentionLayer(std::string type, Scores scores, const AttentionLayerOptions& options)
    : Layer(std::move(type)), scores_(scores), options_(options) {
  ATTNKIT_CHECK(options.dropout() >= 0 && options.dropout() < 1, this->type(), ": dropout must be in [0, 1), got ",
                options.dropout());
}

KerasAttentionLayer::Scores KerasAttentionLayer::scores_of(const std::string& score_mode) {
  ATTNKIT_CHECK(score_mode == "dot" || score_mode == "concat", "Attention: score_mode must be \"dot\" or \"concat\", got \"",
                score_mode, "\"");
  return score_mode == "dot" ? Scores::dot : Scores::concat;
}

KerasAttentionLayer::KerasAttentionLayer(const AttentionLayerOptions& options)
    : KerasAttentionLayer("Attention", scores_of(options.score_mode()), options) {}

std::shared_ptr<KerasAttentionLayer> KerasAttentionLayer::additive(const AttentionLayerOptions& options) {
  return std::shared_ptr<KerasAttentionLayer>(new KerasAttentionLayer("AdditiveAttention", Scores::additive, options));
}

std::vector<Shape> KerasAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 2, 5);
  std::size_t tensors = 0;
  while (tensors < input_shapes.size() && input_shapes[tensors].size() == 2) ++tensors;
  const std::size_t masks = input_shapes.size() - tensors;
  ATTNKIT_CHECK((tensors == 2 || tensors == 3) && masks <= 2, label(),
                ": takes query, value and optionally key ([steps, features] each), then the masks (value_mask [Tk], "
                "or query_mask [Tq] and value_mask [Tk]); got ",
                input_shapes.size(), " inputs");
  const Shape& query = input_shapes[0];
  const Shape& value = input_shapes[1];
  const Shape& key = tensors == 3 ? input_shapes[2] : value;
  ATTNKIT_CHECK(query[1] > 0 && query[1] == key[1] && value[1] > 0, label(), ": query ", shape_str(query), " and key ",
                shape_str(key), " must share a known number of features");
  ATTNKIT_CHECK(key[0] == value[0] || key[0] < 0 || value[0] < 0, label(), ": key ", shape_str(key), " and value ",
                shape_str(value), " must have the same steps");
  if (masks == 2) expect_mask(label(), input_shapes[tensors], query[0]);
  if (masks >= 1) expect_mask(label(), input_shapes.back(), value[0]);
  std::vector<Shape> out{{query[0], value[1]}};
  if (options_.return_attention_scores()) out.push_back({query[0], value[0]});
  return out;
}

void KerasAttentionLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  if (options_.use_scale())
    scale_ = scores_ == Scores::additive ? &add_parameter("scale", glorot_uniform({input_shapes[0][1]}, init))
                                         : &add_parameter("scale", Tensor::full({}, 1.0));
  if (scores_ == Scores::concat) concat_score_weight_ = &add_parameter("concat_score_weight", Tensor::full({}, 1.0));
}

KerasAttentionLayer::Call KerasAttentionLayer::parse(const Tensors& inputs) {
  std::size_t tensors = 0;
  while (tensors < inputs.size() && inputs[tensors].dim() == 3) ++tensors;
  Call c{inputs[0], inputs[1], tensors == 3 ? inputs[2] : inputs[1], Tensor(), Tensor(), tensors == 3};
  if (inputs.size() - tensors == 2) c.query_mask = inputs[tensors];
  if (inputs.size() > tensors) c.value_mask = inputs.back();
  return c;
}

DType KerasAttentionLayer::attention_dtype_for(DType input, std::int64_t qk_dim, std::int64_t v_dim) const {
  // Summed scores reach the attention as a bias, against queries and keys of one zero column.
  return attention_dtype(dtype_policy(), input, !summed() && qk_dim == v_dim ? qk_dim : 0);
}

namespace {

// x times a scalar parameter, as a product [n, 1] [1, 1] (an op on every device, whose backward
// gives the scalar's gradient).
Tensor times_scalar(const Tensor& x, const Tensor& scalar) {
  return ops::linear(x.reshape({x.numel(), 1}), scalar.reshape({1, 1})).reshape(x.shape());
}
// The gradients of times_scalar: dx, and the scalar's (shape []).
ops::LinearGrads times_scalar_backward(const Tensor& x, const Tensor& scalar, const Tensor& dy) {
  ops::LinearGrads g =
      ops::linear_backward(x.reshape({x.numel(), 1}), scalar.reshape({1, 1}), dy.reshape({dy.numel(), 1}), false);
  g.dx = g.dx.reshape(x.shape());
  g.dweight = g.dweight.reshape({});
  return g;
}

// a [...] repeated along a new last axis: [..., n]; and the sum over the last axis, its adjoint.
Tensor repeat_last(const Tensor& a, std::int64_t n) {
  Shape shape = a.shape();
  shape.push_back(1);
  return ops::linear(a.reshape(shape), Tensor::full({1, n}, 1.0, a.dtype(), a.device()));
}
Tensor sum_last(const Tensor& a) {
  Shape shape = a.shape();
  const std::int64_t n = shape.back();
  shape.pop_back();
  return ops::linear(a, Tensor::full({n, 1}, 1.0, a.dtype(), a.device())).reshape(shape);
}

// query_mask [B, Tq] (u8, on any device) as a factor of the output's rows: [B, Tq, width] of 0 and
// 1 in `dtype`, made on the host (the device ops take no bytes into floats).
Tensor row_factors(const Tensor& query_mask, std::int64_t width, DType dtype) {
  const std::vector<std::uint8_t> keep = query_mask.to(Device::cpu()).to_vector<std::uint8_t>();
  std::vector<double> factors;
  factors.reserve(keep.size() * static_cast<std::size_t>(width));
  for (const std::uint8_t k : keep) factors.insert(factors.end(), static_cast<std::size_t>(width), k != 0 ? 1.0 : 0.0);
  return Tensor::from_vector(factors, {query_mask.size(0), query_mask.size(1), width})
      .to(dtype)
      .to(query_mask.device());
}

// The factors of a one-head attention's dropout [B, Tq, Tk]: 0 where it drops a weight, 1 / (1 -
// rate') where it keeps one, made on the host (as row_factors).
Tensor dropout_factors(const ops::AttentionOptions& options, std::int64_t B, std::int64_t Tq, std::int64_t Tk,
                       DType dtype, Device device) {
  const double kept = attention_dropout_scale(attention_dropout_threshold(options.dropout));
  const std::vector<std::uint8_t> keep = ops::attention_dropout_mask(B, 1, Tq, Tk, options).to_vector<std::uint8_t>();
  std::vector<double> factors(keep.size());
  for (std::size_t e = 0; e < keep.size(); ++e) factors[e] = keep[e] != 0 ? kept : 0.0;
  return Tensor::from_vector(factors, {B, Tq, Tk}).to(dtype).to(device);
}

// Bahdanau's additive scores over the [B, Tq, Tk, D] sums q_i + k_j as Keras forms them, by ops
// that run on every device: s[b, i, j] = sum_d w_d tanh(c (q[b, i, d] + k[b, j, d])), where c is a
// scalar or 1 (undefined), and w a vector [D] (AdditiveAttention's scale), a scalar (Attention's
// concat_score_weight), or 1 (undefined).
struct SummedScores {
  Tensor x;       // q_i + k_j [B, Tq, Tk, D]
  Tensor t;       // tanh(c x)
  Tensor sum;     // sum over d of t [B, Tq, Tk], where w is a scalar
  Tensor scores;  // [B, Tq, Tk]
};
SummedScores summed_scores(const Tensor& q, const Tensor& k, const Tensor& c, const Tensor& w) {
  const std::int64_t Tq = q.size(1), Tk = k.size(1);
  SummedScores s;
  const Tensor queries = ops::transpose(repeat_last(q, Tk), 2, 3);                      // [B, Tq, Tk, D]
  const Tensor keys = ops::transpose(ops::transpose(repeat_last(k, Tq), 2, 3), 1, 2);  // [B, Tq, Tk, D]
  s.x = ops::add(queries, keys);
  s.t = ops::activation(c.defined() ? times_scalar(s.x, c) : s.x, ops::Activation::tanh);
  if (w.dim() == 1) {
    s.scores = ops::linear(s.t, w.reshape({w.numel(), 1})).reshape({q.size(0), Tq, Tk});
  } else {
    s.sum = sum_last(s.t);
    s.scores = w.defined() ? times_scalar(s.sum, w) : s.sum;
  }
  return s;
}
struct SummedScoreGrads {
  Tensor dq, dk, dc, dw;  // dc, dw undefined without c, w
};
SummedScoreGrads summed_scores_backward(const SummedScores& s, const Tensor& c, const Tensor& w, const Tensor& ds) {
  SummedScoreGrads g;
  const std::int64_t D = s.t.size(-1);
  Tensor dt;
  if (w.dim() == 1) {
    Shape column = ds.shape();
    column.push_back(1);
    const ops::LinearGrads weighted = ops::linear_backward(s.t, w.reshape({D, 1}), ds.reshape(column), false);
    dt = weighted.dx;
    g.dw = weighted.dweight.reshape({D});
  } else if (w.defined()) {
    const ops::LinearGrads weighted = times_scalar_backward(s.sum, w, ds);
    g.dw = weighted.dweight;
    dt = repeat_last(weighted.dx, D);
  } else {
    dt = repeat_last(ds, D);
  }
  Tensor dx = ops::activation_backward(s.t, dt, ops::Activation::tanh);
  if (c.defined()) {
    const ops::LinearGrads scaled = times_scalar_backward(s.x, c, dx);
    dx = scaled.dx;
    g.dc = scaled.dweight;
  }
  g.dq = sum_last(ops::transpose(dx, 2, 3));                       // [B, Tq, D, Tk] summed over the keys
  g.dk = sum_last(ops::transpose(ops::transpose(dx, 1, 2), 2, 3));  // [B, Tk, D, Tq] over the queries
  return g;
}

}  // namespace

// What the backward needs: the attention's operands as it read them (dot: the query times the
// scale; summed scores: columns of zeros, the scores coming in as its bias), its results, the
// summed scores, and the query mask's row factors (undefined without one).
struct KerasAttentionCache {
  Tensor q, k, v;
  ops::AttentionOptions options;  // the attention's, its dropout among them
  ops::AttentionResult attention;
  SummedScores summed;
  Tensor rows;
};

ops::AttentionOptions KerasAttentionLayer::attention_options(const Tensor& summed_scores, bool weights) const {
  ops::AttentionOptions options = sdpa_options(1, options_.use_causal_mask(), 1.0, weights);
  if (summed_scores.defined()) {
    const Tensor& s = summed_scores;
    options.bias = s.reshape({s.size(0), 1, s.size(1), s.size(2)});
  }
  return options;
}

Tensors KerasAttentionLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  const Call call = parse(inputs);
  const DType dtype = attention_dtype_for(call.query.dtype(), call.query.size(-1), call.value.size(-1));
  const std::int64_t B = call.query.size(0), Tq = call.query.size(1), Tk = call.value.size(1);
  const Tensor scale = scale_ ? scale_->value : Tensor();
  KerasAttentionCache c;
  if (scores_ == Scores::concat) {
    c.summed = summed_scores(call.query, call.key, scale, concat_score_weight_->value);
  } else if (scores_ == Scores::additive) {
    c.summed = summed_scores(call.query, call.key, Tensor(), scale);
  } else {
    c.q = ops::cast(scale_ ? times_scalar(call.query, scale) : call.query, dtype);
    c.k = ops::cast(call.key, dtype);
  }
  if (summed()) {
    c.q = Tensor::zeros({B, Tq, 1}, dtype, call.query.device());
    c.k = Tensor::zeros({B, Tk, 1}, dtype, call.query.device());
  }
  c.v = ops::cast(call.value, dtype);
  c.options = attention_options(c.summed.scores, options_.return_attention_scores());
  add_attention_dropout(c.options, options_.dropout(), context, B, 1, Tq, Tk, label());
  c.attention = ops::scaled_dot_product_attention(c.q, c.k, c.v, call.value_mask, c.options);
  Tensor out = ops::cast(c.attention.out, call.query.dtype());
  if (call.query_mask.defined()) {
    c.rows = row_factors(call.query_mask, out.size(-1), out.dtype());
    out = ops::multiply(out, c.rows);
  }
  Tensors outputs{out};
  if (options_.return_attention_scores()) {
    Tensor weights = one_head_weights(c.attention, call.query.dtype());
    if (c.options.dropout > 0)  // Keras's Attention returns them after dropout
      weights = ops::multiply(weights, dropout_factors(c.options, B, Tq, Tk, weights.dtype(), weights.device()));
    outputs.push_back(weights);
  }
  cache = std::move(c);
  return outputs;
}

Tensors KerasAttentionLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                      const std::vector<bool>& needs_grad) {
  refuse_weight_gradient(label(), output_grads);
  const Call call = parse(inputs);
  const auto& c = std::any_cast<const KerasAttentionCache&>(cache);
  const Tensor dout = c.rows.defined() ? ops::multiply(output_grads[0], c.rows) : output_grads[0];
  ops::AttentionOptions options = c.options;
  options.return_weights = false;
  options.bias_grad = summed();
  const ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(
      c.q, c.k, c.v, call.value_mask, c.attention, ops::cast(dout, c.q.dtype()), options);
  const DType dtype = call.query.dtype();
  const Tensor scale = scale_ ? scale_->value : Tensor();
  Tensor dquery, dkey;
  if (summed()) {
    const Tensor ds = g.dbias.reshape(c.summed.scores.shape());
    const bool concat = scores_ == Scores::concat;
    const SummedScoreGrads s = concat ? summed_scores_backward(c.summed, scale, concat_score_weight_->value, ds)
                                      : summed_scores_backward(c.summed, Tensor(), scale, ds);
    dquery = s.dq, dkey = s.dk;
    if (concat && concat_score_weight_->trainable) accumulate(*concat_score_weight_, s.dw);
    if (scale_ && scale_->trainable) accumulate(*scale_, concat ? s.dc : s.dw);
  } else {
    dquery = ops::cast(g.dq, dtype), dkey = ops::cast(g.dk, dtype);
    if (scale_) {
      const ops::LinearGrads scaled = times_scalar_backward(call.query, scale, dquery);
      if (scale_->trainable) accumulate(*scale_, scaled.dweight);
      dquery = scaled.dx;
    }
  }
  const Tensor dvalue = ops::cast(g.dv, dtype);
  Tensors grads{needs_grad[0] ? dquery : Tensor(), Tensor()};
  if (needs_grad[1]) grads[1] = call.own_key ? dvalue : ops::add(dvalue, dkey);
  if (call.own_key) grads.push_back(needs_grad[2] ? dkey : Tensor());
  while (grads.size() < inputs.size()) grads.push_back(Tensor());  // the masks
  return grads;
}

std::vector<ops::AttentionSupport> KerasAttentionLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                          const std::vector<DType>& input_dtypes,
                                                                          Device device) const {
  const Shape& query = input_shapes[0];
  const Shape& value = input_shapes[1];
  const Shape& key = input_shapes.size() > 2 && input_shapes[2].size() == 3 ? input_shapes[2] : value;
  const DType dtype = attention_dtype_for(input_dtypes[0], query.back(), value.back());
  const Tensor v = placeholder(value, dtype, device);
  if (!summed())
    return {ops::scaled_dot_product_attention_supports(placeholder(query, dtype, device), placeholder(key, dtype, device),
                                                       v, Tensor(), attention_options(Tensor(), options_.return_attention_scores()))};
  const Tensor scores = placeholder({query[0], query[1], value[1]}, dtype, device);
  return {ops::scaled_dot_product_attention_supports(placeholder({query[0], query[1], 1}, dtype, device),
                                                     placeholder({value[0], value[1], 1}, dtype, device), v, Tensor(),
                                                     attention_options(scores, options_.return_attention_scores()))};
}

Json KerasAttentionLayer::options_config() const {
  return {{"use_scale", options_.use_scale()},
          {"score_mode", options_.score_mode()},
          {"dropout", options_.dropout()},
          {"use_causal_mask", options_.use_causal_mask()},
          {"return_attention_scores", options_.return_attention_scores()}};
}

LayerPtr KerasAttentionLayer::from_config(const Json& config) {
  return std::make_shared<KerasAttentionLayer>(AttentionLayerOptions()
                                                   .use_scale(config.at("use_scale").get<bool>())
                                                   .score_mode(config.at("score_mode").get<std::string>())
                                                   .dropout(config.at("dropout").get<double>())
                                                   .use_causal_mask(config.at("use_causal_mask").get<bool>())
                                                   .return_attention_scores(
                                                       config.at("return_attention_scores").get<bool>()));
}

// ------------------------------------------------------------------ AdditiveAttention's two forms

AdditiveAttentionLayer::AdditiveAttentionLayer(const AdditiveAttentionOptions& options)
    : Layer("AdditiveAttention"), options_(options) {}

Layer& AdditiveAttentionLayer::form_for(const std::vector<Shape>& input_shapes) const {
  // One input, or an input and its mask [T]: the pooling; else query, value (and key, masks).
  const bool pooling = input_shapes.size() == 1 || (input_shapes.size() == 2 && input_shapes[1].size() == 1);
  const AdditiveAttentionOptions& o = options_;
  const AdditiveAttentionOptions defaults;
  if (form_ == nullptr) {
    if (pooling) {
      ATTNKIT_CHECK(o.use_scale() == defaults.use_scale() && o.dropout() == defaults.dropout() &&
                        o.use_causal_mask() == defaults.use_causal_mask() &&
                        o.return_attention_scores() == defaults.return_attention_scores(),
                    label(), ": called on one input, it is AttentionPooling, which takes none of use_scale, dropout, "
                    "use_causal_mask and return_attention_scores (those are for a call on query and value)");
      form_ = std::make_shared<AttentionPoolingLayer>(AttentionPoolingOptions()
                                                          .return_sequences(o.return_sequences())
                                                          .epsilon(o.epsilon())
                                                          .use_bias(o.use_bias())
                                                          .return_attention(o.return_attention()),
                                                      "AdditiveAttention");
    } else {
      ATTNKIT_CHECK(o.return_sequences() == defaults.return_sequences() && o.epsilon() == defaults.epsilon() &&
                        o.use_bias() == defaults.use_bias() && o.return_attention() == defaults.return_attention(),
                    label(), ": called on query and value, it is Keras's AdditiveAttention, which takes none of "
                    "return_sequences, epsilon, use_bias and return_attention (those are for a call on one input)");
      form_ = KerasAttentionLayer::additive(AttentionLayerOptions()
                                                .use_scale(o.use_scale())
                                                .dropout(o.dropout())
                                                .use_causal_mask(o.use_causal_mask())
                                                .return_attention_scores(o.return_attention_scores()));
    }
    pooling_ = pooling;
    form_->set_dtype_policy(dtype_policy());
    form_->set_trainable(trainable());
  }
  ATTNKIT_CHECK(pooling == pooling_, label(), ": first called on ",
                pooling_ ? "one input (pooling)" : "query and value (Bahdanau's attention)", ", it cannot be called on ",
                pooling ? "one input" : "query and value", " too");
  return *form_;
}

Layer& AdditiveAttentionLayer::built_form() const {
  ATTNKIT_CHECK(form_ != nullptr, label(), " is not built: it takes its form from its first call");
  return *form_;
}

std::vector<Shape> AdditiveAttentionLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  return form_for(input_shapes).output_shapes(input_shapes);
}

void AdditiveAttentionLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  form_for(input_shapes).build(input_shapes, init);
}

std::vector<Layer*> AdditiveAttentionLayer::children() const {
  if (form_ == nullptr) return {};
  return {form_.get()};
}

Tensors AdditiveAttentionLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  return built_form().forward(inputs, context, cache);
}

Tensors AdditiveAttentionLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                         const std::vector<bool>& needs_grad) {
  return built_form().backward(inputs, cache, output_grads, needs_grad);
}

std::vector<ops::AttentionSupport> AdditiveAttentionLayer::attention_support(const std::vector<Shape>& input_shapes,
                                                                             const std::vector<DType>& input_dtypes,
                                                                             Device device) const {
  return built_form().attention_support(input_shapes, input_dtypes, device);
}

Json AdditiveAttentionLayer::options_config() const {
  return {{"use_scale", options_.use_scale()},
          {"dropout", options_.dropout()},
          {"use_causal_mask", options_.use_causal_mask()},
          {"return_attention_scores", options_.return_attention_scores()},
          {"return_sequences", options_.return_sequences()},
          {"epsilon", options_.epsilon()},
          {"use_bias", options_.use_bias()},
          {"return_attention", options_.return_attention()}};
}

LayerPtr AdditiveAttentionLayer::from_config(const Json& config) {
  // Configs saved before the query-and-value form existed hold the pooling's options alone.
  const AdditiveAttentionOptions defaults;
  return std::make_shared<AdditiveAttentionLayer>(
      AdditiveAttentionOptions()
          .use_scale(config.value("use_scale", defaults.use_scale()))
          .dropout(config.value("dropout", defaults.dropout()))
          .use_causal_mask(config.value("use_causal_mask", defaults.use_causal_mask()))
          .return_attention_scores(config.value("return_attention_scores", defaults.return_attention_scores()))
          .return_sequences(config.at("return_sequences").get<bool>())
          .epsilon(config.at("epsilon").get<double>())
          .use_bias(config.at("use_bias").get<bool>())
          .return_attention(config.at("return_attention").get<bool>()));
}

// ------------------------------------------------------------------ factories

LayerRef AttentionPooling(const AttentionPoolingOptions& options) {
  return LayerRef(std::make_shared<AttentionPoolingLayer>(options));
}
LayerRef GatingAttention(bool return_attention) {
  return LayerRef(std::make_shared<GatingAttentionLayer>(false, false, return_attention));
}
LayerRef TemporalGatingAttention(bool single_vector, bool return_attention) {
  return LayerRef(std::make_shared<GatingAttentionLayer>(true, single_vector, return_attention));
}
LayerRef MultiHeadSelfAttention(std::int64_t num_heads, std::int64_t weights_dim, bool causal, bool return_attention) {
  return LayerRef(std::make_shared<MultiHeadSelfAttentionLayer>(num_heads, weights_dim, causal, return_attention));
}
LayerRef DotAttention(double scale, bool return_attention) {
  return LayerRef(std::make_shared<DotAttentionLayer>(scale, return_attention));
}
LayerRef MultiHeadAttention(std::int64_t num_heads, std::int64_t key_dim, const MultiHeadAttentionOptions& options) {
  return LayerRef(std::make_shared<MultiHeadAttentionLayer>(num_heads, key_dim, options));
}
LayerRef Attention(const AttentionLayerOptions& options) {
  return LayerRef(std::make_shared<KerasAttentionLayer>(options));
}
LayerRef AdditiveAttention(const AdditiveAttentionOptions& options) {
  return LayerRef(std::make_shared<AdditiveAttentionLayer>(options));
}

}  // namespace attnkit::layers
