// Tensor and Storage: allocation, factories, views, copies, conversions and printing.
#include "attnkit/tensor.h"

#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>

#include "caching_allocator.h"
#include "cpu/parallel.h"
#include "cuda/runtime.h"
#include "sim/sim.h"
#include "dtype_visit.h"

namespace attnkit {

// ------------------------------------------------------------------ shapes

std::string shape_str(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t count = 1;
  for (const std::int64_t extent : shape) count *= extent;
  return count;
}

namespace {

// Extents must not be negative, and the bytes of 8-byte elements must fit in 63 bits.
void check_shape(const Shape& shape) {
  std::int64_t count = 1;
  for (const std::int64_t extent : shape) {
    ATTNKIT_CHECK(extent >= 0, "tensor shape ", shape_str(shape), " has a negative extent");
    ATTNKIT_CHECK(extent == 0 || count <= std::numeric_limits<std::int64_t>::max() / 8 / extent, "tensor shape ",
                  shape_str(shape), " has more elements than memory can hold");
    count *= extent;
  }
}

}  // namespace

// ------------------------------------------------------------------ storage

namespace {

// Cache-line alignment, and enough for any vector load on the host.
constexpr std::size_t kHostAlignment = 64;

void* aligned_host_block(std::size_t bytes) {
  // aligned_alloc wants a multiple of the alignment; a zero-byte tensor still gets an address.
  const std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  return std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
}

// The host's cache of large blocks (see caching_allocator.h). Made on first use and never
// destroyed, so that tensors that outlive main can still give their memory back to it.
CachingAllocator& host_cache() {
  static CachingAllocator* cache = new CachingAllocator(aligned_host_block, std::free);
  return *cache;
}

bool from_host_cache(std::size_t bytes) { return bytes >= kHostCacheMinimumBytes; }

}  // namespace

MemoryStats host_memory_stats() { return host_cache().stats(); }
void host_empty_cache() { host_cache().empty_cache(); }

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    data_ = from_host_cache(bytes) ? host_cache().allocate(bytes) : aligned_host_block(bytes);
    ATTNKIT_CHECK(data_ != nullptr, "out of host memory: could not allocate ", bytes, " bytes");
  } else if (device.is_sim()) {
    data_ = sim::allocate(bytes);
  } else {
    data_ = cuda::allocate(bytes, device.index);
  }
}

Storage::Storage(void* data, std::size_t bytes, Device device, std::function<void()> release)
    : data_(data), bytes_(bytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_)
    release_();
  else if (device_.is_cpu() && from_host_cache(bytes_))
    host_cache().release(data_);
  else if (device_.is_cpu())
    std::free(data_);
  else if (device_.is_sim())
    sim::release(data_);
  else
    cuda::release(data_, device_.index);
}

// ------------------------------------------------------------------ construction

Tensor::Tensor(std::shared_ptr<Storage> storage, std::size_t byte_offset, Shape shape, DType dtype)
    : storage_(std::move(storage)),
      byte_offset_(byte_offset),
      shape_(std::move(shape)),
      numel_(shape_numel(shape_)),
      dtype_(dtype) {}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(std::make_shared<Storage>(bytes, device), 0, shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor host = empty(shape, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* out = host.data<T>();
    const T converted = from_double<T>(value);
    for (std::int64_t i = 0; i < host.numel(); ++i) out[i] = converted;
  });
  return host.to(device);
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Generator& generator,
                       DType dtype, Device device) {
  ATTNKIT_CHECK(is_floating(dtype), "Tensor::uniform: dtype must be floating point, got ", dtype);
  ATTNKIT_CHECK(low <= high, "Tensor::uniform: low (", low, ") must not exceed high (", high, ")");
  Tensor host = empty(shape, dtype);
  const std::uint64_t seed = generator.seed();
  const std::uint64_t offset = generator.reserve(static_cast<std::uint64_t>(host.numel()));
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* out = host.data<T>();
    cpu::parallel_for(host.numel(), 16, [&](std::int64_t i) {
      const double u = uniform_from_word(philox_word(seed, offset, static_cast<std::uint64_t>(i)));
      out[i] = from_double<T>(low + (high - low) * u);
    });
  });
  return host.to(device);
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, Generator& generator,
                      DType dtype, Device device) {
  ATTNKIT_CHECK(is_floating(dtype), "Tensor::normal: dtype must be floating point, got ", dtype);
  ATTNKIT_CHECK(stddev >= 0, "Tensor::normal: stddev must not be negative, got ", stddev);
  Tensor host = empty(shape, dtype);
  const std::uint64_t seed = generator.seed();
  const std::uint64_t offset = generator.reserve(static_cast<std::uint64_t>(host.numel()));
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* out = host.data<T>();
    cpu::parallel_for(host.numel(), 64, [&](std::int64_t i) {
      out[i] = from_double<T>(mean + stddev * philox_normal(seed, offset, static_cast<std::uint64_t>(i)));
    });
  });
  return host.to(device);
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  check_shape(shape);
  ATTNKIT_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
                "Tensor::from_vector: ", values.size(), " values do not fill shape ",
                shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor host = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), host.nbytes());
  return host.to(device);
}

