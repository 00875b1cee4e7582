// attnkit._attnkit's models: Model (functional, from Input and layers) and Sequential with Keras's
// compile, fit, evaluate, predict, save and load (keyword arguments under Keras's names), and the
// zoo of sentiment models.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <attnkit/text.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit::python {
namespace {

std::shared_ptr<Optimizer> optimizer_named(const std::string& name, double learning_rate) {
  if (name == "adam") return Adam(learning_rate);
  if (name == "sgd") return SGD(learning_rate);
  ATTNKIT_FAIL("compile: unknown optimizer \"", name, "\": adam or sgd");
}

}  // namespace

void bind_models(nb::module_& m) {
  nb::class_<Model>(m, "Model",
                    "A graph of layers with Keras's training methods. Build one with zoo.build(...) or "
                    "Model.load(...).")
      .def(nb::init<const std::vector<SymbolicTensor>&, const std::vector<SymbolicTensor>&, const std::string&,
                    std::uint64_t>(),
           "inputs"_a, "outputs"_a, "name"_a = "model", "seed"_a = 0,
           "Keras's functional Model from its inputs to its outputs; new parameters drawn from the seed.")
      .def(nb::init<const SymbolicTensor&, const SymbolicTensor&, const std::string&, std::uint64_t>(), "inputs"_a,
           "outputs"_a, "name"_a = "model", "seed"_a = 0)
      .def_static("load", &Model::load, "prefix"_a,
                  "The model saved by save(prefix): its config (prefix.json) and weights (prefix.safetensors).")
      .def("save", &Model::save, "prefix"_a, "The config as prefix.json and the weights as prefix.safetensors.")
      .def("summary", &Model::summary, "The layers, their output shapes and parameter counts, in Keras's layout.")
      .def("count_params", &Model::count_params)
      .def("to", [](Model& model, const std::string& device) { model.to(Device::parse(device)); }, "device"_a,
           "Moves the parameters (and the optimizer's slots) to cpu, cuda:N or sim; fit, evaluate and predict then "
           "run there.")
      .def("compile",
           [](Model& model, const std::string& optimizer, double learning_rate, const std::string& loss,
              const std::vector<std::string>& metrics) {
             model.compile(CompileOptions()
                               .optimizer(optimizer_named(optimizer, learning_rate))
                               .loss(loss)
                               .metrics(metrics));
           },
           nb::kw_only(), "optimizer"_a = "adam", "learning_rate"_a = 1e-3, "loss"_a = "categorical_crossentropy",
           "metrics"_a = std::vector<std::string>{"accuracy"},
           "Keras's compile: optimizer adam or sgd at learning_rate; loss categorical_crossentropy or "
           "binary_crossentropy; metrics [\"accuracy\"] or [].")
      .def("fit",
           [](Model& model, const Tensor& x, const Tensor& y, std::int64_t batch_size, int epochs,
              double validation_split, bool shuffle, std::uint64_t seed, int verbose) {
             const FitOptions options = FitOptions()
                                            .batch_size(batch_size)
                                            .epochs(epochs)
                                            .validation_split(validation_split)
                                            .shuffle(shuffle)
                                            .seed(seed)
                                            .verbose(verbose);
             nb::gil_scoped_release unlocked;  // training runs on attnkit's threads
             return model.fit(x, y, options).history;
           },
           "x"_a, "y"_a, nb::kw_only(), "batch_size"_a = 32, "epochs"_a = 1, "validation_split"_a = 0.0,
           "shuffle"_a = true, "seed"_a = 0, "verbose"_a = 1,
           "Keras's fit (verbose 1: a progress line per epoch). Returns the history: {\"loss\": [...], "
           "\"accuracy\": [...], \"val_loss\": [...], ...}, a value per epoch.")
      .def("evaluate",
           [](Model& model, const Tensor& x, const Tensor& y, std::int64_t batch_size) {
             nb::gil_scoped_release unlocked;
             return model.evaluate(x, y, batch_size);
           },
           "x"_a, "y"_a, nb::kw_only(), "batch_size"_a = 32,
           "The loss and metrics over the data: {\"loss\": ..., ...}.")
      .def("predict",
           [](Model& model, const Tensor& x, std::int64_t batch_size) {
             nb::gil_scoped_release unlocked;
             return model.predict(x, batch_size);
           },
           "x"_a, nb::kw_only(), "batch_size"_a = 32, "The outputs for x, on the cpu.");

  nb::class_<Sequential, Model>(m, "Sequential", "Keras's Sequential: a stack of layers from one input.")
      .def("__init__",
           [](Sequential* s, const Shape& input_shape, const std::string& input_dtype, const std::string& name,
              std::uint64_t seed) { new (s) Sequential(input_shape, dtype_named(input_dtype), name, seed); },
           "input_shape"_a, "input_dtype"_a = "f32", "name"_a = "sequential", "seed"_a = 0)
      .def("add", [](Sequential& s, const LayerRef& layer) -> Sequential& { return s.add(layer); }, "layer"_a,
           nb::rv_policy::reference, "Adds a layer on top; returns the model.");

  nb::module_ zoo = m.def_submodule("zoo", "The sentiment models of the Keras blog post, and the Transformer encoder.");
  zoo.def("model_names", &zoo::model_names, "The names build() takes, in the order the zoo trains them.");
  zoo.def("build",
          [](const std::string& name, std::int64_t vocabulary, std::int64_t embedding_dim, std::int64_t sequence_length,
             std::int64_t classes, std::uint64_t seed) {
            return zoo::build(name, zoo::ZooOptions()
                                        .vocabulary(vocabulary)
                                        .embedding_dim(embedding_dim)
                                        .sequence_length(sequence_length)
                                        .classes(classes)
                                        .seed(seed));
          },
          "name"_a, nb::kw_only(), "vocabulary"_a = 6000, "embedding_dim"_a = 32, "sequence_length"_a = 20,
          "classes"_a = 2, "seed"_a = 0,
          "The model of that name (\"bilstm-attention\", ...), its parameters drawn from the seed, not compiled.");
}

}  // namespace attnkit::python
