// Keras's progress line for fit (see progress_bar.h).
#include "progress_bar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace attnkit::detail {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// " - loss: 0.4512 - accuracy: 0.8125" for the keys that the logs hold.
std::string values(const Logs& logs, const std::vector<std::string>& keys) {
  std::string text;
  for (const std::string& key : keys) {
    const auto found = logs.find(key);
    if (found != logs.end()) text += " - " + key + ": " + format_value(found->second);
  }
  return text;
}

}  // namespace

std::string format_value(double value) {
  char text[32];
  std::snprintf(text, sizeof text, (std::abs(value) < 1e-3 && value != 0) ? "%.4e" : "%.4f", value);
  return text;
}

std::string format_duration(double seconds) {
  if (seconds >= 3600) return std::to_string(int(seconds / 3600)) + ":" + (int(seconds) % 3600 / 60 < 10 ? "0" : "") +
                              std::to_string(int(seconds) % 3600 / 60) + ":" + (int(seconds) % 60 < 10 ? "0" : "") +
                              std::to_string(int(seconds) % 60);
  if (seconds >= 60) return std::to_string(int(seconds / 60)) + ":" + (int(seconds) % 60 < 10 ? "0" : "") +
                            std::to_string(int(seconds) % 60);
  return std::to_string(int(seconds)) + "s";
}

std::string format_step_time(double seconds) {
  if (seconds >= 1) return std::to_string(int(seconds)) + "s/step";
  if (seconds >= 1e-3) return std::to_string(int(seconds * 1e3)) + "ms/step";
  return std::to_string(int(seconds * 1e6)) + "us/step";
}

ProgressBar::ProgressBar(std::ostream& out, bool terminal, std::int64_t steps)
    : out_(out), terminal_(terminal), steps_(steps), start_(Clock::now()) {}

void ProgressBar::update(std::int64_t step, const Logs& logs, const std::vector<std::string>& keys) {
  if (!terminal_) return;
  const double elapsed = seconds_since(start_);
  if (step < steps_ && seconds_since(last_draw_) < 0.1 && step > 1) return;
  last_draw_ = Clock::now();
  const double eta = elapsed / double(step) * double(steps_ - step);
  out_ << "\r" << bar(step) << " - ETA: " << format_duration(eta) << values(logs, keys) << "\033[K" << std::flush;
}

void ProgressBar::finish(const Logs& logs, const std::vector<std::string>& keys) {
  const double elapsed = seconds_since(start_);
  out_ << (terminal_ ? "\r" : "") << bar(steps_) << " - " << format_duration(elapsed) << " "
       << format_step_time(elapsed / double(std::max<std::int64_t>(steps_, 1))) << values(logs, keys)
       << (terminal_ ? "\033[K" : "") << "\n"
       << std::flush;
}

std::string ProgressBar::bar(std::int64_t step) const {
  const int width = 30;
  const std::string digits = std::to_string(steps_);
  std::string count = std::to_string(step);
  count = std::string(digits.size() - std::min(digits.size(), count.size()), ' ') + count + "/" + digits;
  const int filled = steps_ == 0 ? width : int(double(width) * double(step) / double(steps_));
  std::string body(static_cast<std::size_t>(width), '.');
  for (int i = 0; i < filled; ++i) body[static_cast<std::size_t>(i)] = '=';
  if (filled < width && filled > 0) body[static_cast<std::size_t>(filled - 1)] = '>';
  return count + " [" + body + "]";
}

}  // namespace attnkit::detail
