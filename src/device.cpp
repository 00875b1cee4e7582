// Device: names and parsing.
#include "attnkit/device.h"

#include "attnkit/error.h"

namespace attnkit {

std::string Device::str() const {
  return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string ordinal = text.substr(5);
    ATTNKIT_CHECK(!ordinal.empty() && ordinal.find_first_not_of("0123456789") == std::string::npos,
                  "device \"", text, "\": the GPU ordinal after \"cuda:\" must be a number");
    return cuda(std::stoi(ordinal));
  }
  ATTNKIT_FAIL("unknown device \"", text, "\" (expected cpu, cuda or cuda:N)");
}

std::ostream& operator<<(std::ostream& out, const Device& device) { return out << device.str(); }

}  // namespace attnkit
