// Internal: the concrete layer classes behind the factories of attnkit/layers.h.
//
// Each class holds its options, checks its inputs in output_shapes(), creates its parameters in
// create_parameters(), and calls the ops in forward() and backward(); options_config() lists the
// options for config() and the static from_config() beside it reads them back (the classes behind
// several types, such as RecurrentLayer, are also told which); registry.cpp maps each type name to
// its from_config and restores the dtype policy that config() records for every layer.
#pragma once

#include <string>

#include "attnkit/layer.h"
#include "attnkit/layers.h"
#include "attnkit/ops/conv.h"
#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/recurrent.h"

namespace attnkit::layers {

#define ATTNKIT_LAYER_METHODS                                                                      \
  std::vector<Shape> output_shapes(const std::vector<Shape>& input_shapes) const override;        \
  Tensors forward(const Tensors& inputs, const CallContext& context, std::any& cache) override;   \
  Tensors backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,      \
                   const std::vector<bool>& needs_grad) override;                                  \
  Json options_config() const override

class InputLayer : public Layer {
 public:
  InputLayer(Shape shape, DType dtype, std::string name);
  static LayerPtr from_config(const Json& config);
  std::vector<DType> output_dtypes(const std::vector<DType>&) const override { return {dtype_}; }
  ATTNKIT_LAYER_METHODS;

 private:
  Shape shape_;
  DType dtype_;
};

// ---------------------------------------------------------------- core (core.cpp)

class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(std::int64_t input_dim, std::int64_t output_dim);
  static LayerPtr from_config(const Json& config);
  std::vector<DType> output_dtypes(const std::vector<DType>& input_dtypes) const override;
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>&, Generator& init) override;

 private:
  std::int64_t input_dim_, output_dim_;
  Parameter* embeddings_ = nullptr;
};

class PositionEmbeddingLayer : public Layer {
 public:
  PositionEmbeddingLayer();
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  Parameter* embeddings_ = nullptr;
};

class DenseLayer : public Layer {
 public:
  DenseLayer(std::int64_t units, ops::Activation activation, bool use_bias);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  std::int64_t units_;
  ops::Activation activation_;
  bool use_bias_;
  Parameter* kernel_ = nullptr;
  Parameter* bias_ = nullptr;
};

class DropoutLayer : public Layer {
 public:
  explicit DropoutLayer(double rate);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 private:
  double rate_;
};

class FlattenLayer : public Layer {
 public:
  FlattenLayer();
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
};

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(ops::Activation activation);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 private:
  ops::Activation activation_;
};

class ConcatenateLayer : public Layer {
 public:
  explicit ConcatenateLayer(std::int64_t axis);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 private:
  std::int64_t axis_;  // Keras's: counts the batch axis, negative from the end
};

// Multiply and Add: elementwise over several inputs of one shape.
class MergeLayer : public Layer {
 public:
  explicit MergeLayer(bool multiply);
  static LayerPtr from_config(const Json& config, bool multiply);
  ATTNKIT_LAYER_METHODS;

 private:
  bool multiply_;
};

class PaddingMaskLayer : public Layer {
 public:
  PaddingMaskLayer();
  static LayerPtr from_config(const Json& config);
  std::vector<DType> output_dtypes(const std::vector<DType>& input_dtypes) const override;
  ATTNKIT_LAYER_METHODS;
};

// ---------------------------------------------------------------- convolution (conv.cpp)

class Conv1DLayer : public Layer {
 public:
  Conv1DLayer(std::int64_t filters, std::int64_t kernel_size, ops::Padding padding,
              ops::Activation activation, bool use_bias);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  std::int64_t filters_, kernel_size_;
  ops::Padding padding_;
  ops::Activation activation_;
  bool use_bias_;
  Parameter* kernel_ = nullptr;
  Parameter* bias_ = nullptr;
};

class MaxPooling1DLayer : public Layer {
 public:
  MaxPooling1DLayer(std::int64_t pool_size, std::int64_t strides, ops::Padding padding);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 private:
  std::int64_t pool_size_, strides_;
  ops::Padding padding_;
};

