// Internal: Keras's progress line for fit, one per epoch:
//   "120/240 [==============>...............] - ETA: 1s - loss: 0.4512"
// On a terminal it is redrawn in place (at most every 0.1 s); otherwise only the final line of
// each epoch is printed.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "attnkit/callbacks.h"

namespace attnkit::detail {

// A logged value as Keras prints it: four decimals, or scientific notation below 1e-3.
std::string format_value(double value);
// "7s", "2:05", "1:02:05".
std::string format_duration(double seconds);
// "2s/step", "35ms/step", "120us/step".
std::string format_step_time(double seconds);

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool terminal, std::int64_t steps);
  // After `step` of the epoch's steps (counted from 1): redraws the line with the `keys` of `logs`.
  void update(std::int64_t step, const Logs& logs, const std::vector<std::string>& keys);
  // Ends the epoch's line: the time taken and the `keys` of `logs`.
  void finish(const Logs& logs, const std::vector<std::string>& keys);

 private:
  using Clock = std::chrono::steady_clock;
  std::string bar(std::int64_t step) const;

  std::ostream& out_;
  bool terminal_;
  std::int64_t steps_;
  Clock::time_point start_, last_draw_{};
};

}  // namespace attnkit::detail
