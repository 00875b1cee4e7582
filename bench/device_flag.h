// The --device=NAME flag of the benchmark programs (cpu, cuda[:N] or sim), taken out of the
// command line before Google Benchmark reads its own flags. A name that is no device, or a GPU
// that is not there, ends the program with one line saying so (exit code 2).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include <attnkit/device.h>
#include <attnkit/error.h>

namespace attnkit::bench {

inline Device take_device_flag(int& argc, char** argv, Device fallback = Device::cpu()) {
  Device device = fallback;
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    const std::string argument = argv[i];
    if (i > 0 && argument.rfind("--device=", 0) == 0) {
      try {
        device = Device::parse(argument.substr(9));
      } catch (const Error& error) {
        std::fprintf(stderr, "%s: %s\n", argv[0], error.what());
        std::exit(2);
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (device.is_cuda() && device.index >= cuda_device_count()) {
    std::fprintf(stderr, "%s: --device=%s, but the CUDA runtime reports: %s\n", argv[0], device.str().c_str(),
                 cuda_status().c_str());
    std::exit(2);
  }
  return device;
}

}  // namespace attnkit::bench
