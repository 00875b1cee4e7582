// The model-config loader (Model::from_config, what Model::load reads from model.json) on any
// bytes that parse as JSON: a model that can describe itself, or an error.
#include "attnkit/model.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const attnkit::Json config = attnkit::Json::parse(data, data + size, nullptr, false);
  if (config.is_discarded()) return 0;  // not JSON: Model::load reports that before from_config
  attnkit::fuzz::expecting_clear_errors([&] {
    const std::unique_ptr<attnkit::Model> model = attnkit::Model::from_config(config);
    model->summary();
  });
  return 0;
}
