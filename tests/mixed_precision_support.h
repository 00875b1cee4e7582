// What the mixed-precision tests of the cpu (test_mixed_precision.cpp) and of the devices
// (sim/test_mixed_precision.cpp) share: bf16 checks, and a small Transformer-style model trained
// a few steps under a dtype policy.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attnkit/layers.h"
#include "attnkit/mixed_precision.h"
#include "attnkit/model.h"
#include "attnkit/optimizers.h"
#include "support.h"

namespace attnkit::testing {

// Whether v is a bf16 value: converting it to bf16 and back gives v again.
inline bool is_bf16_value(double v) {
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) == v && static_cast<float>(BFloat16(f)) == f;
}

// The fraction of t's nonzero elements that are bf16 values (zeros, such as the weights of
// masked keys, are bf16 values in any dtype).
inline double bf16_fraction(const Tensor& t) {
  std::size_t nonzero = 0, bf16 = 0;
  for (const double x : values(t)) {
    nonzero += x != 0;
    bf16 += x != 0 && is_bf16_value(x);
  }
  return nonzero == 0 ? 0.0 : static_cast<double>(bf16) / static_cast<double>(nonzero);
}

struct LayerRun {
  Tensors outputs;  // on the cpu
  Tensor dx;        // the gradient of inputs[0] for the output gradient dy, on the cpu
};

// Builds `layer` with the generator seed 7 (so that layers of one kind get the same weights),
// and runs it forward and backward on `device`.
inline LayerRun run_layer(Device device, const LayerRef& layer, const Tensors& inputs, const Tensor& dy) {
  Generator init(7);
  std::vector<Shape> shapes;
  Tensors on_device;
  for (const Tensor& t : inputs) {
    shapes.emplace_back(t.shape().begin() + 1, t.shape().end());
    on_device.push_back(t.to(device));
  }
  layer->build(shapes, init);
  for (Parameter* parameter : layer->parameters()) parameter->value = parameter->value.to(device);
  std::any cache;
  const Tensors outputs = layer->forward(on_device, CallContext(), cache);
  std::vector<bool> needs_grad(inputs.size(), false);
  needs_grad[0] = true;
  Tensors output_grads(outputs.size());
  output_grads[0] = dy.to(device);
  LayerRun run;
  run.dx = layer->backward(on_device, cache, output_grads, needs_grad)[0].to(Device::cpu());
  for (const Tensor& t : outputs) run.outputs.push_back(t.to(Device::cpu()));
  return run;
}

// Embedding -> MultiHeadSelfAttention (2 heads of 32, padding masked) -> average over the steps
// -> Dense softmax over 3 classes, made under `policy`.
constexpr std::int64_t kTransformerSteps = 13, kTransformerVocabulary = 41;
inline std::unique_ptr<Model> small_transformer(const std::string& policy) {
  const mixed_precision::PolicyScope scope(policy);
  const SymbolicTensor ids = Input({kTransformerSteps}, DType::i32, "ids");
  const SymbolicTensor mask = layers::PaddingMask()(ids);
  SymbolicTensor x = layers::Embedding(kTransformerVocabulary, 64)(ids);
  x = layers::MultiHeadSelfAttention(2, 64)({x, mask});
  x = layers::GlobalAveragePooling1D()(x);
  return std::make_unique<Model>(ids, layers::Dense(3, "softmax")(x), "small_transformer", 5);
}

// Token ids with padding (0) at the end of some rows, and one-hot labels that depend on them.
struct TransformerData {
  Tensor ids, labels;
};
inline TransformerData transformer_data(std::int64_t rows) {
  Generator gen(17);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * kTransformerSteps));
  std::vector<float> labels(static_cast<std::size_t>(rows * 3), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t length = 4 + static_cast<std::int64_t>(gen.uniform_int(kTransformerSteps - 3));
    std::int64_t sum = 0;
    for (std::int64_t t = 0; t < length; ++t) {
      const auto id = static_cast<std::int32_t>(1 + gen.uniform_int(kTransformerVocabulary - 1));
      ids[static_cast<std::size_t>(r * kTransformerSteps + t)] = id;
      sum += id;
    }
    labels[static_cast<std::size_t>(r * 3 + sum % 3)] = 1.0f;
  }
  return {Tensor::from_vector(ids, {rows, kTransformerSteps}), Tensor::from_vector(labels, {rows, 3})};
}

// The model trained on `device` for `steps` steps of one whole batch each (Adam, 0.003), from
// the same initial weights whatever the policy; returns the loss of every step.
inline std::vector<double> train_steps(Model& model, const TransformerData& data, Device device, int steps) {
  model.to(device);
  model.compile(CompileOptions().optimizer(Adam(0.003)));
  const History history = model.fit(
      data.ids, data.labels, FitOptions().epochs(steps).batch_size(data.ids.size(0)).shuffle(false).verbose(0));
  return history.history.at("loss");
}

// The losses of the same steps under float32 and mixed_bfloat16 agree to within one bf16
// rounding of the loss (2^-8 of it), and are not all the same. Why 2^-8 suffices: the policy
// rounds each element of q, k, v and the attention's output once to bf16 (relative error at
// most 2^-8 each; the kernels round the probabilities too); these errors take either sign, and
// the loss averages them over every sample, step and feature, so it moves far less than one of
// them (about 1e-5 here, 2^-16). A mixed path that lost the attention's gradients (nothing
// reaching the embedding) moves the losses of these steps by 0.01 to 0.06, well outside.
inline void expect_training_follows_float32(const std::vector<double>& f32, const std::vector<double>& mixed) {
  ASSERT_EQ(mixed.size(), f32.size());
  bool any_difference = false;
  for (std::size_t step = 0; step < f32.size(); ++step) {
    EXPECT_NEAR(mixed[step], f32[step], 0x1p-8 * std::fabs(f32[step])) << "step " << step;
    any_difference = any_difference || mixed[step] != f32[step];
  }
  EXPECT_TRUE(any_difference) << "the losses under mixed_bfloat16 are float32's: the policy changed nothing";
  EXPECT_LT(f32.back(), f32.front());  // the steps learn
}

}  // namespace attnkit::testing
