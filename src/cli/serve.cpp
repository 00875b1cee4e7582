// attnkit serve (see serve.h). Requests run on cpp-httplib's pool of `threads` workers; the
// model answers one batch at a time (a mutex around segmentation and the forward pass: the
// model's buffers are not shared between threads). SIGTERM and SIGINT are taken by one thread
// through sigwait, which stops the server from outside any signal handler.
#include "cli/serve.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "attnkit/error.h"
#include "attnkit/sentiment.h"

namespace attnkit::cli {
namespace {

void answer(httplib::Response& response, int status, const Json& body) {
  response.status = status;
  // An error message may quote bytes that are not UTF-8: they become U+FFFD, not an exception.
  response.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void answer_error(httplib::Response& response, int status, const std::string& message) {
  answer(response, status, Json{{"error", message}});
}

// The texts of a /predict body, or a 4xx status and the reason.
struct PredictRequest {
  std::vector<std::string> texts;
  bool weights = false;
  int status = 200;
  std::string error;
};

PredictRequest parse_predict(const std::string& body, std::int64_t max_texts) {
  PredictRequest r;
  const auto fail = [&](int status, std::string message) {
    r.status = status;
    r.error = std::move(message);
    return r;
  };
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::exception& e) {
    return fail(400, std::string("the body is not JSON: ") + e.what());
  }
  if (!json.is_object() || !json.contains("texts") || !json["texts"].is_array())
    return fail(400, "the body must be a JSON object with \"texts\": an array of strings");
  const Json& texts = json["texts"];
  if (static_cast<std::int64_t>(texts.size()) > max_texts)
    return fail(413, std::to_string(texts.size()) + " texts: at most " + std::to_string(max_texts) + " a request");
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (!texts[i].is_string()) return fail(400, "text " + std::to_string(i + 1) + " is not a string");
    r.texts.push_back(texts[i].get<std::string>());
  }
  if (json.contains("weights")) {
    if (!json["weights"].is_boolean()) return fail(400, "\"weights\" must be true or false");
    r.weights = json["weights"].get<bool>();
  }
  return r;
}

}  // namespace

int run_serve(const ServeOptions& o) {
  ATTNKIT_CHECK(o.threads >= 1 && o.max_texts >= 1 && o.max_body >= 1, "serve: threads, max texts and max body must "
                "be at least 1");
  // SIGTERM and SIGINT go to the thread that waits for them: blocked here, before any other
  // thread (the CPU pool's, the server's) starts, so that every thread inherits the block.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const sentiment::SavedRun run = sentiment::load_run(o.run);
  const jieba::Segmenter segmenter(o.jieba_directory);
  const std::set<std::string> stopwords = data::read_stopwords(run.data_options.stopwords());
  std::mutex model_mutex;

  httplib::Server server;
  const int threads = o.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  server.set_payload_max_length(o.max_body);
  server.set_read_timeout(10);
  server.set_write_timeout(10);

  server.Get("/health", [](const httplib::Request&, httplib::Response& response) {
    answer(response, 200, Json{{"status", "ok"}});
  });
  const Json model_info{{"model", run.model_name},
                        {"classes", Json::array({{{"label", 0}, {"name", "negative"}}, {{"label", 1}, {"name", "positive"}}})},
                        {"vocabulary_size", run.tokenizer.vocabulary_size()},
                        {"maxlen", run.data_options.maxlen()}};
  server.Get("/model", [&](const httplib::Request&, httplib::Response& response) { answer(response, 200, model_info); });
  server.Post("/predict", [&](const httplib::Request& request, httplib::Response& response) {
    const PredictRequest r = parse_predict(request.body, o.max_texts);
    if (r.status != 200) return answer_error(response, r.status, r.error);
    std::vector<sentiment::Prediction> predictions;
    try {
      const std::lock_guard<std::mutex> lock(model_mutex);
      predictions = sentiment::predict_batch(*run.model, run.tokenizer, segmenter, stopwords, r.texts,
                                             run.data_options.maxlen(), r.weights);
    } catch (const Error& e) {
      return answer_error(response, 400, e.message());
    }
    Json out = Json::array();
    for (const sentiment::Prediction& p : predictions) out.push_back(sentiment::prediction_json(p, r.weights));
    answer(response, 200, Json{{"model", run.model_name}, {"predictions", out}});
  });
  // Statuses the handlers do not set themselves (404, httplib's 413 for a body over the limit)
  // get a JSON body too.
  server.set_error_handler([&](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    const std::string message = response.status == 413 ? "the body is over " + std::to_string(o.max_body) + " bytes"
                                : response.status == 404 ? "no such route: " + request.method + " " + request.path
                                                         : "HTTP " + std::to_string(response.status);
    answer_error(response, response.status, message);
  });

  const int port = o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
  ATTNKIT_CHECK(port > 0, "serve: cannot listen on ", o.host, ":", o.port);
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
  });
  std::cout << "attnkit: serving " << run.model_name << " from " << o.run << " on http://" << o.host << ":" << port
            << std::endl;
  const bool listened = server.listen_after_bind();
  if (stopper.joinable()) {
    pthread_kill(stopper.native_handle(), SIGTERM);  // wakes it when the server stopped on its own
    stopper.join();
  }
  ATTNKIT_CHECK(listened || !server.is_running(), "serve: the server stopped with an error");
  std::cout << "attnkit: stopped" << std::endl;
  return 0;
}

}  // namespace attnkit::cli