// GlobalMaxPooling1D and GlobalAveragePooling1D: [T, C] -> [C].
class GlobalPooling1DLayer : public Layer {
 public:
  explicit GlobalPooling1DLayer(bool average);
  static LayerPtr from_config(const Json& config, bool average);
  ATTNKIT_LAYER_METHODS;

 private:
  bool average_;
};

// ---------------------------------------------------------------- recurrent (recurrent.cpp)

class RecurrentLayer : public Layer {
 public:
  RecurrentLayer(ops::RecurrentCell cell, std::int64_t units, const RecurrentOptions& options);
  static std::shared_ptr<RecurrentLayer> from_config(const Json& config, ops::RecurrentCell cell);
  ATTNKIT_LAYER_METHODS;
  ops::RecurrentCell cell() const { return cell_; }
  std::int64_t units() const { return units_; }
  const RecurrentOptions& options() const { return options_; }

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  std::size_t state_count() const { return cell_ == ops::RecurrentCell::lstm ? 2 : 1; }
  ops::RecurrentCell cell_;
  std::int64_t units_;
  RecurrentOptions options_;
  Parameter* kernel_ = nullptr;
  Parameter* recurrent_kernel_ = nullptr;
  Parameter* bias_ = nullptr;
};

class BidirectionalLayer : public Layer {
 public:
  explicit BidirectionalLayer(std::shared_ptr<RecurrentLayer> forward_layer);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;
  std::vector<Layer*> children() const override { return {forward_.get(), backward_.get()}; }

 private:
  std::shared_ptr<RecurrentLayer> forward_, backward_;
};

// ---------------------------------------------------------------- normalisation (norm.cpp)

class BatchNormalizationLayer : public Layer {
 public:
  BatchNormalizationLayer(double momentum, double epsilon);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  double momentum_, epsilon_;
  Parameter *gamma_ = nullptr, *beta_ = nullptr, *moving_mean_ = nullptr, *moving_variance_ = nullptr;
};

class LayerNormalizationLayer : public Layer {
 public:
  explicit LayerNormalizationLayer(double epsilon);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  double epsilon_;
  Parameter *gamma_ = nullptr, *beta_ = nullptr;
};

// ---------------------------------------------------------------- attention (attention.cpp)

#define ATTNKIT_ATTENTION_SUPPORT                                                                         \
  std::vector<ops::AttentionSupport> attention_support(const std::vector<Shape>& input_shapes,            \
                                                       const std::vector<DType>& input_dtypes, Device device) \
      const override

// The blog's tanh pooling; `type` is "AttentionPooling", or "AdditiveAttention" for that
// layer's one-input form.
class AttentionPoolingLayer : public Layer {
 public:
  explicit AttentionPoolingLayer(const AttentionPoolingOptions& options, std::string type = "AttentionPooling");
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  AttentionPoolingOptions options_;
  Parameter *w_ = nullptr, *b_ = nullptr;
};

// Gating over features (seed 000) or over time (seed 003).
class GatingAttentionLayer : public Layer {
 public:
  GatingAttentionLayer(bool over_time, bool single_vector, bool return_attention);
  static LayerPtr from_config(const Json& config, bool over_time);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  bool over_time_, single_vector_, return_attention_;
  Parameter *kernel_ = nullptr, *bias_ = nullptr;
};

class MultiHeadSelfAttentionLayer : public Layer {
 public:
  MultiHeadSelfAttentionLayer(std::int64_t num_heads, std::int64_t weights_dim, bool causal,
                              bool return_attention);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  std::int64_t num_heads_, weights_dim_;
  bool causal_, return_attention_;
  Parameter *query_kernel_ = nullptr, *query_bias_ = nullptr, *key_kernel_ = nullptr,
            *key_bias_ = nullptr, *value_kernel_ = nullptr, *value_bias_ = nullptr,
            *output_kernel_ = nullptr, *output_bias_ = nullptr;
};

class DotAttentionLayer : public Layer {
 public:
  DotAttentionLayer(double scale, bool return_attention);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 private:
  double scale_;
  bool return_attention_;
};

