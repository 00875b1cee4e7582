// The --device=NAME flag of the benchmark programs (cpu, cuda[:N] or sim), taken out of the
// command line before Google Benchmark reads its own flags.
#pragma once

#include <string>

#include <attnkit/device.h>

namespace attnkit::bench {

inline Device take_device_flag(int& argc, char** argv, Device fallback = Device::cpu()) {
  Device device = fallback;
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    const std::string argument = argv[i];
    if (i > 0 && argument.rfind("--device=", 0) == 0)
      device = Device::parse(argument.substr(9));
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  return device;
}

}  // namespace attnkit::bench
