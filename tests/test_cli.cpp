// The attnkit command, run as a user runs it: its outputs, its JSON, its saved runs and its
// errors. Tests that need the review data skip where it is absent.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#if ATTNKIT_TEST_SERVE
#include <httplib.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>
#endif

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status;
  std::string output;  // stdout and stderr together
};

CliRun run(const std::string& arguments, const std::string& input = "") {
  std::string command = std::string(ATTNKIT_CLI) + " " + arguments + " 2>&1";
  std::string input_file;
  if (!input.empty()) {
    // One file per process: ctest runs the tests of this file side by side.
    input_file = (fs::temp_directory_path() / ("attnkit_cli_input_" + std::to_string(getpid()) + ".txt")).string();
    std::ofstream(input_file, std::ios::binary) << input;
    command += " < " + input_file;
  }
  FILE* pipe = popen(command.c_str(), "r");
  CliRun r{-1, ""};
  if (pipe == nullptr) return r;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) r.output += buffer;
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!input_file.empty()) fs::remove(input_file);
  return r;
}

std::string data_csv() { return std::string(ATTNKIT_TEST_DATA_DIR) + "/waimai_10k.csv"; }

// A whole file's bytes.
std::string attnkit_read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The last line of the output, parsed as JSON.
nlohmann::json last_json_line(const std::string& output) {
  const std::size_t end = output.find_last_not_of('\n');
  const std::size_t start = output.rfind('\n', end);
  return nlohmann::json::parse(output.substr(start == std::string::npos ? 0 : start + 1, end - start));
}

TEST(Cli, SummaryEndsWithKerasTotals) {
  const CliRun r = run("summary --model bilstm-attention");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Total params: 406,934\nTrainable params: 214,934\nNon-trainable params: 192,000\n"),
            std::string::npos)
      << r.output;
}

TEST(Cli, SegmentPrintsOneJsonArrayPerLine) {
  const CliRun r = run("segment", "很快，好吃，味道足，量大\n没有送水没有送水没有送水\r\n\n");
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  std::vector<nlohmann::json> arrays;
  while (std::getline(lines, line)) arrays.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(arrays.size(), 3u);
  EXPECT_EQ(arrays[0], nlohmann::json({"很快", "，", "好吃", "，", "味道", "足", "，", "量", "大"}));
  EXPECT_EQ(arrays[1], nlohmann::json({"没有", "送水", "没有", "送水", "没有", "送水"}));
  EXPECT_EQ(arrays[2], nlohmann::json::array());
  const CliRun no_hmm = run("segment --no-hmm", "韩冰是好人\n");
  ASSERT_EQ(no_hmm.status, 0) << no_hmm.output;
  EXPECT_EQ(nlohmann::json::parse(no_hmm.output), nlohmann::json({"韩", "冰", "是", "好人"}));
}

TEST(Cli, BadUsageIsAClearError) {
  CliRun r = run("summary --model transformerx");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("attnkit: unknown model 'transformerx' (known: mlp, cnn"), std::string::npos) << r.output;
  r = run("train --model lstm --data /nonexistent/reviews.csv");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/nonexistent/reviews.csv"), std::string::npos) << r.output;
  r = run("train --model lstm --data x.csv --device tpu");
  EXPECT_EQ(r.status, 2) << r.output;  // CLI11 rejects the value
  r = run("train --model lstm --data x.csv --threads 0");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run("segment", "ok\n\xff\xfe\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("stdin, line 2: jieba: the text is not valid UTF-8"), std::string::npos) << r.output;
  r = run("frobnicate");
  EXPECT_NE(r.status, 0);
  // Numbers out of range are refused as they are written, not wrapped or replaced by a default.
  for (const char* epochs : {"0", "-1"}) {
    r = run(std::string("train --model lstm --data x.csv --epochs ") + epochs);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("--epochs"), std::string::npos) << r.output;
  }
  for (const char* seed : {"-1", "18446744073709551616", "1e3"}) {
    r = run(std::string("train --model lstm --data x.csv --seed ") + seed);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("is not a whole number from 0 to 18446744073709551615"), std::string::npos) << r.output;
  }
  r = run("predict --run somewhere");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("predict needs --text or --input"), std::string::npos) << r.output;
  r = run("predict --run somewhere --text x --input y.csv");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run("predict --run somewhere --input y.csv --batch 0");
  EXPECT_EQ(r.status, 2) << r.output;
}