// Keras 3's MultiHeadAttention.
class MultiHeadAttentionLayer : public Layer {
 public:
  MultiHeadAttentionLayer(std::int64_t num_heads, std::int64_t key_dim, const MultiHeadAttentionOptions& options);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  struct Projection {  // a kernel [in, H, dim] (or [H, dim, out]) and its bias, or null
    Parameter *kernel = nullptr, *bias = nullptr;
  };
  std::int64_t value_dim() const { return options_.value_dim() > 0 ? options_.value_dim() : key_dim_; }
  // The attention's options and operands' dtype for inputs of this dtype (mixed precision).
  ops::AttentionOptions attention_options(bool weights) const;
  DType attention_dtype_for(DType input) const;

  std::int64_t num_heads_, key_dim_;
  MultiHeadAttentionOptions options_;
  Projection query_, key_, value_, output_;
};

// Keras 3's Attention (Luong's dot-product scores, or Bahdanau's as "concat"), and the
// query-and-value form of Keras's AdditiveAttention (Bahdanau's scores with a scale per feature).
class KerasAttentionLayer : public Layer {
 public:
  explicit KerasAttentionLayer(const AttentionLayerOptions& options);  // Attention
  // AdditiveAttention's form on query and value (its dropout and masks as Attention's options).
  static std::shared_ptr<KerasAttentionLayer> additive(const AttentionLayerOptions& options);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;

 private:
  // dot: query key^T; concat: w sum_d tanh(c (q_d + k_d)) with scalars w and c; additive:
  // sum_d w_d tanh(q_d + k_d) with w [D].
  enum class Scores { dot, concat, additive };
  KerasAttentionLayer(std::string type, Scores scores, const AttentionLayerOptions& options);
  static Scores scores_of(const std::string& score_mode);  // Attention's "dot" or "concat"
  // The inputs of a call: query, value, key (value when not given), query_mask, value_mask.
  struct Call {
    Tensor query, value, key, query_mask, value_mask;
    bool own_key;
  };
  static Call parse(const Tensors& inputs);
  bool summed() const { return scores_ != Scores::dot; }  // the scores come in as the attention's bias
  DType attention_dtype_for(DType input, std::int64_t qk_dim, std::int64_t v_dim) const;
  // The attention's options; with summed scores [B, Tq, Tk], they come in as its bias.
  ops::AttentionOptions attention_options(const Tensor& summed_scores, bool weights) const;

  Scores scores_;
  AttentionLayerOptions options_;
  Parameter* scale_ = nullptr;                // use_scale: [] (dot, concat: c) or [D] (additive: w)
  Parameter* concat_score_weight_ = nullptr;  // concat: w
};

// Keras's AdditiveAttention on query and value, or AttentionPooling on one input: the form is
// taken from the first call (AdditiveAttentionLayer's one child, whose parameters it lists as
// its own).
class AdditiveAttentionLayer : public Layer {
 public:
  explicit AdditiveAttentionLayer(const AdditiveAttentionOptions& options);
  static LayerPtr from_config(const Json& config);
  ATTNKIT_LAYER_METHODS;
  ATTNKIT_ATTENTION_SUPPORT;

 protected:
  void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) override;
  std::vector<Layer*> children() const override;

 private:
  // The form for a call on inputs of these shapes, made at the first (an error when a later call
  // has the other form); the one made, for the computations.
  Layer& form_for(const std::vector<Shape>& input_shapes) const;
  Layer& built_form() const;

  AdditiveAttentionOptions options_;
  // Made by the first output_shapes() or build(), unnamed.
  mutable std::shared_ptr<Layer> form_;
  mutable bool pooling_ = false;
};

#undef ATTNKIT_LAYER_METHODS
#undef ATTNKIT_ATTENTION_SUPPORT

// Makes a layer of type `type` (Layer::type()) from its config(), for loading saved models; an
// unknown type is an error that lists the known ones.
LayerPtr make_layer(const std::string& type, const Json& config);
// Every type make_layer knows, in alphabetical order.
std::vector<std::string> layer_types();

}  // namespace attnkit::layers
