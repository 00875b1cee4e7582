// attnkit/error.h: the one exception type of the library, and the checks that throw it.
//
// Every failed check throws attnkit::Error. Its what() reads as a sentence for the user
// ("relu: x must be a floating-point tensor, got i32") followed by where it was raised and the
// statement that failed, so a bug report carries enough to find the line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace attnkit {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file, int line, const char* statement);

  // The sentence alone, without the source location.
  const std::string& message() const { return message_; }
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  // The failed condition or call, as written in the source; empty when there is none.
  const std::string& statement() const { return statement_; }

 private:
  std::string message_;
  std::string file_;
  int line_;
  std::string statement_;
};

namespace detail {

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

[[noreturn]] void throw_error(const char* file, int line, const char* statement,
                              const std::string& message);

}  // namespace detail
}  // namespace attnkit

// Throws attnkit::Error with the message parts (streamed together) when `condition` is false.
#define ATTNKIT_CHECK(condition, ...)                                                        \
  do {                                                                                       \
    if (!(condition))                                                                        \
      ::attnkit::detail::throw_error(__FILE__, __LINE__, #condition,                         \
                                     ::attnkit::detail::concat(__VA_ARGS__));                \
  } while (0)

// Throws attnkit::Error unconditionally.
#define ATTNKIT_FAIL(...) \
  ::attnkit::detail::throw_error(__FILE__, __LINE__, "", ::attnkit::detail::concat(__VA_ARGS__))
