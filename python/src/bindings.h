// The parts of attnkit._attnkit bound outside module.cpp.
#pragma once

#include <optional>
#include <string>

#include <nanobind/nanobind.h>

#include <attnkit/tensor.h>

namespace attnkit::python {

// An optional tensor argument: None is an undefined Tensor; and back, an undefined result is None.
inline Tensor opt(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }
inline std::optional<Tensor> defined_or_none(const Tensor& t) {
  return t.defined() ? std::optional<Tensor>(t) : std::nullopt;
}

// The dtype of a name ("f32", ...); an error listing them otherwise.
DType dtype_named(const std::string& name);

// SymbolicTensor, Input, Layer and the submodule layers.
void bind_layers(nanobind::module_& m);
// Model (functional, compile, fit, evaluate, predict, save, load), Sequential and the submodule zoo.
void bind_models(nanobind::module_& m);
// The submodules text (Segmenter, Tokenizer, pad_sequences) and sentiment (prepare, train, save_run).
void bind_text(nanobind::module_& m);
// The general ops: matmul, linear, activations, softmax, multiply, add, embedding.
void bind_ops(nanobind::module_& m);

}  // namespace attnkit::python
