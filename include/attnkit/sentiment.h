// attnkit/sentiment.h: the sentiment pipeline of the Keras blog post (MODELS.md), end to end:
// CSV -> jieba segmentation -> stopwords -> Keras Tokenizer(num_words) -> pad_sequences(20) ->
// stratified 80/20 split -> one-hot labels -> a zoo model trained with Adam, batch 32 and a
// validation split of 0.2 -> test accuracy, confusion matrix, classification report, Cohen's
// kappa, and the attention over the tokens of reviews.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attnkit/data.h"
#include "attnkit/jieba.h"
#include "attnkit/metrics.h"
#include "attnkit/model.h"
#include "attnkit/zoo.h"

namespace attnkit::sentiment {

struct DataOptions {
  ATTNKIT_ARG(std::string, csv);
  // hit_stopwords.txt beside the CSV unless given.
  ATTNKIT_ARG(std::string, stopwords);
  ATTNKIT_ARG(std::string, jieba_directory) = jieba::default_directory();
  ATTNKIT_ARG(std::int64_t, num_words) = 6000;
  ATTNKIT_ARG(std::int64_t, maxlen) = 20;
  ATTNKIT_ARG(double, test_fraction) = 0.2;
  // The split's random_state (scikit-learn's train_test_split); 0 is the blog's.
  ATTNKIT_ARG(std::uint64_t, seed) = 0;
  // Where progress lines go while large inputs (100,000 reviews or more) are segmented and
  // tokenised; null: nowhere.
  ATTNKIT_ARG(OutputStream, progress) = nullptr;
};

// The stopword file that goes with a CSV when none is named: hit_stopwords.txt beside it.
std::string stopwords_path(const DataOptions& options);

struct Dataset {
  std::vector<std::string> reviews;  // as in the CSV
  std::vector<std::string> cut;      // segmented, stopwords dropped, joined by spaces
  std::vector<int> labels;
  data::Tokenizer tokenizer;         // fitted on every review, as the blog does
  data::Split split;
  Tensor x_train, y_train, x_test, y_test;  // ids [N, maxlen] i32; one-hot [N, 2] f32
  std::vector<int> test_labels;
};

// Reads, segments (on the CPU's threads), tokenises, pads and splits the data; errors name the
// file and line.
Dataset prepare(const DataOptions& options);

struct TrainOptions {
  ATTNKIT_ARG(std::string, model) = "bilstm-attention-trainable";
  // 0: the model's default (the blog's epoch count).
  ATTNKIT_ARG(int, epochs) = 0;
  ATTNKIT_ARG(std::uint64_t, seed) = 0;
  // Models with ModelSpec::early_stopping stop after this many epochs without a better
  // validation loss, and keep their best weights; the blog's models run all their epochs.
  ATTNKIT_ARG(int, patience) = 2;
  ATTNKIT_ARG(int, verbose) = 1;
  ATTNKIT_ARG(OutputStream, output) = nullptr;
  // Where the model trains: cpu, cuda:N, or sim (the GPU's code path on the sim executor; slow).
  ATTNKIT_ARG(Device, device) = Device::cpu();
  // FitOptions::checkpoint and resume: a folder for the state of training after every epoch, and
  // whether to continue from the state it holds.
  ATTNKIT_ARG(std::string, checkpoint);
  ATTNKIT_ARG(bool, resume) = false;
};

// Whether every op of zoo model `name` (forward, backward and optimizer step) runs on `device`
// in this build: one step on a tiny copy of the model tells. On false, `why` says what failed.
bool model_runs_on(const std::string& name, Device device, std::string* why = nullptr);

struct Evaluation {
  double loss = 0, accuracy = 0, kappa = 0;
  metrics::ConfusionMatrix confusion;
  metrics::ClassificationReport report;
};

// Test metrics of a model on ids x, one-hot y and the labels behind y.
Evaluation evaluate(Model& model, const Tensor& x, const Tensor& y, const std::vector<int>& labels);

struct TrainResult {
  zoo::ModelSpec spec;
  std::unique_ptr<Model> model;
  History history;
  Evaluation test;
  std::string device;
  int cpu_threads = 1;  // the CPU threads of the ops (attnkit/threads.h)
  int epochs_planned = 0;
};

TrainResult train(const Dataset& dataset, const TrainOptions& options);

// How a model attends to the tokens of one review (positions of padding left out).
struct TokenAttention {
  // "steps": one weight per token (additive attention; self-attention received, averaged over
  // heads and queries); "features": per token, the gate's distribution over features (seed
  // 000's Dense-softmax gating) and, as its one-number summary, the gate's largest weight.
  std::string kind;
  std::vector<std::string> tokens;
  std::vector<double> weights;                    // one per token
  std::vector<std::vector<double>> feature_gates;  // kind "features": [token][feature]
};

// Null when the model has no attention layer. `ids` is one padded review [1, maxlen].
std::unique_ptr<TokenAttention> token_attention(Model& model, const data::Tokenizer& tokenizer, const Tensor& ids);

// ---- runs saved to a folder, and predictions from them

// Writes the model (model.json, model.safetensors), the tokenizer, the stopword list
// (stopwords.txt), the test split as the model reads it (test.safetensors: ids x, labels, and
// the CSV rows they came from, so that evaluating the run needs no segmentation of the
// corpus), the options (run.json, with paths inside the folder relative to it, so that
// the folder can be moved or shipped), the report (report.txt, history.csv, metrics.json) and
// the attention over the first test reviews (attention.json) into `directory`, creating it.
void save_run(const std::string& directory, const TrainResult& result, const Dataset& dataset,
              const DataOptions& data_options);

// A run loaded from its folder: data_options' paths are resolved (the stopword list inside the
// folder; runs saved before it held one name the list where it was).
struct SavedRun {
  std::string model_name;
  std::unique_ptr<Model> model;
  data::Tokenizer tokenizer;
  DataOptions data_options;
  Tensor test_x;                 // ids [N, maxlen]; undefined in runs saved before they kept it
  std::vector<int> test_labels;  // their labels
};
SavedRun load_run(const std::string& directory);

struct Prediction {
  int label = 0;
  double probability = 0;  // of that label
  std::vector<std::string> words;               // after segmentation and stopwords
  // The tokens the model sees (known to the tokenizer, within maxlen). With none, the model
  // sees padding alone and its answer says nothing about the text: callers must say so.
  int known_tokens = 0;
  std::unique_ptr<TokenAttention> attention;    // null for models without attention
};
Prediction predict(Model& model, const data::Tokenizer& tokenizer, const jieba::Segmenter& segmenter,
                   const std::set<std::string>& stopwords, const std::string& text, std::int64_t maxlen);
// The same for many texts: segmented on the CPU's threads, then one forward pass for all of
// them; with `with_attention`, each text's token attention too (a pass per text). An error (text
// that is not UTF-8) names the text's index.
std::vector<Prediction> predict_batch(Model& model, const data::Tokenizer& tokenizer, const jieba::Segmenter& segmenter,
                                      const std::set<std::string>& stopwords, const std::vector<std::string>& texts,
                                      std::int64_t maxlen, bool with_attention);

// A prediction as `predict --input` writes it and `serve` answers it: predicted_label,
// probability, known_tokens, no_known_token and, with `with_attention`, attention {kind, tokens,
// weights, and for gating feature_gates}.
Json prediction_json(const Prediction& prediction, bool with_attention);

// The metrics of a run as one JSON object: model, device, epochs, test_accuracy, kappa,
// epoch_seconds, history, and more.
Json run_summary(const TrainResult& result);

}  // namespace attnkit::sentiment
