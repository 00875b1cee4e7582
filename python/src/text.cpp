// attnkit._attnkit's text and sentiment part (libattnkit_text): jieba's segmenter, Keras's
// tokenizer and padding (attnkit.text), and the blog's pipeline: prepare the reviews, train a zoo
// model, save the run with its report (attnkit.sentiment).
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <attnkit/text.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit::python {

void bind_text(nb::module_& m) {
  nb::module_ text = m.def_submodule("text", "jieba's segmenter, Keras's Tokenizer and pad_sequences.");
  nb::class_<jieba::Segmenter>(text, "Segmenter", "jieba's segmentation (jieba.lcut), from jieba's own tables.")
      .def(nb::init<const std::string&>(), "directory"_a = jieba::default_directory(),
           "Loads dict.txt and the HMM tables from the directory (python3-jieba's by default).")
      .def("cut", &jieba::Segmenter::cut, "text"_a, "hmm"_a = true, "jieba.lcut(text, HMM=hmm).");
  nb::class_<data::Tokenizer>(text, "Tokenizer", "Keras's Tokenizer (lower=True, split=\" \", no oov_token).")
      .def(nb::init<std::int64_t>(), "num_words"_a = 0)
      .def("fit_on_texts", &data::Tokenizer::fit_on_texts, "texts"_a)
      .def("texts_to_sequences", &data::Tokenizer::texts_to_sequences, "texts"_a)
      .def("index_of", &data::Tokenizer::index_of, "word"_a, "The word's index, 0 when unknown.")
      .def_prop_ro("words", &data::Tokenizer::words, "The words in index order: words[i - 1] has index i.")
      .def_prop_ro("num_words", &data::Tokenizer::num_words)
      .def("to_json", &data::Tokenizer::to_json, "Keras's tokenizer.to_json().")
      .def_static("from_json", &data::Tokenizer::from_json, "json"_a);
  text.def("pad_sequences", &data::pad_sequences, "sequences"_a, "maxlen"_a, "padding"_a = "pre",
           "truncating"_a = "pre", "value"_a = 0, "Keras's pad_sequences: i32 [N, maxlen].");

  nb::module_ sentiment =
      m.def_submodule("sentiment", "The blog's pipeline: segment, tokenise, split, train, evaluate, report.");
  nb::class_<sentiment::Dataset>(sentiment, "Dataset")
      .def_ro("reviews", &sentiment::Dataset::reviews)
      .def_ro("cut", &sentiment::Dataset::cut, "Each review segmented, stopwords dropped, joined by spaces.")
      .def_ro("labels", &sentiment::Dataset::labels)
      .def_ro("tokenizer", &sentiment::Dataset::tokenizer)
      .def_ro("x_train", &sentiment::Dataset::x_train)
      .def_ro("y_train", &sentiment::Dataset::y_train)
      .def_ro("x_test", &sentiment::Dataset::x_test)
      .def_ro("y_test", &sentiment::Dataset::y_test)
      .def_ro("test_labels", &sentiment::Dataset::test_labels);
  const auto data_options = [](const std::string& csv, const std::string& stopwords, std::int64_t num_words,
                               std::int64_t maxlen, double test_fraction, std::uint64_t seed) {
    return sentiment::DataOptions()
        .csv(csv)
        .stopwords(stopwords)
        .num_words(num_words)
        .maxlen(maxlen)
        .test_fraction(test_fraction)
        .seed(seed);
  };
  sentiment.def("prepare",
                [data_options](const std::string& csv, const std::string& stopwords, std::int64_t num_words,
                               std::int64_t maxlen, double test_fraction, std::uint64_t seed) {
                  nb::gil_scoped_release unlocked;
                  return sentiment::prepare(data_options(csv, stopwords, num_words, maxlen, test_fraction, seed));
                },
                "csv"_a, nb::kw_only(), "stopwords"_a = "", "num_words"_a = 6000, "maxlen"_a = 20,
                "test_fraction"_a = 0.2, "seed"_a = 0,
                "Reads the CSV (label,review), segments with jieba, drops the stopwords (hit_stopwords.txt beside the "
                "CSV unless given), tokenises, pads and splits (stratified, seed as scikit-learn's random_state).");
  nb::class_<sentiment::TrainResult>(sentiment, "TrainResult")
      .def_prop_ro("model", [](sentiment::TrainResult& r) -> Model& { return *r.model; }, nb::rv_policy::reference_internal)
      .def_prop_ro("history", [](const sentiment::TrainResult& r) { return r.history.history; })
      .def_prop_ro("test_loss", [](const sentiment::TrainResult& r) { return r.test.loss; })
      .def_prop_ro("test_accuracy", [](const sentiment::TrainResult& r) { return r.test.accuracy; })
      .def_prop_ro("test_kappa", [](const sentiment::TrainResult& r) { return r.test.kappa; })
      .def_ro("device", &sentiment::TrainResult::device);
  sentiment.def("train",
                [](const sentiment::Dataset& dataset, const std::string& model, int epochs, std::uint64_t seed,
                   int patience, int verbose, const std::string& device) {
                  const sentiment::TrainOptions options = sentiment::TrainOptions()
                                                              .model(model)
                                                              .epochs(epochs)
                                                              .seed(seed)
                                                              .patience(patience)
                                                              .verbose(verbose)
                                                              .device(Device::parse(device));
                  nb::gil_scoped_release unlocked;
                  return sentiment::train(dataset, options);
                },
                "dataset"_a, nb::kw_only(), "model"_a = "bilstm-attention-trainable", "epochs"_a = 0, "seed"_a = 0,
                "patience"_a = 2, "verbose"_a = 1, "device"_a = "cpu",
                "Trains the zoo model on the training split and evaluates it on the test split (epochs 0: the "
                "blog's count).");
  sentiment.def("save_run",
                [data_options](const std::string& directory, const sentiment::TrainResult& result,
                               const sentiment::Dataset& dataset, const std::string& csv, const std::string& stopwords,
                               std::int64_t num_words, std::int64_t maxlen, double test_fraction, std::uint64_t seed) {
                  sentiment::save_run(directory, result, dataset,
                                      data_options(csv, stopwords, num_words, maxlen, test_fraction, seed));
                },
                "directory"_a, "result"_a, "dataset"_a, "csv"_a, nb::kw_only(), "stopwords"_a = "",
                "num_words"_a = 6000, "maxlen"_a = 20, "test_fraction"_a = 0.2, "seed"_a = 0,
                "Writes the model, tokenizer, report (report.txt, history.csv, metrics.json) and attention into the "
                "directory, as attnkit train --report does; the data options must be prepare's.");
}

}  // namespace attnkit::python
