// attnkit/device.h: where a tensor lives, and what the CUDA runtime can see.
//
// A Device is a kind (cpu or cuda) and, for cuda, the GPU's ordinal. The CUDA queries below
// never throw: on a machine with no GPU (or a library built without CUDA) they report zero
// devices and say why in cuda_status().
#pragma once

#include <ostream>
#include <string>

namespace attnkit {

enum class DeviceType : unsigned char { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  // "cpu" or "cuda:0".
  std::string str() const;
  // Parses "cpu", "cuda" or "cuda:N".
  static Device parse(const std::string& text);

  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && (a.type == DeviceType::cpu || a.index == b.index);
  }
  friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
};

std::ostream& operator<<(std::ostream& out, const Device& device);

// True when this build of the library contains the CUDA backend.
bool built_with_cuda();
// The number of CUDA devices the runtime can use: 0 without a GPU, a driver, or CUDA support.
int cuda_device_count();
// One line saying what the CUDA runtime reported, e.g. "2 devices" or
// "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA runtime version".
std::string cuda_status();

struct CudaDeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  std::size_t global_memory_bytes = 0;
  std::size_t shared_memory_per_block_optin = 0;
};
// Properties of a CUDA device; throws attnkit::Error when it does not exist.
CudaDeviceInfo cuda_device_info(int index);

}  // namespace attnkit
