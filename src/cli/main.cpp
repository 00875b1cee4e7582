// attnkit: the command line of the sentiment pipeline.
//
//   attnkit train --model NAME --data CSV [--epochs N] [--device auto|cpu|cuda[:N]|sim] [--split-seed S] [--seed S]
//                 [--report DIR] [--checkpoint DIR] [--resume] [--json] [--threads N]
//   attnkit zoo --data CSV [--models a,b,...] [--device ...] [--split-seed S] [--seed S] [--report DIR] [--json]
//               [--threads N]
//   attnkit evaluate --run DIR [--data CSV] [--json] [--threads N]
//   attnkit predict --run DIR --text TEXT|- [--json] [--threads N]
//   attnkit predict --run DIR --input FILE|- [--output FILE|-] [--format jsonl|csv] [--batch N] [--weights]
//                   [--threads N]
//   attnkit serve --run DIR [--host H] [--port N] [--threads N] [--max-texts N] [--max-body BYTES]
//   attnkit segment [--no-hmm]          (lines on stdin; one JSON array of tokens per line)
//   attnkit summary --model NAME
//
// Every failure is one line on stderr naming the problem, and exit status 1 (2 for a command
// line that cannot be parsed).
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "attnkit/text.h"
#if ATTNKIT_WITH_SERVE
#include "cli/serve.h"
#endif

namespace fs = std::filesystem;
using namespace attnkit;