// Output folders are checked before anything trains, and one run at a time writes into one.
TEST(Cli, OutputFoldersAreCheckedAndHeldBeforeTraining) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  CliRun r = run("train --model mlp --epochs 1 --data " + data_csv() + " --report /dev/null/run");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--report /dev/null/run: cannot make the folder"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 1/"), std::string::npos) << r.output;
  r = run("train --model mlp --epochs 1 --data " + data_csv() + " --report " +
          (fs::temp_directory_path() / "attnkit_cli_checkpoint_run").string() + " --checkpoint /dev/null/state");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--checkpoint /dev/null/state: cannot make the folder"), std::string::npos) << r.output;

  // This process holds the folder as a run would: a second run is refused and names the holder.
  const fs::path folder = fs::temp_directory_path() / ("attnkit_cli_held_" + std::to_string(getpid()));
  fs::create_directories(folder);
  const int fd = ::open((folder / ".attnkit.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::pwrite(fd, "4242", 4, 0), 4);
  r = run("train --model mlp --epochs 1 --data " + data_csv() + " --report " + folder.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("another attnkit run is writing there (process 4242)"), std::string::npos) << r.output;
  ::close(fd);  // released: the folder takes a run again
  r = run("train --model mlp --epochs 1 --data " + data_csv() + " --report " + folder.string());
  EXPECT_EQ(r.status, 0) << r.output;
  fs::remove_all(folder);
  fs::remove_all(fs::temp_directory_path() / "attnkit_cli_checkpoint_run");
}

// Data that trains but cannot teach much is named in warnings that stop nothing.
TEST(Cli, DegenerateDataIsSaid) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const std::string stopwords = (fs::path(data_csv()).parent_path() / "hit_stopwords.txt").string();
  const fs::path one_class = fs::temp_directory_path() / ("attnkit_cli_one_class_" + std::to_string(getpid()) + ".csv");
  std::ofstream(one_class) << "label,review\n" << [] {
    std::string rows;
    for (int i = 0; i < 30; ++i) rows += "1,很好吃" + std::to_string(i) + "\n";
    return rows;
  }();
  CliRun r = run("train --model mlp --epochs 1 --data " + one_class.string() + " --stopwords " + stopwords);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("warning: every review has the same label"), std::string::npos) << r.output;
  std::ofstream(one_class) << "label,review\n" << [] {
    std::string rows;
    for (int i = 0; i < 30; ++i) rows += std::to_string(i % 2) + ",的了\n";
    return rows;
  }();
  r = run("train --model mlp --epochs 1 --data " + one_class.string() + " --stopwords " + stopwords);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("warning: no word is left after segmentation and stopwords"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0 distinct words, the 0 most frequent kept"), std::string::npos) << r.output;
  fs::remove(one_class);
}

// On a device, the report says which path each attention layer's op took (ops/attention.h).
TEST(Cli, TrainingOnADeviceSaysEachAttentionPath) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const std::string stopwords = (fs::path(data_csv()).parent_path() / "hit_stopwords.txt").string();
  const fs::path reviews = fs::temp_directory_path() / ("attnkit_cli_paths_" + std::to_string(getpid()) + ".csv");
  std::ofstream(reviews) << "label,review\n" << [] {
    std::string rows;
    for (int i = 0; i < 40; ++i) rows += i % 2 ? "1,很快，好吃，味道足\n" : "0,送餐太慢，菜都凉了\n";
    return rows;
  }();
  CliRun r = run("train --model attention --epochs 1 --device sim --data " + reviews.string() + " --stopwords " +
                 stopwords);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("attention: gating_attention ran its fused kernels"), std::string::npos) << r.output;
  r = run("train --model transformer --epochs 1 --device sim --data " + reviews.string() + " --stopwords " +
          stopwords);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("attention: multi_head_self_attention ran its fused kernels"), std::string::npos) << r.output;
  r = run("train --model attention --epochs 1 --device cpu --data " + reviews.string() + " --stopwords " + stopwords);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("attention: "), std::string::npos) << r.output;
  fs::remove(reviews);
}

