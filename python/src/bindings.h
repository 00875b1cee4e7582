// The parts of attnkit._attnkit bound outside module.cpp.
#pragma once

#include <nanobind/nanobind.h>

namespace attnkit::python {

// Model (compile, fit, evaluate, predict, save, load) and the submodule zoo.
void bind_models(nanobind::module_& m);
// The general ops: matmul, linear, activations, softmax, multiply, add, embedding.
void bind_ops(nanobind::module_& m);

}  // namespace attnkit::python
