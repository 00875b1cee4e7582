// attnkit/layers.h: the layers, made by factory functions named as in Keras.
//
// Each factory returns a LayerRef to call on symbolic tensors (layer.h). Shapes below leave out
// the batch axis; parameter initialisation is Keras's: glorot_uniform kernels, orthogonal
// recurrent kernels, zero biases (an LSTM's forget-gate bias 1), embeddings uniform(-0.05, 0.05).
// A layer takes the global dtype policy when it is made (mixed_precision.h): under
// mixed_bfloat16, MultiHeadSelfAttention and DotAttention compute their attention in bf16 and
// every other layer stays f32; weights and outputs are f32 under every policy.
//
//   layer                         inputs -> outputs                     parameters
//   Embedding(V, E)               ids [T] i32 -> [T, E]                  embeddings [V, E]
//   PositionEmbedding()           [T, D] -> [T, D] plus a learned vector per step   embeddings [T, D]
//   Dense(units, activation)      [..., in] -> [..., units]              kernel [in, units], bias
//   Dropout(rate)                 x -> x (training only, Philox mask)
//   Flatten()                     [d1, d2, ...] -> [d1 * d2 * ...]
//   Activation(name)              x -> f(x)
//   Conv1D(f, k, padding, act)    [T, C] -> [T', f]                      kernel [k, C, f], bias
//   MaxPooling1D(pool, strides)   [T, C] -> [T', C]
//   GlobalMaxPooling1D()          [T, C] -> [C]
//   GlobalAveragePooling1D()      [T, C] -> [C]
//   SimpleRNN/LSTM/GRU(units)     [T, I] (+ initial states) -> [T, units] or [units]
//                                 (+ final states with return_state)    kernel, recurrent_kernel, bias
//   Bidirectional(rnn)            [T, I] -> forward and backward outputs concatenated
//   Concatenate(axis)             several -> joined along axis
//   Multiply(), Add()             several of one shape -> elementwise product / sum
//   BatchNormalization()          [..., C] -> [..., C]                   gamma, beta, moving mean/var
//   LayerNormalization()          [..., C] -> [..., C]                   gamma, beta
//   PaddingMask()                 ids [T] i32 -> mask [T] u8 (id != 0)
//   AttentionPooling()            [T, D] (+ mask [T]) -> [D] or [T, D]   W [D], b [T]
//                                 (+ weights [T] with return_attention)
//   GatingAttention()             [..., D] -> [..., D]                   kernel [D, D], bias [D]
//                                 (+ probs with return_attention)
//   TemporalGatingAttention()     [T, D] -> [T, D]                       kernel [T, T], bias [T]
//                                 (+ probs [T, D] with return_attention)
//   MultiHeadSelfAttention(h, w)  [T, D] (+ key mask [T]) -> [T, D]      query, key, value [D, w] and
//                                 (+ weights [h, T, T])                 output [w, D] kernels, biases
//   DotAttention()                query [Tq, D], value [Tk, D] (+ mask [Tk]) -> context [Tq, D]
//                                 (+ weights [Tq, Tk])
//   MultiHeadAttention(h, k)      query [Tq, Dq], value [Tk, Dv] (+ key [Tk, Dk], + mask [Tq, Tk]
//                                 or [Tk]) -> [Tq, out] (+ scores [h, Tq, Tk])
//                                 query, key, value and attention_output kernels and biases
//   Attention()                   query [Tq, D], value [Tk, Dv] (+ key [Tk, D], + masks [Tq]     scale [] (use_scale),
//                                 and [Tk]) -> [Tq, Dv] (+ scores [Tq, Tk])                concat_score_weight []
//   AdditiveAttention()           as Attention (Bahdanau's scores)       scale [D] (use_scale)
//                                 or, called on one input, AttentionPooling
#pragma once

#include <optional>
#include <string>

#include "attnkit/layer.h"