#if ATTNKIT_TEST_SERVE
// attnkit serve on a free loopback port, driven by real HTTP requests: health, the model,
// predictions equal to predict's, bad JSON, wrong fields, too many texts, a body over the limit,
// an unknown route, clients at once; then SIGTERM, and a clean exit. Every loop is bounded.
TEST(Cli, ServeAnswersOverHttp) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const fs::path folder = fs::temp_directory_path() / ("attnkit_cli_serve_" + std::to_string(getpid()));
  fs::remove_all(folder);
  const CliRun trained = run("train --model mlp --epochs 1 --data " + data_csv() + " --report " + folder.string());
  ASSERT_EQ(trained.status, 0) << trained.output;

  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t server = fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execl(ATTNKIT_CLI, ATTNKIT_CLI, "serve", "--run", folder.c_str(), "--port", "0", "--threads", "3", "--max-texts",
          "8", "--max-body", "4096", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // The first line names the port; 60 s at most.
  std::string line;
  pollfd readable{out[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos && poll(&readable, 1, 60000) > 0) {
    char buffer[256];
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    line.append(buffer, static_cast<std::size_t>(n));
  }
  const std::size_t colon = line.rfind(':');
  ASSERT_NE(line.find("attnkit: serving mlp from"), std::string::npos) << line;
  const int port = std::stoi(line.substr(colon + 1));

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30);
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");
  auto model = client.Get("/model");
  ASSERT_TRUE(model);
  EXPECT_EQ(nlohmann::json::parse(model->body)["model"], "mlp");
  EXPECT_EQ(nlohmann::json::parse(model->body)["vocabulary_size"], 5999);

  const std::string body = R"({"texts": ["很好吃，送餐也快", "hello"]})";
  auto predicted = client.Post("/predict", body, "application/json");
  ASSERT_TRUE(predicted);
  ASSERT_EQ(predicted->status, 200) << predicted->body;
  const nlohmann::json answer = nlohmann::json::parse(predicted->body);
  ASSERT_EQ(answer["predictions"].size(), 2u);
  const CliRun single = run("predict --run " + folder.string() + " --text '很好吃，送餐也快' --json");
  EXPECT_EQ(answer["predictions"][0]["predicted_label"], last_json_line(single.output)["label"]);
  EXPECT_NEAR(answer["predictions"][0]["probability"].get<double>(),
              last_json_line(single.output)["probability"].get<double>(), 1e-6);
  EXPECT_EQ(answer["predictions"][1]["no_known_token"], true);

  const auto expect_status = [&](const std::string& request, int status, const std::string& fragment) {
    auto r = client.Post("/predict", request, "application/json");
    ASSERT_TRUE(r) << request.substr(0, 80);
    EXPECT_EQ(r->status, status) << request.substr(0, 80);
    EXPECT_NE(nlohmann::json::parse(r->body)["error"].get<std::string>().find(fragment), std::string::npos) << r->body;
  };
  expect_status(R"({"texts": ["a")", 400, "the body is not JSON");
  expect_status(R"({"text": ["a"]})", 400, "\"texts\": an array of strings");
  expect_status(R"({"texts": ["a", 2]})", 400, "text 2 is not a string");
  expect_status("{\"texts\": [\"ok \xff\"]}", 400, "not JSON");  // JSON itself rejects invalid UTF-8
  expect_status(R"({"texts": ["1","2","3","4","5","6","7","8","9"]})", 413, "9 texts: at most 8 a request");
  expect_status("{\"texts\": [\"" + std::string(5000, 'a') + "\"]}", 413, "the body is over 4096 bytes");
  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Clients at once, each a few requests: every answer whole and the same.
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c)
    clients.emplace_back([&] {
      httplib::Client mine("127.0.0.1", port);
      mine.set_read_timeout(30);
      for (int k = 0; k < 5; ++k) {
        auto r = mine.Post("/predict", body, "application/json");
        if (r && r->status == 200 && nlohmann::json::parse(r->body) == answer) ++good;
      }
    });
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(good.load(), 20);

  // SIGTERM: the server stops and exits 0 (waited for 30 s at most).
  ASSERT_EQ(kill(server, SIGTERM), 0);
  int status = -1;
  for (int waited = 0; waited < 300 && waitpid(server, &status, WNOHANG) == 0; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  if (!WIFEXITED(status)) kill(server, SIGKILL), waitpid(server, &status, 0);
  close(out[0]);
  fs::remove_all(folder);
}
#endif

