// attnkit serve: a saved run behind HTTP (cpp-httplib), for the attnkit command.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnkit::cli {

struct ServeOptions {
  std::string run;                     // a folder written by train --report
  std::string jieba_directory;         // jieba's dict.txt and finalseg/ tables
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (the one taken is printed)
  int threads = 4;                     // requests served at once
  std::int64_t max_texts = 1024;       // texts a request
  std::size_t max_body = 4 << 20;      // bytes a request body
};

// Serves until SIGTERM or SIGINT, then stops taking requests, finishes those it has, and
// returns 0. Prints "attnkit: serving ... on http://HOST:PORT" once it listens.
//   GET /health    {"status": "ok"}
//   GET /model     {"model", "classes": [{"label", "name"}...], "vocabulary_size", "maxlen"}
//   POST /predict  {"texts": [...], "weights": false} -> {"model", "predictions": [one per text, the
//                  fields of sentiment::prediction_json]}
// Errors answer {"error": "..."}: 400 for a body that is not such JSON or text that is not
// UTF-8, 413 for more than max_texts texts or a body over max_body bytes, 404 elsewhere.
int run_serve(const ServeOptions& options);

}  // namespace attnkit::cli