Tensor Tensor::from_external(void* data, const Shape& shape, DType dtype, Device device, std::function<void()> release) {
  check_shape(shape);
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  ATTNKIT_CHECK(data != nullptr || bytes == 0, "Tensor::from_external: null data for ", bytes, " bytes");
  return Tensor(std::make_shared<Storage>(data, bytes, device, std::move(release)), 0, shape, dtype);
}

Tensor Tensor::empty_like(const Tensor& other) {
  return empty(other.shape(), other.dtype(), other.device());
}

Tensor Tensor::zeros_like(const Tensor& other) {
  return zeros(other.shape(), other.dtype(), other.device());
}

// ------------------------------------------------------------------ description and access

std::int64_t Tensor::size(std::int64_t axis) const {
  const std::int64_t rank = dim();
  ATTNKIT_CHECK(axis >= -rank && axis < rank, "axis ", axis, " is out of range for a tensor of shape ",
                shape_str(shape_));
  return shape_[static_cast<std::size_t>(axis < 0 ? axis + rank : axis)];
}

Device Tensor::device() const {
  ATTNKIT_CHECK(defined(), "the tensor is undefined (it has no storage)");
  return storage_->device();
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " on " + device().str();
}

void Tensor::check_host_access(DType requested) const {
  ATTNKIT_CHECK(defined(), "cannot read an undefined tensor");
  ATTNKIT_CHECK(requested == dtype_, "the tensor holds ", dtype_, " elements, not ", requested,
                " (convert with .to(DType::", requested, ") first)");
  ATTNKIT_CHECK(is_cpu(), "the elements of a tensor on ", device(),
                " cannot be read on the host (copy it with .to(Device::cpu()) first)");
}

void* Tensor::raw_data() const {
  ATTNKIT_CHECK(defined(), "the tensor is undefined (it has no storage)");
  return static_cast<char*>(storage_->data()) + byte_offset_;
}

double Tensor::item(std::int64_t flat_index) const {
  ATTNKIT_CHECK(flat_index >= 0 && flat_index < numel_, "item: index ", flat_index,
                " is out of range for ", describe());
  double value = 0;
  visit_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    value = to_double(data<T>()[flat_index]);
  });
  return value;
}

// ------------------------------------------------------------------ views