namespace {

// ---------------------------------------------------------------- devices

// Where `model` trains. "auto" is the GPU when one is present and every op of the model runs
// there, else the cpu; "cuda" (or "cuda:N") and "sim" must be able to run the model.
Device resolve_device(const std::string& requested, const std::string& model) {
  if (requested == "cpu") return Device::cpu();
  std::string why;
  if (requested == "auto") {
    if (cuda_device_count() == 0) return Device::cpu();
    if (sentiment::model_runs_on(model, Device::cuda(), &why)) return Device::cuda();
    std::cout << "device: " << model << " trains on the cpu: not every op of it runs on cuda yet (" << why << ")\n";
    return Device::cpu();
  }
  const Device device = Device::parse(requested);
  if (device.is_cuda())
    ATTNKIT_CHECK(device.index < cuda_device_count(), "--device ", requested, ": no such CUDA device (",
                  cuda_status(), ")");
  ATTNKIT_CHECK(sentiment::model_runs_on(model, device, &why), "--device ", requested, ": ", model,
                " cannot train there: ", why);
  return device;
}

// --device: auto, cpu, cuda, cuda:N or sim.
bool valid_device_name(const std::string& name) {
  if (name == "auto") return true;
  try {
    Device::parse(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

const char* const kDeviceHelp = "auto (the GPU when the model runs there, else the cpu), cpu, cuda, cuda:N, or sim";

// A seed: a whole number in [0, 2^64 - 1], checked as written (CLI11 alone wraps -1 around).
const CLI::Validator kSeedCheck(
    [](std::string& text) {
      std::uint64_t value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      const bool whole = !text.empty() && error == std::errc() && end == text.data() + text.size();
      return whole ? std::string() : "\"" + text + "\" is not a whole number from 0 to 18446744073709551615";
    },
    "SEED");
const CLI::Validator kDeviceCheck(
    [](std::string& name) { return valid_device_name(name) ? std::string() : "unknown device \"" + name + "\""; },
    "DEVICE");

// ---------------------------------------------------------------- reports

// Finds plot_report.py: $ATTNKIT_PLOT_SCRIPT, the source tree's, or the installed one.
std::string plot_script(const char* argv0) {
  if (const char* env = std::getenv("ATTNKIT_PLOT_SCRIPT")) return env;
  if (fs::exists(ATTNKIT_SOURCE_PLOT_SCRIPT)) return ATTNKIT_SOURCE_PLOT_SCRIPT;
  const fs::path installed = fs::path(argv0).parent_path() / ".." / "share" / "attnkit" / "plot_report.py";
  return fs::exists(installed) ? installed.string() : "";
}

// Draws the report's plots with matplotlib; a missing python or matplotlib costs the plots only.
void draw_plots(const std::string& directory, const char* argv0) {
  const std::string script = plot_script(argv0);
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  if (script.empty()) {
    std::cout << "plots skipped: plot_report.py not found (set ATTNKIT_PLOT_SCRIPT)\n";
    return;
  }
  const std::string command = python + " '" + script + "' '" + directory + "'";
  if (std::system(command.c_str()) != 0)
    std::cout << "plots skipped: '" << command << "' failed (python3-matplotlib installs what it needs)\n";
}

void print_result(const sentiment::TrainResult& r) {
  std::cout << "\nmodel " << r.spec.name << " (" << r.spec.blog_name << ") on " << r.device << " ("
            << r.cpu_threads << (r.cpu_threads == 1 ? " CPU thread): " : " CPU threads): ")
            << r.history.epochs() << (r.history.epochs() == 1 ? " epoch" : " epochs")
            << (r.history.epochs() < r.epochs_planned ? " (stopped early, best weights restored)" : "") << "\n"
            << "test accuracy " << r.test.accuracy << ", Cohen's kappa " << r.test.kappa << ", test loss " << r.test.loss
            << "\n\nconfusion matrix (rows: true label 0, 1; columns: predicted 0, 1)\n"
            << "  " << r.test.confusion.at(0, 0) << "  " << r.test.confusion.at(0, 1) << "\n"
            << "  " << r.test.confusion.at(1, 0) << "  " << r.test.confusion.at(1, 1) << "\n\n"
            << r.test.report.str();
  // On a device, which path each attention op took (ops/attention.h), as its *_supports says.
  const Device device = Device::parse(r.device);
  if (!device.is_cpu())
    for (const auto& [layer, support] : r.model->attention_paths(device, 32))
      std::cout << "attention: " << layer << " ran its " << ops::attention_path_name(support.path)
                << (support.path == ops::AttentionPath::fused ? " kernels" : " path")
                << (support.why.empty() ? "" : " (" + support.why + ")") << "\n";
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (const double v : values) sum += v;
  return values.empty() ? 0.0 : sum / double(values.size());
}

// ---------------------------------------------------------------- output folders

// A folder that a run writes into, made if missing, checked writable before anything is
// trained (a probe file written and removed), and held by this process for the run: a second
// run into it is refused while the first runs. The hold is an flock on FOLDER/.attnkit.lock, which
// the system releases when the process ends however it ends, so a killed run leaves no stale lock.
class FolderHold {
 public:
  FolderHold(const std::string& folder, const char* option) {
    std::error_code error;
    fs::create_directories(folder, error);
    ATTNKIT_CHECK(!error, option, " ", folder, ": cannot make the folder: ", error.message());
    const fs::path probe = fs::path(folder) / ".attnkit.write-test";
    {
      std::ofstream out(probe, std::ios::binary);
      out << "probe";
      ATTNKIT_CHECK(out.good(), option, " ", folder, ": the folder is not writable");
    }
    fs::remove(probe, error);
    const std::string lock = (fs::path(folder) / ".attnkit.lock").string();
    fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ATTNKIT_CHECK(fd_ >= 0, option, " ", folder, ": cannot open ", lock);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      ::close(fd_);
      ATTNKIT_FAIL(option, " ", folder, ": another attnkit run is writing there (process ",
                   n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string("?"),
                   "); wait for it to end, or choose another folder");
    }
    const std::string me = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
      // The pid only makes the message of a refused run clearer; the lock holds without it.
    }
  }
  ~FolderHold() {
    if (fd_ >= 0) ::close(fd_);
  }
  FolderHold(const FolderHold&) = delete;
  FolderHold& operator=(const FolderHold&) = delete;

 private:
  int fd_ = -1;
};

// Warnings about data that trains but cannot teach much; they stop nothing.
void warn_about(const sentiment::Dataset& d) {
  const auto classes = [](const std::vector<int>& labels) { return std::set<int>(labels.begin(), labels.end()).size(); };
  if (classes(d.labels) < 2)
    std::cerr << "attnkit: warning: every review has the same label: the model can only learn to give it\n";
  else if (classes(d.test_labels) < 2)
    std::cerr << "attnkit: warning: the test split holds one class only: its kappa and per-class figures mean little\n";
  if (d.tokenizer.words().empty())
    std::cerr << "attnkit: warning: no word is left after segmentation and stopwords: the model sees padding alone\n";
}

// ---------------------------------------------------------------- commands

struct DataArguments {
  std::string csv, stopwords, jieba_directory = jieba::default_directory();
  std::uint64_t split_seed = 0, seed = 0;

  void add_to(CLI::App& command, bool required) {
    command.add_option("--data", csv, "CSV of labelled reviews (columns label,review)")->required(required);
    command.add_option("--stopwords", stopwords, "stopword list (default: hit_stopwords.txt beside the CSV)");
    command.add_option("--jieba-dir", jieba_directory, "folder of jieba's dict.txt and finalseg/ tables");
    command.add_option("--split-seed", split_seed, "random_state of the train/test split (default 0, the blog's)")
        ->check(kSeedCheck);
    command.add_option("--seed", seed, "seed of the initial weights, the dropout masks and the shuffles")
        ->check(kSeedCheck);
  }
  sentiment::DataOptions options() const {
    return sentiment::DataOptions()
        .csv(csv)
        .stopwords(stopwords)
        .jieba_directory(jieba_directory)
        .seed(split_seed)
        .progress(&std::cout);
  }
};

struct TrainArguments {
  std::string model, device = "auto", report, checkpoint;
  int epochs = 0;
  bool json = false, resume = false;
};

int run_train(const DataArguments& data, TrainArguments train, const char* argv0) {
  zoo::spec(train.model);  // an unknown name fails before the data is read
  if (train.checkpoint.empty() && !train.report.empty())
    train.checkpoint = (fs::path(train.report) / "checkpoint").string();
  if (train.resume && train.checkpoint.empty()) {
    std::cerr << "attnkit: --resume needs the run's --report or --checkpoint folder\n";
    return 2;
  }
  const Device resolved = resolve_device(train.device, train.model);
  std::unique_ptr<FolderHold> report_hold, checkpoint_hold;
  if (!train.report.empty()) report_hold = std::make_unique<FolderHold>(train.report, "--report");
  if (!train.checkpoint.empty() && fs::weakly_canonical(train.checkpoint) != fs::weakly_canonical(train.report))
    checkpoint_hold = std::make_unique<FolderHold>(train.checkpoint, "--checkpoint");
  const sentiment::DataOptions options = data.options();
  const sentiment::Dataset dataset = sentiment::prepare(options);
  warn_about(dataset);
  std::cout << "data: " << dataset.reviews.size() << " reviews, " << dataset.x_train.size(0) << " for training ("
            << "the last 20% of them for validation), " << dataset.x_test.size(0) << " for testing; "
            << dataset.tokenizer.words().size() << " distinct words, the " << dataset.tokenizer.vocabulary_size()
            << " most frequent kept\n";
  if (train.resume)
    std::cout << (fs::exists(training_state_path(train.checkpoint))
                      ? "resuming from the checkpoint in "
                      : "no checkpoint yet in ")
              << train.checkpoint << "\n";
  sentiment::TrainResult result = sentiment::train(dataset, sentiment::TrainOptions()
                                                                .model(train.model)
                                                                .epochs(train.epochs)
                                                                .seed(data.seed)
                                                                .device(resolved)
                                                                .checkpoint(train.checkpoint)
                                                                .resume(train.resume));
  print_result(result);
  if (!train.report.empty()) {
    sentiment::save_run(train.report, result, dataset, options);
    draw_plots(train.report, argv0);
    std::cout << "report written to " << train.report << "\n";
  }
  if (train.json) std::cout << sentiment::run_summary(result).dump() << "\n";
  return 0;
}

int run_zoo(const DataArguments& data, std::vector<std::string> models, const std::string& device,
            const std::string& report, bool json, const char* argv0) {
  if (models.empty()) models = zoo::model_names();
  for (const std::string& name : models) zoo::spec(name);
  std::unique_ptr<FolderHold> report_hold;
  if (!report.empty()) report_hold = std::make_unique<FolderHold>(report, "--report");
  const sentiment::DataOptions options = data.options();
  const sentiment::Dataset dataset = sentiment::prepare(options);
  warn_about(dataset);
  Json results = Json::array();
  std::ostringstream table;
  table << "| model | epochs | test accuracy | blog accuracy | Cohen's kappa | parameters (trainable) | s/epoch | device |\n"
        << "|---|---|---|---|---|---|---|---|\n";
  for (const std::string& name : models) {
    std::cout << "\n==== " << name << "\n";
    sentiment::TrainResult r = sentiment::train(
        dataset, sentiment::TrainOptions().model(name).seed(data.seed).device(resolve_device(device, name)));
    print_result(r);
    if (!report.empty()) {
      const std::string dir = (fs::path(report) / name).string();
      sentiment::save_run(dir, r, dataset, options);
      draw_plots(dir, argv0);
    }
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %d%s | %.4f | %s | %.4f | %lld (%lld) | %.2f | %s |\n", name.c_str(),
                  r.history.epochs(), r.history.epochs() < r.epochs_planned ? " (early stop)" : "", r.test.accuracy,
                  r.spec.blog_accuracy > 0 ? std::to_string(r.spec.blog_accuracy).substr(0, 6).c_str() : "-",
                  r.test.kappa, static_cast<long long>(r.model->count_params()),
                  static_cast<long long>(r.model->count_trainable_params()), mean(r.history.epoch_seconds),
                  r.device.c_str());
    table << row;
    results.push_back(sentiment::run_summary(r));
    std::cout << "\nzoo: " << name << " done (" << results.size() << " of " << models.size() << ")\n" << std::flush;
  }
  std::cout << "\n" << table.str();
  if (!report.empty()) write_file_atomically((fs::path(report) / "zoo.md").string(), table.str());
  if (json) std::cout << Json{{"models", results}}.dump() << "\n";
  return 0;
}

int run_evaluate(const std::string& run_dir, const std::string& csv, bool json) {
  sentiment::SavedRun run = sentiment::load_run(run_dir);
  sentiment::Evaluation e;
  std::int64_t reviews = 0;
  if (csv.empty() && run.test_x.defined()) {
    // The run's own test split, kept as ids: nothing to segment again.
    e = sentiment::evaluate(*run.model, run.test_x, data::one_hot(run.test_labels, 2), run.test_labels);
    reviews = run.test_x.size(0);
  } else {
    // Another CSV, or a run saved before it kept its split: the saved tokenizer and split seed
    // give back the test set of these reviews.
    sentiment::DataOptions options = run.data_options;
    if (!csv.empty()) options.csv(csv);
    sentiment::Dataset dataset = sentiment::prepare(options);
    const Tensor x = data::pad_sequences(run.tokenizer.texts_to_sequences(dataset.cut), options.maxlen());
    e = sentiment::evaluate(*run.model, data::take(x, dataset.split.test), dataset.y_test, dataset.test_labels);
    reviews = dataset.x_test.size(0);
  }
  std::cout << "model " << run.model_name << " from " << run_dir << " on " << reviews
            << " test reviews: accuracy " << e.accuracy << ", Cohen's kappa " << e.kappa << ", loss " << e.loss
            << "\n\n" << e.report.str();
  if (json)
    std::cout << Json{{"model", run.model_name}, {"test_accuracy", e.accuracy}, {"kappa", e.kappa}, {"test_loss", e.loss}}.dump()
              << "\n";
  return 0;
}

// What the command says of a review whose words the model does not know.
constexpr const char* kNoKnownWord =
    "no word of the text is in the model's vocabulary: the model saw padding alone, and its answer says nothing "
    "about this text";

int run_predict_text(const sentiment::SavedRun& run, const jieba::Segmenter& segmenter,
                     const std::set<std::string>& stopwords, std::string text, bool json) {
  if (text == "-") {  // the review from standard input
    std::ostringstream in;
    in << std::cin.rdbuf();
    text = in.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  }
  const sentiment::Prediction p =
      sentiment::predict(*run.model, run.tokenizer, segmenter, stopwords, text, run.data_options.maxlen());
  Json out{{"model", run.model_name},     {"label", p.label}, {"probability", p.probability},
           {"known_tokens", p.known_tokens}, {"no_known_token", p.known_tokens == 0}, {"words", p.words}};
  if (p.known_tokens == 0) {
    std::cerr << "attnkit: " << kNoKnownWord << "\n";
    std::cout << "no known word: label " << p.label << " and probability " << p.probability
              << " are the model's answer to an empty review\n";
  } else {
    std::cout << "label " << p.label << " (" << (p.label == 1 ? "positive" : "negative") << "), probability "
              << p.probability << "\n";
  }
  if (p.attention && p.known_tokens > 0) {
    std::cout << (p.attention->kind == "steps" ? "attention over the tokens:\n"
                                               : "largest gate weight at each token (Dense-softmax gating):\n");
    for (std::size_t i = 0; i < p.attention->tokens.size(); ++i)
      std::cout << "  " << p.attention->tokens[i] << "\t" << p.attention->weights[i] << "\n";
    out["attention"] = sentiment::prediction_json(p, true)["attention"];
  }
  if (json) std::cout << out.dump() << "\n";
  return 0;
}

// A CSV field, quoted when it must be (RFC 4180).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

struct BatchOptions {
  std::string input, output = "-", format = "jsonl";
  std::int64_t batch = 256;
  bool weights = false;
};

// Reviews from a CSV (its `review` column; every column is carried to the output, beside
// predicted_label, probability, known_tokens and no_known_token) or one a line, classified
// `batch` at a time and written as they are done.
int run_predict_input(const sentiment::SavedRun& run, const jieba::Segmenter& segmenter,
                      const std::set<std::string>& stopwords, const BatchOptions& o) {
  const bool from_stdin = o.input == "-";
  const bool csv_input = !from_stdin && fs::path(o.input).extension() == ".csv";
  std::vector<std::string> columns{"review"};
  std::vector<std::vector<std::string>> rows;  // csv_input: every row; else filled a batch at a time
  std::size_t review_column = 0;
  if (csv_input) {
    data::CsvTable table = data::read_csv(o.input);
    columns = table.header;
    review_column = data::column_of(table, o.input, "review");
    rows = std::move(table.rows);
  }
  std::ifstream file;
  if (!from_stdin && !csv_input) {
    file.open(o.input, std::ios::binary);
    ATTNKIT_CHECK(file.good(), "cannot open '", o.input, "'");
  }
  std::istream& lines = from_stdin ? std::cin : file;
  std::ofstream output_file;
  if (o.output != "-") {
    output_file.open(o.output, std::ios::binary | std::ios::trunc);
    ATTNKIT_CHECK(output_file.good(), "cannot write '", o.output, "'");
  }
  std::ostream& out = o.output == "-" ? std::cout : output_file;
  if (o.format == "csv") {
    for (const std::string& c : columns) out << csv_field(c) << ",";
    out << "predicted_label,probability,known_tokens,no_known_token" << (o.weights ? ",tokens,weights" : "") << "\n";
  }

  std::size_t next_row = 0, done = 0, unknown = 0;
  std::int64_t line_number = 0;
  for (;;) {
    // The next batch of reviews, with the row each came from.
    std::vector<std::vector<std::string>> batch_rows;
    if (csv_input) {
      while (next_row < rows.size() && static_cast<std::int64_t>(batch_rows.size()) < o.batch)
        batch_rows.push_back(std::move(rows[next_row++]));
    } else {
      std::string line;
      while (static_cast<std::int64_t>(batch_rows.size()) < o.batch && std::getline(lines, line)) {
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        batch_rows.push_back({line});
      }
    }
    if (batch_rows.empty()) break;
    std::vector<std::string> texts;
    for (const auto& row : batch_rows) texts.push_back(row[review_column]);
    std::vector<sentiment::Prediction> predictions;
    try {
      predictions = sentiment::predict_batch(*run.model, run.tokenizer, segmenter, stopwords, texts,
                                             run.data_options.maxlen(), o.weights);
    } catch (const Error& e) {
      ATTNKIT_FAIL("'", o.input, "', the batch from review ", done + 1, ": ", e.message());
    }
    for (std::size_t k = 0; k < predictions.size(); ++k) {
      const sentiment::Prediction& p = predictions[k];
      unknown += p.known_tokens == 0;
      if (o.format == "csv") {
        for (const std::string& field : batch_rows[k]) out << csv_field(field) << ",";
        out << p.label << "," << p.probability << "," << p.known_tokens << "," << (p.known_tokens == 0 ? 1 : 0);
        if (o.weights) {
          const Json tokens = p.attention ? Json(p.attention->tokens) : Json::array();
          const Json weights = p.attention ? Json(p.attention->weights) : Json::array();
          out << "," << csv_field(tokens.dump()) << "," << csv_field(weights.dump());
        }
        out << "\n";
      } else {
        Json record = Json::object();
        for (std::size_t c = 0; c < columns.size(); ++c) record[columns[c]] = batch_rows[k][c];
        record.update(sentiment::prediction_json(p, o.weights));
        out << record.dump() << "\n";
      }
    }
    done += predictions.size();
    out.flush();
  }
  ATTNKIT_CHECK(out.good(), "cannot write '", o.output, "'");
  std::cerr << "attnkit: " << done << " reviews classified";
  if (unknown > 0) std::cerr << "; " << unknown << " with no word in the model's vocabulary (flagged no_known_token)";
  std::cerr << "\n";
  return 0;
}

int run_predict(const std::string& run_dir, const std::string& text, const BatchOptions& batch,
                const std::string& jieba_directory, bool json) {
  const sentiment::SavedRun run = sentiment::load_run(run_dir);
  const jieba::Segmenter segmenter(jieba_directory);
  const std::set<std::string> stopwords = data::read_stopwords(run.data_options.stopwords());
  if (!batch.input.empty()) return run_predict_input(run, segmenter, stopwords, batch);
  return run_predict_text(run, segmenter, stopwords, text, json);
}

int run_segment(bool hmm, const std::string& jieba_directory) {
  const jieba::Segmenter segmenter(jieba_directory);
  std::string line;
  for (std::int64_t number = 1; std::getline(std::cin, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      std::cout << Json(segmenter.cut(line, hmm)).dump() << "\n";
    } catch (const Error& e) {
      ATTNKIT_FAIL("stdin, line ", number, ": ", e.message());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"attnkit: attention-based sentiment models of Chinese reviews, in C++"};
  app.require_subcommand(1);
  // The CPU threads of the ops (attnkit/threads.h), for the commands that compute.
  int cpu_threads = 0;
  auto add_threads_option = [&cpu_threads](CLI::App& command) {
    command.add_option("--threads", cpu_threads,
                       "CPU threads of the ops (default: ATTNKIT_NUM_THREADS, else the CPUs this process may use)")
        ->check(CLI::Range(1, 1024));
  };

  DataArguments train_data;
  TrainArguments train_arguments;
  CLI::App* train = app.add_subcommand("train", "train one model of the zoo and report on the test set");
  train->add_option("--model", train_arguments.model, "model name (see attnkit summary --help)")->required();
  train_data.add_to(*train, true);
  train->add_option("--epochs", train_arguments.epochs, "epochs (default: the blog's count for the model)")
      ->check(CLI::Range(1, 100000));
  train->add_option("--device", train_arguments.device, kDeviceHelp)->check(kDeviceCheck);
  train->add_option("--report", train_arguments.report, "folder for the model, the report and the plots");
  train->add_option("--checkpoint", train_arguments.checkpoint,
                    "folder for the state of training after every epoch (default: REPORT/checkpoint)");
  train->add_flag("--resume", train_arguments.resume,
                  "continue an interrupted run from its checkpoint (the same options otherwise)");
  train->add_flag("--json", train_arguments.json, "end with the results as one JSON object");
  add_threads_option(*train);

  DataArguments zoo_data;
  std::vector<std::string> zoo_models;
  std::string zoo_device = "auto", zoo_report;
  bool zoo_json = false;
  CLI::App* zoo_command = app.add_subcommand("zoo", "train every model (or --models) and print a table");
  zoo_data.add_to(*zoo_command, true);
  zoo_command->add_option("--models", zoo_models, "comma-separated model names (default: all)")->delimiter(',');
  zoo_command->add_option("--device", zoo_device, kDeviceHelp)->check(kDeviceCheck);
  zoo_command->add_option("--report", zoo_report, "folder for one report per model and the table");
  zoo_command->add_flag("--json", zoo_json, "end with the results as one JSON object");
  add_threads_option(*zoo_command);

  std::string evaluate_run, evaluate_csv;
  bool evaluate_json = false;
  CLI::App* evaluate = app.add_subcommand("evaluate", "evaluate a saved run on its test set");
  evaluate->add_option("--run", evaluate_run, "folder written by train --report")->required();
  evaluate->add_option("--data", evaluate_csv, "the CSV (default: the one the run was trained on)");
  evaluate->add_flag("--json", evaluate_json, "end with the results as one JSON object");
  add_threads_option(*evaluate);

  std::string predict_run, predict_text, predict_jieba = jieba::default_directory();
  BatchOptions predict_batch;
  bool predict_json = false;
  CLI::App* predict = app.add_subcommand("predict", "classify a review, or a file of them, with a saved run");
  predict->add_option("--run", predict_run, "folder written by train --report")->required();
  CLI::Option* text_option = predict->add_option("--text", predict_text, "the review (- reads it from stdin)");
  CLI::Option* input_option =
      predict->add_option("--input", predict_batch.input,
                          "reviews: a .csv file with a review column (other columns carried through), or one "
                          "review a line (a file, or - for stdin)");
  text_option->excludes(input_option);
  predict->add_option("--output", predict_batch.output, "where the predictions go (default -, stdout)");
  predict->add_option("--format", predict_batch.format, "jsonl (default) or csv")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  predict->add_option("--batch", predict_batch.batch, "reviews a forward pass (default 256)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  predict->add_flag("--weights", predict_batch.weights, "with --input: each review's token attention too");
  predict->add_option("--jieba-dir", predict_jieba, "folder of jieba's dict.txt and finalseg/ tables");
  predict->add_flag("--json", predict_json, "with --text: end with the prediction as one JSON object");
  add_threads_option(*predict);

#if ATTNKIT_WITH_SERVE
  cli::ServeOptions serve_options;
  serve_options.jieba_directory = jieba::default_directory();
  CLI::App* serve = app.add_subcommand("serve", "answer predictions of a saved run over HTTP (POST /predict)");
  serve->add_option("--run", serve_options.run, "folder written by train --report")->required();
  serve->add_option("--host", serve_options.host, "address to listen on (default 127.0.0.1)");
  serve->add_option("--port", serve_options.port, "port (default 8080; 0: any free one, printed)")
      ->check(CLI::Range(0, 65535));
  serve->add_option("--threads", serve_options.threads, "requests served at once (default 4)")->check(CLI::Range(1, 256));
  serve->add_option("--max-texts", serve_options.max_texts, "texts a request (default 1024)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  serve->add_option("--max-body", serve_options.max_body, "bytes a request body (default 4 MiB)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  serve->add_option("--jieba-dir", serve_options.jieba_directory, "folder of jieba's dict.txt and finalseg/ tables");
#endif

  bool segment_no_hmm = false;
  std::string segment_jieba = jieba::default_directory();
  CLI::App* segment = app.add_subcommand("segment", "segment lines from stdin as jieba.lcut does");
  segment->add_flag("--no-hmm", segment_no_hmm, "no HMM for unknown words (jieba.lcut(text, HMM=False))");
  segment->add_option("--jieba-dir", segment_jieba, "folder of jieba's dict.txt and finalseg/ tables");

  std::string summary_model;
  std::string names;
  for (const std::string& n : zoo::model_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* summary = app.add_subcommand("summary", "print a model's layers and parameters as Keras does");
  summary->add_option("--model", summary_model, "one of: " + names)->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; CLI11 has printed the reason
  }
  try {
    if (cpu_threads > 0) set_num_threads(cpu_threads);
    if (train->parsed()) return run_train(train_data, train_arguments, argv[0]);
    if (zoo_command->parsed()) return run_zoo(zoo_data, zoo_models, zoo_device, zoo_report, zoo_json, argv[0]);
    if (evaluate->parsed()) return run_evaluate(evaluate_run, evaluate_csv, evaluate_json);
    if (predict->parsed()) {
      if (text_option->count() == 0 && input_option->count() == 0) {
        std::cerr << "attnkit: predict needs --text or --input\n";
        return 2;
      }
      return run_predict(predict_run, predict_text, predict_batch, predict_jieba, predict_json);
    }
    if (segment->parsed()) return run_segment(!segment_no_hmm, segment_jieba);
#if ATTNKIT_WITH_SERVE
    if (serve->parsed()) return cli::run_serve(serve_options);
#endif
    if (summary->parsed()) {
      std::cout << zoo::build(summary_model)->summary();
      return 0;
    }
  } catch (const Error& e) {
    std::cerr << "attnkit: " << e.message() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "attnkit: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
