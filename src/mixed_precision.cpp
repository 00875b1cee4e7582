// Dtype policies (attnkit/mixed_precision.h): their names and the global one.
#include "attnkit/mixed_precision.h"

#include <mutex>

#include "attnkit/error.h"

namespace attnkit::mixed_precision {
namespace {

std::mutex global_mutex;
Policy& global() {
  static Policy policy;
  return policy;
}

}  // namespace

Policy::Policy(const std::string& name) : name_(name) {
  if (name == "float32")
    compute_dtype_ = DType::f32;
  else if (name == "mixed_bfloat16")
    compute_dtype_ = DType::bf16;
  else if (name == "mixed_float16")
    ATTNKIT_FAIL("dtype policy 'mixed_float16' is not supported: float16 training needs loss scaling, which attnkit "
                 "does not do; use 'mixed_bfloat16' or 'float32'");
  else
    ATTNKIT_FAIL("unknown dtype policy '", name, "' (known: float32, mixed_bfloat16)");
}

void set_global_policy(const Policy& policy) {
  const std::lock_guard<std::mutex> lock(global_mutex);
  global() = policy;
}

void set_global_policy(const std::string& name) { set_global_policy(Policy(name)); }

Policy global_policy() {
  const std::lock_guard<std::mutex> lock(global_mutex);
  return global();
}

PolicyScope::PolicyScope(const Policy& policy) : previous_(global_policy()) { set_global_policy(policy); }

PolicyScope::~PolicyScope() { set_global_policy(previous_); }

}  // namespace attnkit::mixed_precision