Tensor Tensor::reshape(const Shape& shape) const {
  ATTNKIT_CHECK(defined(), "reshape: the tensor is undefined");
  Shape resolved = shape;
  std::int64_t known = 1;
  int inferred_axis = -1;
  for (std::size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      ATTNKIT_CHECK(inferred_axis < 0, "reshape: at most one extent may be -1, got ", shape_str(shape));
      inferred_axis = static_cast<int>(i);
    } else {
      ATTNKIT_CHECK(resolved[i] >= 0, "reshape: invalid extent in ", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (inferred_axis >= 0) {
    ATTNKIT_CHECK(known > 0 && numel_ % known == 0, "reshape: cannot infer the -1 in ",
                  shape_str(shape), " for ", numel_, " elements");
    resolved[static_cast<std::size_t>(inferred_axis)] = numel_ / known;
  }
  ATTNKIT_CHECK(shape_numel(resolved) == numel_, "reshape: cannot view ", describe(), " as ",
                shape_str(shape));
  return Tensor(storage_, byte_offset_, resolved, dtype_);
}

Tensor Tensor::slice(std::int64_t begin, std::int64_t end) const {
  ATTNKIT_CHECK(dim() >= 1, "slice: needs at least one axis, got ", describe());
  ATTNKIT_CHECK(0 <= begin && begin <= end && end <= shape_[0], "slice: rows [", begin, ", ", end,
                ") are out of range for ", describe());
  Shape sliced = shape_;
  sliced[0] = end - begin;
  const std::size_t row_bytes = nbytes() / static_cast<std::size_t>(shape_[0] == 0 ? 1 : shape_[0]);
  return Tensor(storage_, byte_offset_ + static_cast<std::size_t>(begin) * row_bytes, sliced, dtype_);
}

bool Tensor::shares_storage_with(const Tensor& other) const {
  return defined() && storage_ == other.storage_;
}

// ------------------------------------------------------------------ copies

namespace {

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes) {
  if (bytes == 0) return;
  // The sim's memory is host memory.
  if (!destination_device.is_cuda() && !source_device.is_cuda())
    std::memcpy(destination, source, bytes);
  else
    cuda::copy(destination, source, bytes);
}

}  // namespace

Tensor Tensor::clone() const {
  Tensor copy = empty(shape_, dtype_, device());
  copy.copy_from(*this);
  return copy;
}

void Tensor::copy_from(const Tensor& source) {
  ATTNKIT_CHECK(source.shape_ == shape_ && source.dtype_ == dtype_, "copy_from: cannot copy ",
                source.describe(), " into ", describe());
  copy_bytes(raw_data(), device(), source.raw_data(), source.device(), nbytes());
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  const Tensor host = to(Device::cpu());
  Tensor converted = empty(shape_, dtype);
  visit_dtype(dtype_, [&](auto source_tag) {
    using From = decltype(source_tag);
    visit_dtype(dtype, [&](auto destination_tag) {
      using To = decltype(destination_tag);
      const From* in = host.data<From>();
      To* out = converted.data<To>();
      for (std::int64_t i = 0; i < numel_; ++i) out[i] = from_double<To>(to_double(in[i]));
    });
  });
  return converted.to(device());
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor moved = empty(shape_, dtype_, device);
  moved.copy_from(*this);
  return moved;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = to(dtype_of<T>()).to(Device::cpu());
  std::vector<T> values(static_cast<std::size_t>(numel_));
  if (numel_ > 0) std::memcpy(values.data(), host.raw_data(), host.nbytes());
  return values;
}

// ------------------------------------------------------------------ printing

namespace {

// Prints the block of `shape` starting at flat offset `base`, axis by axis, numpy style.
void print_block(std::ostream& out, const Tensor& host, std::size_t axis, std::int64_t base,
                 std::int64_t edge_items) {
  const Shape& shape = host.shape();
  if (shape.empty()) {
    out << host.item(0);
    return;
  }
  const std::int64_t extent = shape[axis];
  std::int64_t stride = 1;
  for (std::size_t a = axis + 1; a < shape.size(); ++a) stride *= shape[a];
  const bool elide = extent > 2 * edge_items;
  out << "[";
  for (std::int64_t i = 0; i < extent; ++i) {
    if (elide && i == edge_items) {
      out << (axis + 1 == shape.size() ? "..., " : "...,\n" + std::string(axis + 1, ' '));
      i = extent - edge_items;
    }
    if (axis + 1 == shape.size())
      out << host.item(base + i);
    else
      print_block(out, host, axis + 1, base + i * stride, edge_items);
    if (i + 1 < extent) out << (axis + 1 == shape.size() ? ", " : ",\n" + std::string(axis + 1, ' '));
  }
  out << "]";
}

}  // namespace

std::string Tensor::str(std::int64_t edge_items) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor(" << describe() << ")\n" << std::setprecision(6);
  print_block(out, to(Device::cpu()), 0, 0, edge_items);
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.str(); }

#define ATTNKIT_INSTANTIATE_VECTOR_COPIES(T)                                                    \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&, Device);         \
  template std::vector<T> Tensor::to_vector<T>() const;
ATTNKIT_INSTANTIATE_VECTOR_COPIES(float)
ATTNKIT_INSTANTIATE_VECTOR_COPIES(double)
ATTNKIT_INSTANTIATE_VECTOR_COPIES(Half)
ATTNKIT_INSTANTIATE_VECTOR_COPIES(BFloat16)
ATTNKIT_INSTANTIATE_VECTOR_COPIES(std::int32_t)
ATTNKIT_INSTANTIATE_VECTOR_COPIES(std::uint8_t)
#undef ATTNKIT_INSTANTIATE_VECTOR_COPIES

}  // namespace attnkit
