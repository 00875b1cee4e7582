// attnkit._attnkit's general ops (attnkit/ops/*.h but attention.h), each forward and backward,
// as the C++ declares them.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <attnkit/attnkit.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit::python {

void bind_ops(nb::module_& m) {
  nb::class_<ops::MatmulGrads>(m, "MatmulGrads")
      .def_prop_ro("da", [](const ops::MatmulGrads& g) { return g.da; })
      .def_prop_ro("db", [](const ops::MatmulGrads& g) { return g.db; });
  m.def("matmul", &ops::matmul, "a"_a, "b"_a, "transpose_a"_a = false, "transpose_b"_a = false,
        "op(a) op(b), batched over leading axes where both have them.");
  m.def("matmul_backward", &ops::matmul_backward, "a"_a, "b"_a, "dc"_a, "transpose_a"_a = false,
        "transpose_b"_a = false);

  nb::class_<ops::LinearGrads>(m, "LinearGrads")
      .def_prop_ro("dx", [](const ops::LinearGrads& g) { return defined_or_none(g.dx); })
      .def_prop_ro("dweight", [](const ops::LinearGrads& g) { return g.dweight; })
      .def_prop_ro("dbias", [](const ops::LinearGrads& g) { return defined_or_none(g.dbias); });
  m.def("linear", [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias) {
          return ops::linear(x, weight, opt(bias));
        }, "x"_a, "weight"_a, "bias"_a = nb::none(), "x weight + bias: x [..., in], weight [in, out], bias [out].");
  m.def("linear_backward", &ops::linear_backward, "x"_a, "weight"_a, "dy"_a, "has_bias"_a = true, "needs_dx"_a = true);

  m.def("bias_add", &ops::bias_add, "x"_a, "bias"_a, "x [..., C] plus bias [C].");
  m.def("bias_add_backward", &ops::bias_add_backward, "dy"_a, "The bias's gradient: dy summed over leading axes.");

  m.def("activation",
        [](const Tensor& x, const std::string& name) { return ops::activation(x, ops::parse_activation(name)); },
        "x"_a, "name"_a, "Keras's activation of that name: linear, relu, tanh, sigmoid or softmax (last axis).");
  m.def("activation_backward",
        [](const Tensor& y, const Tensor& dy, const std::string& name) {
          return ops::activation_backward(y, dy, ops::parse_activation(name));
        },
        "y"_a, "dy"_a, "name"_a, "dx from the activation's output y.");
  m.def("softmax", &ops::softmax, "x"_a, "axis"_a = -1);
  m.def("softmax_backward", &ops::softmax_backward, "y"_a, "dy"_a, "axis"_a = -1, "dx from the softmax y.");
  m.def("log_softmax", &ops::log_softmax, "x"_a, "axis"_a = -1);
  m.def("log_softmax_backward", &ops::log_softmax_backward, "y"_a, "dy"_a, "axis"_a = -1,
        "dx from the log-softmax y.");
  nb::class_<ops::MultiplyGrads>(m, "MultiplyGrads")
      .def_prop_ro("da", [](const ops::MultiplyGrads& g) { return g.da; })
      .def_prop_ro("db", [](const ops::MultiplyGrads& g) { return g.db; });
  m.def("multiply", &ops::multiply, "a"_a, "b"_a, "Elementwise a b (same shapes).");
  m.def("multiply_backward", &ops::multiply_backward, "a"_a, "b"_a, "dy"_a);
  m.def("add", &ops::add, "a"_a, "b"_a, "Elementwise a + b (same shapes).");

  m.def("embedding", &ops::embedding, "ids"_a, "table"_a, "Rows of table [vocabulary, dim] for ids (i32).");
  m.def("embedding_backward", &ops::embedding_backward, "ids"_a, "dy"_a, "vocabulary_size"_a,
        "The table's gradient: dy's rows summed into the rows of their ids.");

  // ------------------------------------------------------------ losses (the mean over samples)
  using Loss = Tensor (*)(const Tensor&, const Tensor&, bool, const Tensor&);
  using LossBackward = Tensor (*)(const Tensor&, const Tensor&, bool, double, const Tensor&);
  const auto bind_loss = [&m](const std::string& name, Loss loss, LossBackward backward) {
    m.def(name.c_str(),
          [loss](const Tensor& pred, const Tensor& target, bool from_logits, std::optional<Tensor> sample_weight) {
            return loss(pred, target, from_logits, opt(sample_weight));
          },
          "pred"_a, "target"_a, "from_logits"_a = false, "sample_weight"_a = nb::none(), "Keras's, a scalar tensor.");
    m.def((name + "_backward").c_str(),
          [backward](const Tensor& pred, const Tensor& target, bool from_logits, double dloss,
                     std::optional<Tensor> sample_weight) {
            return backward(pred, target, from_logits, dloss, opt(sample_weight));
          },
          "pred"_a, "target"_a, "from_logits"_a = false, "dloss"_a = 1.0, "sample_weight"_a = nb::none());
  };
  bind_loss("categorical_crossentropy", &ops::categorical_crossentropy, &ops::categorical_crossentropy_backward);
  bind_loss("binary_crossentropy", &ops::binary_crossentropy, &ops::binary_crossentropy_backward);

  // ------------------------------------------------------------ normalisation and dropout
  nb::class_<ops::NormResult>(m, "NormResult")
      .def_prop_ro("y", [](const ops::NormResult& r) { return r.y; })
      .def_prop_ro("mean", [](const ops::NormResult& r) { return r.mean; })
      .def_prop_ro("rstd", [](const ops::NormResult& r) { return r.rstd; });
  nb::class_<ops::NormGrads>(m, "NormGrads")
      .def_prop_ro("dx", [](const ops::NormGrads& g) { return g.dx; })
      .def_prop_ro("dgamma", [](const ops::NormGrads& g) { return g.dgamma; })
      .def_prop_ro("dbeta", [](const ops::NormGrads& g) { return g.dbeta; });
  m.def("layer_norm", &ops::layer_norm, "x"_a, "gamma"_a, "beta"_a, "eps"_a = 1e-3,
        "Keras's LayerNormalization over the last axis.");
  m.def("layer_norm_backward", &ops::layer_norm_backward, "x"_a, "gamma"_a, "mean"_a, "rstd"_a, "dy"_a);
  m.def("batch_norm",
        [](const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
           bool training, double momentum, double eps) {
          return ops::batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps);
        },
        "x"_a, "gamma"_a, "beta"_a, "running_mean"_a, "running_var"_a, "training"_a, "momentum"_a = 0.99,
        "eps"_a = 1e-3,
        "Keras's BatchNormalization over the last axis; in training the running statistics are updated in place "
        "(in the arrays given, which share their memory).");
  m.def("batch_norm_backward", &ops::batch_norm_backward, "x"_a, "gamma"_a, "mean"_a, "rstd"_a, "dy"_a, "training"_a);
  nb::class_<ops::DropoutResult>(m, "DropoutResult")
      .def_prop_ro("y", [](const ops::DropoutResult& r) { return r.y; })
      .def_prop_ro("mask", [](const ops::DropoutResult& r) { return r.mask; });
  m.def("dropout",
        [](const Tensor& x, double rate, std::uint64_t seed, std::uint64_t offset) {
          return ops::dropout(x, rate, seed, offset);
        },
        "x"_a, "rate"_a, "seed"_a, "offset"_a = 0,
        "Inverted dropout with the mask drawn from the Philox stream of seed at offset: y = x mask / (1 - rate).");
  m.def("dropout_backward", &ops::dropout_backward, "dy"_a, "mask"_a, "rate"_a);

  // ------------------------------------------------------------ convolution, pooling, reductions, shapes
  const auto padding = [](const std::string& name) { return ops::parse_padding(name); };
  nb::class_<ops::Conv1dGrads>(m, "Conv1dGrads")
      .def_prop_ro("dx", [](const ops::Conv1dGrads& g) { return defined_or_none(g.dx); })
      .def_prop_ro("dweight", [](const ops::Conv1dGrads& g) { return g.dweight; })
      .def_prop_ro("dbias", [](const ops::Conv1dGrads& g) { return defined_or_none(g.dbias); });
  m.def("conv1d",
        [padding](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, const std::string& pad) {
          return ops::conv1d(x, weight, opt(bias), padding(pad));
        },
        "x"_a, "weight"_a, "bias"_a = nb::none(), "padding"_a = "same",
        "Keras's Conv1D: x [B, T, C], weight [K, C, F], bias [F]; padding same or valid.");
  m.def("conv1d_backward",
        [padding](const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias, const std::string& pad,
                  bool needs_dx) { return ops::conv1d_backward(x, weight, dy, has_bias, padding(pad), needs_dx); },
        "x"_a, "weight"_a, "dy"_a, "has_bias"_a = true, "padding"_a = "same", "needs_dx"_a = true);
  nb::class_<ops::MaxPool1dResult>(m, "MaxPool1dResult")
      .def_prop_ro("y", [](const ops::MaxPool1dResult& r) { return r.y; })
      .def_prop_ro("argmax", [](const ops::MaxPool1dResult& r) { return r.argmax; });
  m.def("max_pool1d",
        [padding](const Tensor& x, std::int64_t pool, std::int64_t stride, const std::string& pad) {
          return ops::max_pool1d(x, pool, stride, padding(pad));
        },
        "x"_a, "pool"_a, "stride"_a = 0, "padding"_a = "valid",
        "Keras's MaxPooling1D over the steps (stride 0: pool).");
  m.def("max_pool1d_backward", &ops::max_pool1d_backward, "dy"_a, "argmax"_a, "input_steps"_a);
  m.def("mean", &ops::mean, "x"_a, "axis"_a);
  m.def("mean_backward", &ops::mean_backward, "dy"_a, "input_shape"_a, "axis"_a);
  m.def("flip", &ops::flip, "x"_a, "axis"_a);
  m.def("flatten", &ops::flatten, "x"_a, "[B, ...] to [B, rest].");
  m.def("flatten_backward", &ops::flatten_backward, "dy"_a, "input_shape"_a);
  m.def("concat", &ops::concat, "xs"_a, "axis"_a = -1);
  m.def("concat_backward", &ops::concat_backward, "dy"_a, "extents"_a, "axis"_a = -1);
  m.def("transpose", &ops::transpose, "x"_a, "axis_a"_a, "axis_b"_a, "A copy with the two axes swapped.");

  // ------------------------------------------------------------ recurrent layers
  const auto cell_of = [](const std::string& name) {
    if (name == "simple_rnn") return ops::RecurrentCell::simple_rnn;
    if (name == "lstm") return ops::RecurrentCell::lstm;
    if (name == "gru") return ops::RecurrentCell::gru;
    ATTNKIT_FAIL("unknown recurrent cell \"", name, "\": simple_rnn, lstm or gru");
  };
  const auto recurrent_options = [](bool return_sequences, bool go_backwards, bool reset_after) {
    ops::RecurrentOptions o;
    o.return_sequences = return_sequences, o.go_backwards = go_backwards, o.reset_after = reset_after;
    return o;
  };
  nb::class_<ops::RecurrentResult>(m, "RecurrentResult",
                                   "y, h_last, c_last (LSTM), and what the backward reads (pass the result back).")
      .def_prop_ro("y", [](const ops::RecurrentResult& r) { return r.y; })
      .def_prop_ro("h_last", [](const ops::RecurrentResult& r) { return r.h_last; })
      .def_prop_ro("c_last",
                   [](const ops::RecurrentResult& r) { return defined_or_none(r.c_last); });
  nb::class_<ops::RecurrentGrads>(m, "RecurrentGrads")
      .def_prop_ro("dx", [](const ops::RecurrentGrads& g) { return g.dx; })
      .def_prop_ro("dkernel", [](const ops::RecurrentGrads& g) { return g.dkernel; })
      .def_prop_ro("drecurrent_kernel", [](const ops::RecurrentGrads& g) { return g.drecurrent_kernel; })
      .def_prop_ro("dbias", [](const ops::RecurrentGrads& g) { return defined_or_none(g.dbias); })
      .def_prop_ro("dh0", [](const ops::RecurrentGrads& g) { return g.dh0; })
      .def_prop_ro("dc0", [](const ops::RecurrentGrads& g) { return defined_or_none(g.dc0); });
  m.def("recurrent",
        [=](const std::string& cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
            std::optional<Tensor> bias, std::optional<Tensor> h0, std::optional<Tensor> c0, bool return_sequences,
            bool go_backwards, bool reset_after) {
          return ops::recurrent(cell_of(cell), x, kernel, recurrent_kernel, opt(bias), opt(h0), opt(c0),
                                recurrent_options(return_sequences, go_backwards, reset_after));
        },
        "cell"_a, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a = nb::none(), "h0"_a = nb::none(),
        "c0"_a = nb::none(), nb::kw_only(), "return_sequences"_a = false, "go_backwards"_a = false,
        "reset_after"_a = true,
        "Keras's SimpleRNN, LSTM or GRU over x [B, T, I] with Keras's weights (gate order, reset_after).");
  m.def("recurrent_backward",
        [=](const std::string& cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
            std::optional<Tensor> bias, std::optional<Tensor> h0, std::optional<Tensor> c0,
            const ops::RecurrentResult& forward, std::optional<Tensor> dy, std::optional<Tensor> dh_last,
            std::optional<Tensor> dc_last, bool return_sequences, bool go_backwards, bool reset_after) {
          return ops::recurrent_backward(cell_of(cell), x, kernel, recurrent_kernel, opt(bias), opt(h0), opt(c0),
                                         forward, opt(dy), opt(dh_last), opt(dc_last),
                                         recurrent_options(return_sequences, go_backwards, reset_after));
        },
        "cell"_a, "x"_a, "kernel"_a, "recurrent_kernel"_a, "bias"_a.none(), "h0"_a.none(), "c0"_a.none(), "forward"_a,
        "dy"_a.none(), "dh_last"_a = nb::none(), "dc_last"_a = nb::none(), nb::kw_only(), "return_sequences"_a = false,
        "go_backwards"_a = false, "reset_after"_a = true,
        "The gradients of recurrent(...) from its result and the gradients of y (and of the last states).");
}

}  // namespace attnkit::python
