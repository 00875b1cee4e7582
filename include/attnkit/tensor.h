// attnkit/tensor.h: the n-dimensional array that every op takes and returns.
//
// A Tensor is a shape, a dtype, a device and a handle to contiguous, row-major storage. Copying a
// Tensor copies the handle: both name the same numbers (use clone() for a deep copy). reshape()
// and slice() make views that share the storage of the original. Storage is freed when the last
// tensor that names it goes away.
//
//   Generator gen(42);
//   Tensor x = Tensor::uniform({4, 20, 32}, -0.05, 0.05, gen);   // f32 on the cpu
//   Tensor ids = Tensor::from_vector<int32_t>({3, 1, 4, 1}, {2, 2});
//   std::vector<float> values = x.to_vector<float>();
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "attnkit/device.h"
#include "attnkit/dtype.h"
#include "attnkit/error.h"
#include "attnkit/random.h"

namespace attnkit {

using Shape = std::vector<std::int64_t>;

// "[2, 3, 4]"
std::string shape_str(const Shape& shape);
// The number of elements of a shape (1 for the empty shape of a scalar).
std::int64_t shape_numel(const Shape& shape);

// A block of bytes on one device; allocated in the constructor, freed in the destructor.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  // Memory that another library owns (handed over through DLPack): nothing is allocated, and
  // `release` runs instead of the free when the last tensor naming it goes away.
  Storage(void* data, std::size_t bytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
  std::function<void()> release_;  // set for memory another library owns
};

class Tensor {
 public:
  // An undefined tensor: no storage; defined() is false. Used for optional arguments.
  Tensor() = default;

  // ---- factories
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  // Uniform in [low, high) and normal(mean, stddev), drawn from `generator` (see random.h).
  static Tensor uniform(const Shape& shape, double low, double high, Generator& generator,
                        DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor normal(const Shape& shape, double mean, double stddev, Generator& generator,
                       DType dtype = DType::f32, Device device = Device::cpu());
  // A tensor holding a copy of `values` (element type decides the dtype).
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = Device::cpu());
  // A tensor over contiguous row-major memory that another library owns, without a copy: the
  // memory stays valid until `release` runs, once, when the last tensor naming it goes away.
  static Tensor from_external(void* data, const Shape& shape, DType dtype, Device device,
                              std::function<void()> release);
  // A tensor of the same shape, dtype and device.
  static Tensor empty_like(const Tensor& other);
  static Tensor zeros_like(const Tensor& other);

  // ---- description
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  // The extent of one axis; negative axes count from the end.
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  // "f32[2, 3, 4] on cpu"
  std::string describe() const;

  // ---- element access (cpu tensors; T must match the dtype)
  template <typename T>
  T* data();
  template <typename T>
  const T* data() const;
  // The address of the first element, on whichever device holds it.
  void* raw_data() const;
  // The value of one element of a cpu tensor, converted to double.
  double item(std::int64_t flat_index = 0) const;

  // ---- views: share storage with this tensor
  // The same elements with another shape of equal size; one extent may be -1 (inferred).
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along axis 0.
  Tensor slice(std::int64_t begin, std::int64_t end) const;
  bool shares_storage_with(const Tensor& other) const;

  // ---- copies
  Tensor clone() const;
  // A copy converted to another dtype (the same tensor when it already has it), with the
  // conversions of to_vector().
  Tensor to(DType dtype) const;
  // A copy on another device (the same tensor when it already is there).
  Tensor to(Device device) const;
  // Copies the elements of `source` (same shape and dtype, any device) into this tensor.
  void copy_from(const Tensor& source);
  // The elements, converted to T, copied to a host vector. T may be any dtype's element type;
  // conversions go through double (float to integer truncates toward zero).
  template <typename T>
  std::vector<T> to_vector() const;

  // Text with the description and the values, eliding the middle of long axes.
  std::string str(std::int64_t edge_items = 3) const;

 private:
  Tensor(std::shared_ptr<Storage> storage, std::size_t byte_offset, Shape shape, DType dtype);
  void check_host_access(DType requested) const;

  std::shared_ptr<Storage> storage_;
  std::size_t byte_offset_ = 0;
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

template <typename T>
T* Tensor::data() {
  check_host_access(dtype_of<T>());
  return reinterpret_cast<T*>(static_cast<char*>(storage_->data()) + byte_offset_);
}

template <typename T>
const T* Tensor::data() const {
  check_host_access(dtype_of<T>());
  return reinterpret_cast<const T*>(static_cast<const char*>(storage_->data()) + byte_offset_);
}

}  // namespace attnkit
