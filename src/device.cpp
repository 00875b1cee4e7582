// Device: names and parsing.
#include "attnkit/device.h"

#include "attnkit/error.h"

namespace attnkit {

std::string Device::str() const {
  switch (type) {
    case DeviceType::cpu: return "cpu";
    case DeviceType::sim: return "sim";
    case DeviceType::cuda: break;
  }
  return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text == "sim") return sim();
  if (text.rfind("cuda:", 0) == 0) {
    const std::string ordinal = text.substr(5);
    ATTNKIT_CHECK(!ordinal.empty() && ordinal.find_first_not_of("0123456789") == std::string::npos,
                  "device \"", text, "\": the GPU ordinal after \"cuda:\" must be a number");
    return cuda(std::stoi(ordinal));
  }
  ATTNKIT_FAIL("unknown device \"", text, "\" (expected cpu, cuda, cuda:N or sim)");
}

std::ostream& operator<<(std::ostream& out, const Device& device) { return out << device.str(); }

}  // namespace attnkit
