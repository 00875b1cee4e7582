// The safetensors reader on any bytes: tensors whose bytes match their shapes, or an error.
#include <cstdlib>

#include "attnkit/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  attnkit::fuzz::expecting_clear_errors([&] {
    const attnkit::SafetensorsFile file =
        attnkit::parse_safetensors(attnkit::fuzz::text_of(data, size), "fuzz.safetensors");
    std::size_t bytes = 0;
    for (const auto& entry : file.tensors) bytes += entry.second.nbytes();
    if (bytes > size) std::abort();
  });
  return 0;
}
