// The sentiment pipeline (see sentiment.h): data preparation, training with the blog's
// protocol, evaluation, token attention, and runs saved to a folder.
#include "attnkit/sentiment.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attnkit/ops/attention.h"
#include "attnkit/ops/linear.h"
#include "attnkit/safetensors.h"
#include "attnkit/threads.h"
#include "cpu/parallel.h"
#include "json_integers.h"

namespace attnkit::sentiment {

std::string stopwords_path(const DataOptions& options) {
  if (!options.stopwords().empty()) return options.stopwords();
  return (std::filesystem::path(options.csv()).parent_path() / "hit_stopwords.txt").string();
}

Dataset prepare(const DataOptions& options) {
  ATTNKIT_CHECK(!options.csv().empty(), "no data: give the CSV of labelled reviews");
  const data::LabelledTexts texts = data::read_labelled_csv(options.csv());
  const std::set<std::string> stopwords = data::read_stopwords(stopwords_path(options));
  const jieba::Segmenter segmenter(options.jieba_directory());
  Dataset d;
  d.reviews = texts.texts;
  d.labels = texts.labels;
  // Segmented a chunk at a time on the CPU's threads (the CSV reader has checked the UTF-8, so
  // nothing throws inside the loop), with a progress line after each chunk of a large input.
  const std::size_t total = d.reviews.size();
  const bool say = options.progress() != nullptr && total >= 100000;
  constexpr std::size_t kChunk = 50000;
  d.cut.resize(total);
  for (std::size_t first = 0; first < total; first += kChunk) {
    const std::size_t end = std::min(total, first + kChunk);
    cpu::parallel_for(static_cast<std::int64_t>(end - first), 2000 * 40, [&](std::int64_t i) {
      const std::size_t k = first + static_cast<std::size_t>(i);
      d.cut[k] = data::join_without_stopwords(segmenter.cut(d.reviews[k]), stopwords);
    });
    if (say) *options.progress() << "data: segmented " << end << " of " << total << " reviews" << std::endl;
  }
  if (say) *options.progress() << "data: tokenising" << std::endl;
  d.tokenizer = data::Tokenizer(options.num_words());
  d.tokenizer.fit_on_texts(d.cut);
  const Tensor x = data::pad_sequences(d.tokenizer.texts_to_sequences(d.cut), options.maxlen());
  const Tensor y = data::one_hot(d.labels, 2);
  d.split = data::stratified_split(d.labels, options.test_fraction(), options.seed());
  d.x_train = data::take(x, d.split.train);
  d.y_train = data::take(y, d.split.train);
  d.x_test = data::take(x, d.split.test);
  d.y_test = data::take(y, d.split.test);
  for (const std::int64_t i : d.split.test) d.test_labels.push_back(d.labels[static_cast<std::size_t>(i)]);
  return d;
}

Evaluation evaluate(Model& model, const Tensor& x, const Tensor& y, const std::vector<int>& labels) {
  Evaluation e;
  const Logs logs = model.evaluate(x, y);
  e.loss = logs.at("loss");
  e.confusion = metrics::confusion_matrix(labels, metrics::argmax_rows(model.predict(x)), 2);
  e.report = metrics::classification_report(e.confusion);
  e.accuracy = e.report.accuracy;
  e.kappa = metrics::cohen_kappa(e.confusion);
  return e;
}

bool model_runs_on(const std::string& name, Device device, std::string* why) {
  try {
    std::unique_ptr<Model> model =
        zoo::build(name, zoo::ZooOptions().vocabulary(10).sequence_length(6).embedding_dim(4));
    model->to(device);
    model->compile(CompileOptions().optimizer(Adam()));
    const Tensor ids = Tensor::from_vector<std::int32_t>({1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9}, {2, 6});
    const Tensor targets = Tensor::from_vector<float>({1, 0, 0, 1}, {2, 2});
    model->fit(ids, targets, FitOptions().epochs(1).batch_size(2).verbose(0));
    return true;
  } catch (const Error& error) {
    if (why != nullptr) *why = error.what();
    return false;
  }
}

TrainResult train(const Dataset& dataset, const TrainOptions& options) {
  TrainResult r;
  r.spec = zoo::spec(options.model());
  // Ids run below num_words, or up to the vocabulary's size when every word is kept.
  const std::int64_t vocabulary = dataset.tokenizer.num_words() > 0
                                      ? dataset.tokenizer.num_words()
                                      : static_cast<std::int64_t>(dataset.tokenizer.words().size()) + 1;
  r.model = zoo::build(options.model(), zoo::ZooOptions()
                                            .vocabulary(vocabulary)
                                            .sequence_length(dataset.x_train.size(1))
                                            .seed(options.seed()));
  r.model->to(options.device());
  r.model->compile(CompileOptions().optimizer(Adam()).loss("categorical_crossentropy"));
  r.device = options.device().str();
  r.cpu_threads = num_threads();
  r.epochs_planned = options.epochs() > 0 ? options.epochs() : r.spec.epochs;
  FitOptions fit = FitOptions()
                       .epochs(r.epochs_planned)
                       .batch_size(32)
                       .validation_split(0.2)
                       .seed(options.seed())
                       .verbose(options.verbose())
                       .output(options.output())
                       .checkpoint(options.checkpoint())
                       .resume(options.resume());
  if (r.spec.early_stopping) fit.callbacks({EarlyStopping("val_loss", options.patience(), 0.0, true)});
  r.history = r.model->fit(dataset.x_train, dataset.y_train, fit);
  r.test = evaluate(*r.model, dataset.x_test, dataset.y_test, dataset.test_labels);
  return r;
}

// ------------------------------------------------------------------ token attention

namespace {

// The first layer of `type` in the model, or null.
LayerPtr first_layer_of(const Model& model, const std::string& type) {
  for (const LayerPtr& layer : model.layers())
    if (layer->type() == type) return layer;
  return nullptr;
}

// The model's first tanh pooling: an AttentionPooling layer, or an AdditiveAttention called on one
// input (the name of the pooling in models saved before Keras's AdditiveAttention came).
LayerPtr first_pooling_layer(const Model& model) {
  for (const LayerPtr& layer : model.layers()) {
    if (layer->type() == "AttentionPooling") return layer;
    if (layer->type() == "AdditiveAttention")
      for (const auto& named : layer->named_parameters())
        if (named.first == "W") return layer;
  }
  return nullptr;
}

Tensor parameter(const LayerPtr& layer, const std::string& name) {
  for (const auto& [n, p] : layer->named_parameters())
    if (n == name) return p->value.to(Device::cpu());  // the reading below runs on the cpu
  ATTNKIT_FAIL(layer->label(), " has no parameter '", name, "'");
}

// The values that reach `layer`'s first call when the model reads `ids`.
Tensors inputs_of(Model& model, const LayerPtr& layer, const Tensor& ids) {
  Model probe(model.inputs(), model.layer_inputs(layer->name()), "probe");
  probe.to(model.device());
  return probe.predict(Tensors{ids});
}

}  // namespace

std::unique_ptr<TokenAttention> token_attention(Model& model, const data::Tokenizer& tokenizer, const Tensor& ids) {
  ATTNKIT_CHECK(ids.dim() == 2 && ids.size(0) == 1 && ids.dtype() == DType::i32,
                "token_attention: ids must be one padded review, i32 [1, maxlen], got ", ids.describe());
  const std::vector<std::int32_t> id = ids.to_vector<std::int32_t>();
  std::vector<std::int64_t> positions;  // the steps that hold a token
  auto a = std::make_unique<TokenAttention>();
  for (std::size_t t = 0; t < id.size(); ++t)
    if (id[t] > 0) {
      positions.push_back(static_cast<std::int64_t>(t));
      a->tokens.push_back(tokenizer.words()[static_cast<std::size_t>(id[t] - 1)]);
    }
  std::vector<double> per_step;
  if (const LayerPtr pooling = first_pooling_layer(model)) {
    const Tensor x = inputs_of(model, pooling, ids)[0];
    per_step = ops::additive_attention(x, parameter(pooling, "W"), parameter(pooling, "b")).weights.to_vector<double>();
    a->kind = "steps";
  } else if (const LayerPtr layer = first_layer_of(model, "MultiHeadSelfAttention")) {
    const Tensors in = inputs_of(model, layer, ids);
    const Tensor& x = in[0];
    const Tensor mask = in.size() > 1 ? in[1] : Tensor();
    ops::AttentionOptions options;
    options.num_heads = layer->config().at("num_heads").get<std::int64_t>();
    options.return_weights = true;
    const Tensor w =
        ops::scaled_dot_product_attention(ops::linear(x, parameter(layer, "query/kernel"), parameter(layer, "query/bias")),
                                          ops::linear(x, parameter(layer, "key/kernel"), parameter(layer, "key/bias")),
                                          ops::linear(x, parameter(layer, "value/kernel"), parameter(layer, "value/bias")),
                                          mask, options)
            .weights;  // [1, H, T, T]
    // The attention each token receives, averaged over heads and over the queries that are tokens.
    const std::vector<double> v = w.to_vector<double>();
    const std::int64_t heads = w.size(1), steps = w.size(3);
    per_step.assign(static_cast<std::size_t>(steps), 0.0);
    for (std::int64_t h = 0; h < heads; ++h)
      for (const std::int64_t q : positions)
        for (std::int64_t k = 0; k < steps; ++k)
          per_step[static_cast<std::size_t>(k)] +=
              v[static_cast<std::size_t>((h * steps + q) * steps + k)] / double(heads * positions.size());
    a->kind = "steps";
  } else if (const LayerPtr gating = first_layer_of(model, "GatingAttention")) {
    const Tensor x = inputs_of(model, gating, ids)[0];
    const Tensor probs = ops::gating_attention(x, parameter(gating, "kernel"), parameter(gating, "bias")).probs;
    const std::int64_t features = probs.size(2);
    const std::vector<double> p = probs.to_vector<double>();
    for (const std::int64_t t : positions) {
      std::vector<double> gate(p.begin() + t * features, p.begin() + (t + 1) * features);
      a->weights.push_back(*std::max_element(gate.begin(), gate.end()));
      a->feature_gates.push_back(std::move(gate));
    }
    a->kind = "features";
    return a;
  } else {
    return nullptr;
  }
  for (const std::int64_t t : positions) a->weights.push_back(per_step[static_cast<std::size_t>(t)]);
  return a;
}

// ------------------------------------------------------------------ saved runs

namespace {

// The stopword list's name inside a run folder.
constexpr const char* kRunStopwords = "stopwords.txt";

// run.json's "data": the CSV as an absolute path (evaluate reads it again; it stays where it
// is), the stopword list as the copy inside the folder, and how texts are segmented.
Json data_options_json(const DataOptions& o) {
  return {{"csv", std::filesystem::absolute(o.csv()).lexically_normal().string()},
          {"stopwords", kRunStopwords},
          {"segmentation", {{"segmenter", "jieba"}, {"hmm", true}}},
          {"num_words", o.num_words()},
          {"maxlen", o.maxlen()},
          {"test_fraction", o.test_fraction()},
          {"split_seed", o.seed()}};
}

Json attention_json(const TokenAttention& a) {
  Json j{{"kind", a.kind}, {"tokens", a.tokens}, {"weights", a.weights}};
  if (!a.feature_gates.empty()) j["feature_gates"] = a.feature_gates;
  return j;
}

}  // namespace

Json run_summary(const TrainResult& r) {
  Json history = Json::object();
  for (const auto& [key, values] : r.history.history) history[key] = values;
  const auto& report = r.test.report;
  Json per_class = Json::array();
  for (const auto& s : report.per_class)
    per_class.push_back({{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}});
  return {{"model", r.spec.name},
          {"blog_name", r.spec.blog_name},
          {"device", r.device},
          {"cpu_threads", r.cpu_threads},
          {"epochs", r.history.epochs()},
          {"epochs_planned", r.epochs_planned},
          {"test_accuracy", r.test.accuracy},
          {"test_loss", r.test.loss},
          {"kappa", r.test.kappa},
          {"blog_accuracy", r.spec.blog_accuracy},
          {"params", r.model->count_params()},
          {"trainable_params", r.model->count_trainable_params()},
          {"epoch_seconds", r.history.epoch_seconds},
          {"confusion_matrix", {{r.test.confusion.at(0, 0), r.test.confusion.at(0, 1)},
                                {r.test.confusion.at(1, 0), r.test.confusion.at(1, 1)}}},
          {"classification_report", {{"per_class", per_class},
                                      {"macro_avg", {{"precision", report.macro_average.precision},
                                                     {"recall", report.macro_average.recall},
                                                     {"f1", report.macro_average.f1}}},
                                      {"weighted_avg", {{"precision", report.weighted_average.precision},
                                                        {"recall", report.weighted_average.recall},
                                                        {"f1", report.weighted_average.f1}}}}},
          {"history", history}};
}

void save_run(const std::string& directory, const TrainResult& r, const Dataset& d, const DataOptions& data_options) {
  std::filesystem::create_directories(directory);
  const std::filesystem::path dir(directory);
  r.model->save((dir / "model").string());
  write_file_atomically((dir / "tokenizer.json").string(), d.tokenizer.to_json());
  write_file_atomically((dir / kRunStopwords).string(), read_file(stopwords_path(data_options)));
  const auto int32s = [](const auto& values) {
    return Tensor::from_vector<std::int32_t>(std::vector<std::int32_t>(values.begin(), values.end()),
                                             {static_cast<std::int64_t>(values.size())});
  };
  // rows: where each test review is among the CSV's rows (0 the first after the header).
  write_safetensors((dir / "test.safetensors").string(),
                    {{"x", d.x_test}, {"labels", int32s(d.test_labels)}, {"rows", int32s(d.split.test)}});
  write_file_atomically((dir / "run.json").string(),
                        Json{{"model", r.spec.name}, {"data", data_options_json(data_options)}}.dump(2) + "\n");
  write_file_atomically((dir / "metrics.json").string(), run_summary(r).dump(2) + "\n");

  std::ostringstream report;
  report << "model: " << r.spec.name << " (" << r.spec.blog_name << ")\n"
         << "device: " << r.device << " (" << r.cpu_threads << (r.cpu_threads == 1 ? " CPU thread)\n" : " CPU threads)\n")
         << "epochs: " << r.history.epochs() << " of " << r.epochs_planned << "\n"
         << "test accuracy: " << r.test.accuracy << "\n"
         << "Cohen's kappa: " << r.test.kappa << "\n\n"
         << "confusion matrix (rows: true label, columns: predicted)\n"
         << "        0      1\n";
  for (int t = 0; t < 2; ++t) report << "  " << t << "  " << r.test.confusion.at(t, 0) << "  " << r.test.confusion.at(t, 1) << "\n";
  report << "\n" << r.test.report.str();
  write_file_atomically((dir / "report.txt").string(), report.str());

  std::ostringstream csv;
  const std::vector<std::string> columns{"loss", "accuracy", "val_loss", "val_accuracy", "lr"};
  csv << "epoch";
  for (const std::string& c : columns) csv << "," << c;
  csv << ",seconds\n";
  for (int e = 0; e < r.history.epochs(); ++e) {
    csv << e + 1;
    for (const std::string& c : columns) {
      const auto found = r.history.history.find(c);
      csv << "," << (found == r.history.history.end() ? NAN : found->second[static_cast<std::size_t>(e)]);
    }
    csv << "," << r.history.epoch_seconds[static_cast<std::size_t>(e)] << "\n";
  }
  write_file_atomically((dir / "history.csv").string(), csv.str());

  // The attention over the first test reviews that have at least three tokens.
  Json reviews = Json::array();
  for (std::size_t k = 0; k < d.split.test.size() && reviews.size() < 6; ++k) {
    const std::int64_t i = d.split.test[k];
    const Tensor ids = d.x_test.slice(static_cast<std::int64_t>(k), static_cast<std::int64_t>(k) + 1);
    const std::unique_ptr<TokenAttention> a = token_attention(*r.model, d.tokenizer, ids);
    if (!a) break;
    if (a->tokens.size() < 3) continue;
    Json entry = attention_json(*a);
    entry["review"] = d.reviews[static_cast<std::size_t>(i)];
    entry["label"] = d.labels[static_cast<std::size_t>(i)];
    const std::vector<float> p = r.model->predict(ids).to_vector<float>();
    entry["probability_positive"] = p[1];
    reviews.push_back(entry);
  }
  write_file_atomically((dir / "attention.json").string(), Json{{"model", r.spec.name}, {"reviews", reviews}}.dump(2) + "\n");
}

SavedRun load_run(const std::string& directory) {
  const std::filesystem::path dir(directory);
  SavedRun run;
  Json config;
  try {
    config = Json::parse(read_file((dir / "run.json").string()));
    run.model_name = config.at("model").get<std::string>();
    const Json& d = config.at("data");
    // Paths are the folder's own (relative) or, in runs saved before, as they were given.
    const auto resolved = [&](const std::string& path) {
      const std::filesystem::path inside = dir / path;
      return std::filesystem::path(path).is_relative() && std::filesystem::exists(inside) ? inside.string() : path;
    };
    run.data_options.csv(resolved(d.at("csv").get<std::string>()))
        .stopwords(resolved(d.at("stopwords").get<std::string>()))
        .num_words(detail::json_integer(d.at("num_words"), "num_words"))
        .maxlen(detail::json_integer(d.at("maxlen"), "maxlen"))
        .test_fraction(d.at("test_fraction").get<double>())
        .seed(static_cast<std::uint64_t>(detail::json_integer(d.at("split_seed"), "split_seed")));
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("'", (dir / "run.json").string(), "' is not a saved run: ", e.what());
  }
  run.model = Model::load((dir / "model").string());
  run.model->compile();
  run.tokenizer = data::Tokenizer::from_json(read_file((dir / "tokenizer.json").string()));
  const std::filesystem::path test = dir / "test.safetensors";
  if (std::filesystem::exists(test)) {
    const SafetensorsFile file = read_safetensors(test.string());
    const std::map<std::string, Tensor> tensors(file.tensors.begin(), file.tensors.end());
    const auto x = tensors.find("x"), labels = tensors.find("labels");
    ATTNKIT_CHECK(x != tensors.end() && labels != tensors.end() && x->second.dtype() == DType::i32 &&
                      labels->second.dtype() == DType::i32 && x->second.dim() == 2 &&
                      x->second.size(1) == run.data_options.maxlen() && labels->second.dim() == 1 &&
                      labels->second.size(0) == x->second.size(0),
                  "'", test.string(), "' does not hold a test split: i32 ids x [N, ", run.data_options.maxlen(),
                  "] and i32 labels [N]");
    run.test_x = x->second;
    const std::vector<std::int32_t> values = labels->second.to_vector<std::int32_t>();
    run.test_labels.assign(values.begin(), values.end());
  }
  return run;
}

std::vector<Prediction> predict_batch(Model& model, const data::Tokenizer& tokenizer, const jieba::Segmenter& segmenter,
                                      const std::set<std::string>& stopwords, const std::vector<std::string>& texts,
                                      std::int64_t maxlen, bool with_attention) {
  const auto n = static_cast<std::int64_t>(texts.size());
  std::vector<std::string> cut(texts.size()), errors(texts.size());
  // About 2,000 operations a character; nothing may throw inside the loop.
  cpu::parallel_for(n, 2000 * 40, [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    try {
      cut[k] = data::join_without_stopwords(segmenter.cut(texts[k]), stopwords);
    } catch (const std::exception& e) {
      errors[k] = e.what();
    }
  });
  for (std::size_t k = 0; k < errors.size(); ++k)
    ATTNKIT_CHECK(errors[k].empty(), "text ", k + 1, " of ", n, ": ", errors[k]);
  std::vector<Prediction> out(texts.size());
  if (texts.empty()) return out;
  const Tensor ids = data::pad_sequences(tokenizer.texts_to_sequences(cut), maxlen);
  const Tensor probs = model.predict(ids).to(Device::cpu());
  const float* p = probs.data<float>();
  const std::int32_t* id = ids.data<std::int32_t>();
  for (std::size_t k = 0; k < out.size(); ++k) {
    Prediction& o = out[k];
    o.words = data::text_to_word_sequence(cut[k]);
    o.label = p[2 * k + 1] > p[2 * k] ? 1 : 0;
    o.probability = p[2 * k + static_cast<std::size_t>(o.label)];
    for (std::int64_t t = 0; t < maxlen; ++t) o.known_tokens += id[static_cast<std::int64_t>(k) * maxlen + t] != 0;
    if (with_attention) {
      const auto row = static_cast<std::int64_t>(k);
      o.attention = token_attention(model, tokenizer, ids.slice(row, row + 1));
    }
  }
  return out;
}

Json prediction_json(const Prediction& p, bool with_attention) {
  Json out{{"predicted_label", p.label},
           {"probability", p.probability},
           {"known_tokens", p.known_tokens},
           {"no_known_token", p.known_tokens == 0}};
  if (with_attention && p.attention) out["attention"] = attention_json(*p.attention);
  return out;
}

Prediction predict(Model& model, const data::Tokenizer& tokenizer, const jieba::Segmenter& segmenter,
                   const std::set<std::string>& stopwords, const std::string& text, std::int64_t maxlen) {
  return std::move(predict_batch(model, tokenizer, segmenter, stopwords, {text}, maxlen, true)[0]);
}

}  // namespace attnkit::sentiment
