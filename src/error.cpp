// Error: the library's exception, carrying the message, the source location and the statement.
#include "attnkit/error.h"

namespace attnkit {
namespace {

// __FILE__ holds the build's absolute path; the part from the project's top folder on is
// what a reader needs.
std::string project_relative(const char* file) {
  const std::string path(file);
  for (const char* top : {"/src/", "/include/", "/kernels/", "/tests/", "/examples/", "/bench/"}) {
    const auto at = path.rfind(top);
    if (at != std::string::npos) return path.substr(at + 1);
  }
  return path;
}

std::string full_text(const std::string& message, const char* file, int line,
                      const char* statement) {
  std::string text = message + " [" + project_relative(file) + ":" + std::to_string(line);
  if (statement != nullptr && statement[0] != '\0') text += ": " + std::string(statement);
  return text + "]";
}

}  // namespace

Error::Error(const std::string& message, const char* file, int line, const char* statement)
    : std::runtime_error(full_text(message, file, line, statement)),
      message_(message),
      file_(project_relative(file)),
      line_(line),
      statement_(statement == nullptr ? "" : statement) {}

namespace detail {

void throw_error(const char* file, int line, const char* statement, const std::string& message) {
  throw Error(message, file, line, statement);
}

}  // namespace detail
}  // namespace attnkit