// 100,000 reviews or more: progress lines while they are segmented and tokenised.
TEST(Cli, LargeInputsShowProgress) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const std::string stopwords = (fs::path(data_csv()).parent_path() / "hit_stopwords.txt").string();
  const fs::path large = fs::temp_directory_path() / ("attnkit_cli_large_" + std::to_string(getpid()) + ".csv");
  {
    std::ofstream out(large);
    out << "label,review\n";
    for (int i = 0; i < 100000; ++i) out << i % 2 << "," << (i % 2 ? "很好吃，送餐快" : "太难吃了，送餐慢") << i % 97 << "\n";
  }
  const CliRun r = run("train --model mlp --epochs 1 --data " + large.string() + " --stopwords " + stopwords);
  EXPECT_EQ(r.status, 0) << r.output.substr(0, 2000);
  EXPECT_NE(r.output.find("data: segmented 50000 of 100000 reviews\ndata: segmented 100000 of 100000 reviews\n"
                          "data: tokenising\n"),
            std::string::npos)
      << r.output.substr(0, 2000);
  fs::remove(large);
}

// The zoo prints a progress line after each model and its table once, at the end.
TEST(Cli, ZooPrintsItsTableOnce) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const CliRun r = run("zoo --models mlp,rnn --data " + data_csv());
  ASSERT_EQ(r.status, 0) << r.output;
  std::size_t tables = 0;
  for (std::size_t at = r.output.find("| model | epochs |"); at != std::string::npos;
       at = r.output.find("| model | epochs |", at + 1))
    ++tables;
  EXPECT_EQ(tables, 1u) << r.output;
  EXPECT_NE(r.output.find("zoo: mlp done (1 of 2)"), std::string::npos);
  EXPECT_LT(r.output.find("zoo: rnn done (2 of 2)"), r.output.find("| model | epochs |"));
}

TEST(Cli, CudaWithoutAGpuIsRefused) {
  const CliRun r = run("train --model lstm --data " + data_csv() + " --device cuda");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;
}

