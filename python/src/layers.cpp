// attnkit._attnkit's layers: Keras's layers under Keras's names and arguments (attnkit/layers.h),
// called on symbolic tensors to build functional models (Input, Model(inputs, outputs)), or added
// to a Sequential (both in models.cpp).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <attnkit/attnkit.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit::python {
namespace {

layers::RecurrentOptions recurrent_options(bool return_sequences, bool return_state, bool go_backwards,
                                           bool reset_after) {
  return layers::RecurrentOptions()
      .return_sequences(return_sequences)
      .return_state(return_state)
      .go_backwards(go_backwards)
      .reset_after(reset_after);
}

}  // namespace

void bind_layers(nb::module_& m) {
  nb::class_<SymbolicTensor>(m, "SymbolicTensor", "A layer's output in a model being built (Keras's KerasTensor).")
      .def_prop_ro("shape", [](const SymbolicTensor& t) { return t.shape(); },
                   "The shape without the batch axis.");
  m.def("Input", [](const Shape& shape, const std::string& dtype, const std::string& name) {
          return Input(shape, dtype_named(dtype), name);
        }, "shape"_a, "dtype"_a = "f32", "name"_a = "", "Keras's Input: one sample's shape, without the batch axis.");

  nb::class_<LayerRef>(m, "Layer", "A Keras layer: call it on a SymbolicTensor (or a list of them).")
      .def("__call__", [](const LayerRef& layer, const SymbolicTensor& x) { return layer(x); }, "x"_a)
      .def("__call__", [](const LayerRef& layer, const std::vector<SymbolicTensor>& xs) { return layer(xs); },
           "xs"_a)
      .def("named", [](const LayerRef& layer, const std::string& name) { return layer.named(name); }, "name"_a,
           "Sets the layer's name; returns the layer.")
      .def("trainable", [](const LayerRef& layer, bool trainable) { return layer.trainable(trainable); },
           "trainable"_a, "Sets whether training changes its weights; returns the layer.");

  nb::module_ l = m.def_submodule("layers", "Keras's layers, under Keras's names and arguments.");
  l.def("Embedding", &layers::Embedding, "input_dim"_a, "output_dim"_a);
  l.def("PositionEmbedding", &layers::PositionEmbedding);
  l.def("Dense", &layers::Dense, "units"_a, "activation"_a = "linear", "use_bias"_a = true);
  l.def("Dropout", &layers::Dropout, "rate"_a);
  l.def("Flatten", &layers::Flatten);
  l.def("Activation", &layers::Activation, "activation"_a);
  l.def("Conv1D", &layers::Conv1D, "filters"_a, "kernel_size"_a, "padding"_a = "valid", "activation"_a = "linear",
        "use_bias"_a = true);
  l.def("MaxPooling1D", &layers::MaxPooling1D, "pool_size"_a = 2, "strides"_a = 0, "padding"_a = "valid");
  l.def("GlobalMaxPooling1D", &layers::GlobalMaxPooling1D);
  l.def("GlobalAveragePooling1D", &layers::GlobalAveragePooling1D);
  const auto recurrent = [&l](const char* name, LayerRef (*make)(std::int64_t, const layers::RecurrentOptions&)) {
    l.def(name,
          [make](std::int64_t units, bool return_sequences, bool return_state, bool go_backwards, bool reset_after) {
            return make(units, recurrent_options(return_sequences, return_state, go_backwards, reset_after));
          },
          "units"_a, "return_sequences"_a = false, "return_state"_a = false, "go_backwards"_a = false,
          "reset_after"_a = true);
  };
  recurrent("SimpleRNN", &layers::SimpleRNN);
  recurrent("LSTM", &layers::LSTM);
  recurrent("GRU", &layers::GRU);
  l.def("Bidirectional", &layers::Bidirectional, "layer"_a);
  l.def("Concatenate", &layers::Concatenate, "axis"_a = -1);
  l.def("Multiply", &layers::Multiply);
  l.def("Add", &layers::Add);
  l.def("BatchNormalization", &layers::BatchNormalization, "momentum"_a = 0.99, "epsilon"_a = 1e-3);
  l.def("LayerNormalization", &layers::LayerNormalization, "epsilon"_a = 1e-3);
  l.def("AttentionPooling",
        [](bool return_sequences, double epsilon, bool use_bias, bool return_attention) {
          return layers::AttentionPooling(layers::AttentionPoolingOptions()
                                              .return_sequences(return_sequences)
                                              .epsilon(epsilon)
                                              .use_bias(use_bias)
                                              .return_attention(return_attention));
        },
        "return_sequences"_a = false, "epsilon"_a = 1e-7, "use_bias"_a = true, "return_attention"_a = false,
        "The tutorials' additive tanh-softmax attention pooling.");
  l.def("GatingAttention", &layers::GatingAttention, "return_attention"_a = false);
  l.def("TemporalGatingAttention", &layers::TemporalGatingAttention, "single_vector"_a = false,
        "return_attention"_a = false);
  l.def("MultiHeadSelfAttention", &layers::MultiHeadSelfAttention, "num_heads"_a = 8, "weights_dim"_a = 64,
        "causal"_a = false, "return_attention"_a = false);
  l.def("DotAttention", &layers::DotAttention, "scale"_a = 1.0, "return_attention"_a = false);
}

}  // namespace attnkit::python