namespace attnkit::layers {

LayerRef Embedding(std::int64_t input_dim, std::int64_t output_dim);
// Adds a learned vector to each position (the Keras Transformer example's position embedding).
LayerRef PositionEmbedding();
LayerRef Dense(std::int64_t units, const std::string& activation = "linear", bool use_bias = true);
LayerRef Dropout(double rate);
LayerRef Flatten();
LayerRef Activation(const std::string& activation);

LayerRef Conv1D(std::int64_t filters, std::int64_t kernel_size, const std::string& padding = "valid",
                const std::string& activation = "linear", bool use_bias = true);
// strides 0 means strides = pool_size.
LayerRef MaxPooling1D(std::int64_t pool_size = 2, std::int64_t strides = 0,
                      const std::string& padding = "valid");
LayerRef GlobalMaxPooling1D();
LayerRef GlobalAveragePooling1D();

struct RecurrentOptions {
  ATTNKIT_ARG(bool, return_sequences) = false;
  // Also return the final state(s): [output, h] (SimpleRNN, GRU) or [output, h, c] (LSTM).
  ATTNKIT_ARG(bool, return_state) = false;
  ATTNKIT_ARG(bool, go_backwards) = false;
  // GRU only: Keras 2's default (TensorFlow 2) applies the reset gate after the product.
  ATTNKIT_ARG(bool, reset_after) = true;
};
// Inputs: x, or {x, h0} ({x, h0, c0} for LSTM) for Keras's initial_state.
LayerRef SimpleRNN(std::int64_t units, const RecurrentOptions& options = {});
LayerRef LSTM(std::int64_t units, const RecurrentOptions& options = {});
LayerRef GRU(std::int64_t units, const RecurrentOptions& options = {});
// Wraps a SimpleRNN, LSTM or GRU: a forward copy and a go_backwards copy, outputs concatenated
// on the last axis (the backward sequence reversed into time order first, as Keras does).
LayerRef Bidirectional(const LayerRef& recurrent);

LayerRef Concatenate(std::int64_t axis = -1);
LayerRef Multiply();
LayerRef Add();

LayerRef BatchNormalization(double momentum = 0.99, double epsilon = 1e-3);
LayerRef LayerNormalization(double epsilon = 1e-3);

LayerRef PaddingMask();

struct AttentionPoolingOptions {
  ATTNKIT_ARG(bool, return_sequences) = false;
  // Seed 000 divides by sum + K.epsilon(); 0 gives seed 001's softmax.
  ATTNKIT_ARG(double, epsilon) = 1e-7;
  ATTNKIT_ARG(bool, use_bias) = true;
  ATTNKIT_ARG(bool, return_attention) = false;
};
// Seed 000's Attention(step_dim) and seed 001's Attention, the additive tanh-softmax pooling of
// ops/attention.h (1.): needs a known number of steps.
LayerRef AttentionPooling(const AttentionPoolingOptions& options = {});

// Seed 000's Dense(D, softmax) followed by Multiply, fused.
LayerRef GatingAttention(bool return_attention = false);
// Seed 003's attention_3d_block: a Dense(T, softmax) over time for every feature.
LayerRef TemporalGatingAttention(bool single_vector = false, bool return_attention = false);

// Seed 004's MultiHeadSelfAttention(num_heads, weights_dim): an error when weights_dim is not
// divisible by num_heads.
LayerRef MultiHeadSelfAttention(std::int64_t num_heads = 8, std::int64_t weights_dim = 64,
                                bool causal = false, bool return_attention = false);

// Luong's dot attention of seed 002: softmax(scale query value^T) value.
LayerRef DotAttention(double scale = 1.0, bool return_attention = false);

// Keras 3's MultiHeadAttention(num_heads, key_dim, ...), called on {query, value}, {query, value,
// key} or {query, value, key, mask}: query [Tq, Dq], value [Tk, Dv], key [Tk, Dk] (value when not
// given: pass value again to give a mask without a key), mask u8 [Tq, Tk] (Keras's
// attention_mask: 0 hides key j from query i) or u8 [Tk] (a padding mask of the keys). Output
// [Tq, output_shape or Dq], and with return_attention_scores the scores [H, Tq, Tk]. The
// projections' kernels have Keras's shapes: query/kernel [Dq, H, key_dim], query/bias
// [H, key_dim], key/..., value/kernel [Dv, H, value_dim], attention_output/kernel
// [H, value_dim, out], attention_output/bias [out]. The scores are scaled by 1 / sqrt(key_dim).
// A query that sees no key gets 0 (Keras gives it the mean of the values). dropout: in training,
// the attention's probabilities dropped at that rate inside the fused kernels (ops/attention.h);
// the returned scores are those before dropout, as Keras returns them.
struct MultiHeadAttentionOptions {
  ATTNKIT_ARG(std::int64_t, value_dim) = 0;     // 0: key_dim
  ATTNKIT_ARG(double, dropout) = 0.0;
  ATTNKIT_ARG(bool, use_bias) = true;
  ATTNKIT_ARG(std::int64_t, output_shape) = 0;  // 0: the query's features
  ATTNKIT_ARG(bool, use_causal_mask) = false;
  ATTNKIT_ARG(bool, return_attention_scores) = false;
};
LayerRef MultiHeadAttention(std::int64_t num_heads, std::int64_t key_dim, const MultiHeadAttentionOptions& options = {});

// Keras 3's Attention (Luong's dot-product attention), called on {query, value} or {query, value,
// key}, then the masks: one [Tk] (value_mask), or two, [Tq] and [Tk] (query_mask, value_mask).
// query [Tq, D], key [Tk, D] (value when not given), value [Tk, Dv]. Scores: score_mode "dot",
// query key^T, times a learned scalar `scale` (initialised to 1) with use_scale; "concat"
// (Bahdanau's form), concat_score_weight sum_d tanh(scale (query_d + key_d)), both scalars
// learned (scale only with use_scale). Softmax over the keys that the value mask (and
// use_causal_mask) leave; output [Tq, Dv] = weights value, times query_mask along its rows; with
// return_attention_scores also the weights [Tq, Tk]. A query that sees no key gets 0 (Keras's
// large negative bias would give it the mean of the values). dropout: in training, the weights
// dropped at that rate inside the fused kernels (ops/attention.h); the returned weights are those
// after dropout, as Keras returns them.
struct AttentionLayerOptions {
  ATTNKIT_ARG(bool, use_scale) = false;
  ATTNKIT_ARG(std::string, score_mode) = "dot";
  ATTNKIT_ARG(double, dropout) = 0.0;
  ATTNKIT_ARG(bool, use_causal_mask) = false;
  ATTNKIT_ARG(bool, return_attention_scores) = false;
};
LayerRef Attention(const AttentionLayerOptions& options = {});

// Keras 3's AdditiveAttention (Bahdanau's attention), called as Attention is: scores
// sum_d scale_d tanh(query_d + key_d), scale [D] learned (glorot_uniform) with use_scale, else 1.
// Called on one input ([T, D], with or without a mask [T]) it is AttentionPooling, the name this
// layer had before Keras's took it: code and saved models of that time keep working. Each form
// refuses the other's options when they are not their defaults.
struct AdditiveAttentionOptions {
  // Keras's, for the query-and-value form.
  ATTNKIT_ARG(bool, use_scale) = true;
  ATTNKIT_ARG(double, dropout) = 0.0;
  ATTNKIT_ARG(bool, use_causal_mask) = false;
  ATTNKIT_ARG(bool, return_attention_scores) = false;
  // AttentionPoolingOptions', for the one-input form.
  ATTNKIT_ARG(bool, return_sequences) = false;
  ATTNKIT_ARG(double, epsilon) = 1e-7;
  ATTNKIT_ARG(bool, use_bias) = true;
  ATTNKIT_ARG(bool, return_attention) = false;
};
LayerRef AdditiveAttention(const AdditiveAttentionOptions& options = {});

}  // namespace attnkit::layers