TEST(Cli, TrainReportsSavesAndPredicts) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const fs::path report = fs::temp_directory_path() / "attnkit_cli_run";
  fs::remove_all(report);
  const CliRun r = run("train --model bilstm-attention-trainable --epochs 1 --data " + data_csv() + " --report " +
                    report.string() + " --json --threads 1");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json result = last_json_line(r.output);
  for (const char* key : {"model", "device", "epochs", "test_accuracy", "kappa", "epoch_seconds", "history"})
    EXPECT_TRUE(result.contains(key)) << key;
  EXPECT_EQ(result["model"], "bilstm-attention-trainable");
  EXPECT_EQ(result["device"], "cpu");
  EXPECT_EQ(result["cpu_threads"], 1);  // --threads
  EXPECT_EQ(result["epochs"], 1);
  EXPECT_GT(result["test_accuracy"].get<double>(), 0.8);
  EXPECT_EQ(result["epoch_seconds"].size(), 1u);
  EXPECT_NE(r.output.find("precision    recall  f1-score   support"), std::string::npos);
  for (const char* file : {"model.json", "model.safetensors", "tokenizer.json", "run.json", "report.txt", "history.csv",
                           "metrics.json", "attention.json", "stopwords.txt", "test.safetensors"})
    EXPECT_TRUE(fs::exists(report / file)) << file;

  // The saved run, evaluated again, gives the same test accuracy: from the test split it keeps,
  // and from the CSV segmented again.
  EXPECT_TRUE(fs::exists(report / "test.safetensors"));
  const CliRun evaluated = run("evaluate --run " + report.string() + " --json");
  ASSERT_EQ(evaluated.status, 0) << evaluated.output;
  EXPECT_DOUBLE_EQ(last_json_line(evaluated.output)["test_accuracy"].get<double>(), result["test_accuracy"].get<double>());
  const CliRun from_csv = run("evaluate --run " + report.string() + " --data " + data_csv() + " --json");
  ASSERT_EQ(from_csv.status, 0) << from_csv.output;
  EXPECT_DOUBLE_EQ(last_json_line(from_csv.output)["test_accuracy"].get<double>(), result["test_accuracy"].get<double>());
  // predict --input over the whole CSV labels the test rows as evaluate does: the same accuracy.
  const fs::path scored = fs::temp_directory_path() / ("attnkit_cli_scored_" + std::to_string(getpid()) + ".jsonl");
  const CliRun scoring = run("predict --run " + report.string() + " --input " + data_csv() + " --output " + scored.string());
  ASSERT_EQ(scoring.status, 0) << scoring.output;
  std::vector<nlohmann::json> scores;
  std::ifstream scored_file(scored);
  for (std::string line; std::getline(scored_file, line);) scores.push_back(nlohmann::json::parse(line));
  const std::string test_file = attnkit_read(report / "test.safetensors");
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(test_file[i]);
  const nlohmann::json test_header = nlohmann::json::parse(test_file.substr(8, header_length));
  const auto rows_at = test_header["rows"]["data_offsets"][0].get<std::size_t>();
  const auto rows = test_header["rows"]["shape"][0].get<std::size_t>();
  std::size_t right = 0;
  for (std::size_t k = 0; k < rows; ++k) {
    std::int32_t row = 0;
    std::memcpy(&row, test_file.data() + 8 + header_length + rows_at + 4 * k, 4);
    const nlohmann::json& s = scores.at(static_cast<std::size_t>(row));
    right += std::to_string(s["predicted_label"].get<int>()) == s["label"].get<std::string>();
  }
  EXPECT_DOUBLE_EQ(static_cast<double>(right) / static_cast<double>(rows), result["test_accuracy"].get<double>());
  fs::remove(scored);

  const CliRun predicted = run("predict --run " + report.string() + " --text '很好吃，送餐也快，下次还点' --json");
  ASSERT_EQ(predicted.status, 0) << predicted.output;
  const nlohmann::json p = last_json_line(predicted.output);
  EXPECT_EQ(p["label"], 1) << predicted.output;
  EXPECT_GT(p["probability"].get<double>(), 0.5);
  ASSERT_TRUE(p.contains("attention"));
  EXPECT_EQ(p["attention"]["tokens"].size(), p["attention"]["weights"].size());
  // Additive attention over the 20 steps: each token's weight is a share of 1 (padding takes the rest).
  double total = 0;
  for (const auto& w : p["attention"]["weights"]) {
    EXPECT_GT(w.get<double>(), 0.0);
    total += w.get<double>();
  }
  EXPECT_LE(total, 1.0 + 1e-6);

  // A flipped bit in the saved weights is refused, naming the tensor, by evaluate and predict.
  const fs::path damaged = fs::temp_directory_path() / "attnkit_cli_run_damaged";
  fs::remove_all(damaged);
  fs::copy(report, damaged);
  {
    std::fstream weights(damaged / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    weights.seekg(-3, std::ios::end);
    const char byte = static_cast<char>(weights.get() ^ 0x04);
    weights.seekp(-3, std::ios::end);
    weights.put(byte);
  }
  for (const std::string& command : {"evaluate --run " + damaged.string(), "predict --run " + damaged.string() + " --text 好吃"}) {
    const CliRun refused = run(command);
    EXPECT_EQ(refused.status, 1) << refused.output;
    EXPECT_NE(refused.output.find("': its bytes do not match their SHA-256 (the file is damaged)"), std::string::npos)
        << refused.output;
  }
  fs::remove_all(damaged);

  // The folder holds what predict needs and names it relative to itself: moved elsewhere, it
  // predicts the same from any working folder.
  const nlohmann::json run_json = nlohmann::json::parse(std::ifstream(report / "run.json"));
  EXPECT_EQ(run_json["data"]["stopwords"], "stopwords.txt");
  EXPECT_TRUE(fs::path(run_json["data"]["csv"].get<std::string>()).is_absolute());
  const fs::path moved = fs::temp_directory_path() / "attnkit_cli_run_moved";
  fs::remove_all(moved);
  fs::rename(report, moved);
  const CliRun from_moved = run("predict --run " + moved.string() + " --text '很好吃，送餐也快，下次还点' --json");
  ASSERT_EQ(from_moved.status, 0) << from_moved.output;
  EXPECT_EQ(last_json_line(from_moved.output)["probability"], p["probability"]);
  const CliRun from_root = run("predict --run " + moved.string() + " --text - --json", "很好吃，送餐也快，下次还点\n");
  ASSERT_EQ(from_root.status, 0) << from_root.output;
  EXPECT_EQ(last_json_line(from_root.output)["probability"], p["probability"]);

  // Text with no word the model knows: said on stderr and in the JSON, never a bare confident label.
  for (const char* text : {"hello world", "👍👍👍", "", "。。。"}) {
    const CliRun unknown = run("predict --run " + moved.string() + " --text '" + text + "' --json");
    ASSERT_EQ(unknown.status, 0) << unknown.output;
    EXPECT_NE(unknown.output.find("no word of the text is in the model's vocabulary"), std::string::npos) << text;
    EXPECT_NE(unknown.output.find("no known word: label"), std::string::npos) << text;
    EXPECT_EQ(last_json_line(unknown.output)["no_known_token"], true) << text;
    EXPECT_EQ(last_json_line(unknown.output)["known_tokens"], 0) << text;
  }

  // Files of reviews: a CSV (any case of header, other columns carried through, a trailing blank
  // line) as JSON lines or CSV, and lines on stdin; each label that of the review alone.
  const fs::path reviews = fs::temp_directory_path() / "attnkit_cli_reviews.csv";
  std::ofstream(reviews) << "id,Review,label\n7,很好吃，送餐也快,1\n8,\"太难吃了, 再也不点\",0\n9,hello,1\n\n";
  const CliRun jsonl = run("predict --run " + moved.string() + " --input " + reviews.string() + " --batch 2 --weights");
  ASSERT_EQ(jsonl.status, 0) << jsonl.output;
  EXPECT_NE(jsonl.output.find("3 reviews classified; 1 with no word in the model's vocabulary"), std::string::npos)
      << jsonl.output;
  std::vector<nlohmann::json> records;
  std::istringstream lines(jsonl.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 3u) << jsonl.output;
  const char* const texts[] = {"很好吃，送餐也快", "太难吃了, 再也不点", "hello"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(records[i]["id"], std::to_string(7 + i));
    EXPECT_EQ(records[i]["Review"], texts[i]);
    EXPECT_EQ(records[i]["label"], i == 1 ? "0" : "1");  // the data's own label, untouched
    const CliRun single = run("predict --run " + moved.string() + " --text '" + texts[i] + "' --json");
    EXPECT_EQ(records[i]["predicted_label"], last_json_line(single.output)["label"]) << texts[i];
    EXPECT_NEAR(records[i]["probability"].get<double>(), last_json_line(single.output)["probability"].get<double>(),
                1e-6);
    EXPECT_EQ(records[i]["no_known_token"], i == 2);
  }
  EXPECT_EQ(records[0]["attention"]["tokens"].size(), records[0]["attention"]["weights"].size());
  const fs::path csv_out = fs::temp_directory_path() / "attnkit_cli_predictions.csv";
  const CliRun as_csv =
      run("predict --run " + moved.string() + " --input " + reviews.string() + " --format csv --output " + csv_out.string());
  ASSERT_EQ(as_csv.status, 0) << as_csv.output;
  std::ifstream csv_file(csv_out);
  std::string header, first;
  std::getline(csv_file, header);
  std::getline(csv_file, first);
  EXPECT_EQ(header, "id,Review,label,predicted_label,probability,known_tokens,no_known_token");
  EXPECT_EQ(first.rfind("7,很好吃，送餐也快,1,", 0), 0u) << first;
  const CliRun from_stdin = run("predict --run " + moved.string() + " --input -", "好吃\n太难吃了\n");
  ASSERT_EQ(from_stdin.status, 0) << from_stdin.output;
  EXPECT_NE(from_stdin.output.find("\"review\":\"太难吃了\""), std::string::npos) << from_stdin.output;
  fs::remove(reviews);
  fs::remove(csv_out);
  fs::remove_all(moved);
}

