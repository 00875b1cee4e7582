// attnkit._attnkit's general ops (attnkit/ops/linear.h, elementwise.h, softmax.h, embedding.h),
// each forward and backward, as the C++ declares them.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <attnkit/attnkit.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit::python {

void bind_ops(nb::module_& m) {
  const auto opt = [](const std::optional<Tensor>& t) { return t ? *t : Tensor(); };
  nb::class_<ops::MatmulGrads>(m, "MatmulGrads")
      .def_prop_ro("da", [](const ops::MatmulGrads& g) { return g.da; })
      .def_prop_ro("db", [](const ops::MatmulGrads& g) { return g.db; });
  m.def("matmul", &ops::matmul, "a"_a, "b"_a, "transpose_a"_a = false, "transpose_b"_a = false,
        "op(a) op(b), batched over leading axes where both have them.");
  m.def("matmul_backward", &ops::matmul_backward, "a"_a, "b"_a, "dc"_a, "transpose_a"_a = false,
        "transpose_b"_a = false);

  nb::class_<ops::LinearGrads>(m, "LinearGrads")
      .def_prop_ro("dx", [](const ops::LinearGrads& g) { return g.dx.defined() ? nb::cast(g.dx) : nb::none(); })
      .def_prop_ro("dweight", [](const ops::LinearGrads& g) { return g.dweight; })
      .def_prop_ro("dbias", [](const ops::LinearGrads& g) { return g.dbias.defined() ? nb::cast(g.dbias) : nb::none(); });
  m.def("linear", [opt](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias) {
          return ops::linear(x, weight, opt(bias));
        }, "x"_a, "weight"_a, "bias"_a = nb::none(), "x weight + bias: x [..., in], weight [in, out], bias [out].");
  m.def("linear_backward", &ops::linear_backward, "x"_a, "weight"_a, "dy"_a, "has_bias"_a = true, "needs_dx"_a = true);

  m.def("activation", [](const Tensor& x, const std::string& name) { return ops::activation(x, ops::parse_activation(name)); },
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
}

}  // namespace attnkit::python