// A run killed with SIGKILL in its second epoch and run again with --resume ends with the
// model and the test report of a run that was never interrupted.
TEST(Cli, AKilledRunResumedEndsAsAnUninterruptedOne) {
  if (!fs::exists(data_csv())) GTEST_SKIP() << "no " << data_csv();
  const fs::path whole = fs::temp_directory_path() / "attnkit_cli_whole";
  const fs::path killed = fs::temp_directory_path() / "attnkit_cli_killed";
  fs::remove_all(whole);
  fs::remove_all(killed);
  const std::string train = "train --model lstm --epochs 3 --device cpu --data " + data_csv() + " --report ";
  const CliRun uninterrupted = run(train + whole.string());
  ASSERT_EQ(uninterrupted.status, 0) << uninterrupted.output;

  // The same run in a process of its own, killed as soon as its first epoch is checkpointed.
  const std::string checkpoint = (killed / "checkpoint" / "training_state.safetensors").string();
  const std::string command = "exec " + std::string(ATTNKIT_CLI) + " " + train + killed.string() + " >/dev/null 2>&1";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (!fs::exists(checkpoint)) {
    ASSERT_EQ(waitpid(child, &status, WNOHANG), 0) << "the run ended before its first checkpoint";
    usleep(1000);
  }
  kill(child, SIGKILL);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_FALSE(fs::exists(killed / "model.safetensors")) << "the run finished before the kill";

  const CliRun resumed = run(train + killed.string() + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from the checkpoint in " + (killed / "checkpoint").string()),
            std::string::npos)
      << resumed.output;
  const auto contents = [](const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(contents(killed / "model.safetensors"), contents(whole / "model.safetensors"));
  EXPECT_EQ(contents(killed / "report.txt"), contents(whole / "report.txt"));
  const CliRun nothing = run("train --model lstm --epochs 1 --device cpu --data " + data_csv() + " --report " +
                             (fs::temp_directory_path() / "attnkit_cli_none").string() + " --resume");
  EXPECT_NE(nothing.output.find("no checkpoint yet in"), std::string::npos) << nothing.output;
  EXPECT_EQ(run("train --model lstm --data " + data_csv() + " --resume").status, 2);
  fs::remove_all(whole);
  fs::remove_all(killed);
  fs::remove_all(fs::temp_directory_path() / "attnkit_cli_none");
}

}  // namespace
