// The portable kernel dialect. Every file in kernels/ is written in it, and compiles two ways:
// by nvcc into the CUDA backend, where everything below is the real thing, and as host C++
// (ATTNKIT_SIM) into the sim executor of src/sim/sim.h, which runs it on the CPU.
//
//   AK_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)   instead of <<<>>>
//   AK_SHARED(type, name, [dims])        a static __shared__ array
//   AK_UNROLL                            #pragma unroll
//   ak::dynamic_shared<T>()              the dynamic shared memory
//   __syncthreads(), __syncwarp(mask), threadIdx, blockIdx, blockDim, gridDim
//   ak::shfl, ak::shfl_xor, ak::shfl_down, ak::ballot, ak::any, ak::all   warp exchanges
//   ak::atomic_add, ak::atomic_max                                        atomics
//   ak::mma_m16n8k16 (f16 or bf16 in, f32 accumulate), ak::ldmatrix_x{1,2,4}[_trans],
//   ak::cp_async_16, ak::cp_async_commit, ak::cp_async_wait<N>           matrix cores, async copies
//   ak::exp2_approx (ex2.approx.ftz.f32), ak::store_pair (two 16-bit values in one 32-bit store)
//
// The host versions of mma and ldmatrix follow the fragment layouts of the PTX ISA ("Matrix
// Fragments for mma.m16n8k16 with floating point type", "ldmatrix"): with g = lane / 4 and
// c = lane % 4, A (16x16, row-major) gives a lane the pairs (g, 2c..2c+1), (g+8, 2c..), (g, 2c+8..)
// and (g+8, 2c+8..) in registers 0 to 3; B (16x8, column-major) the pairs (2c..2c+1, g) and
// (2c+8.., g); C and D (16x8 f32) the elements (g, 2c), (g, 2c+1), (g+8, 2c), (g+8, 2c+1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#else
#include <cmath>

#include "attnkit/dtype.h"
#include "sim/sim.h"
#endif

namespace ak {

constexpr unsigned kFullMask = 0xFFFFFFFFu;
constexpr int kWarpSize = 32;

#if defined(__CUDACC__)

// ================================================================ CUDA

using half = __half;
using bfloat16 = __nv_bfloat16;
using stream_t = cudaStream_t;

#define AK_HOST_DEVICE __host__ __device__
#define AK_DEVICE __device__ __forceinline__
// Unrolls the loop that follows: loops over a register array must be, or the array goes to
// local memory.
#define AK_UNROLL _Pragma("unroll")
// Keeps the loop that follows a loop (code run once per block, kept short).
#define AK_NO_UNROLL _Pragma("unroll 1")
#define AK_SHARED(type, name, dims) __shared__ __align__(16) type name dims

// Reports a failed launch with the kernel's name, file and line (attnkit::Error); defined in
// src/cuda/launch.cu.
void check_launch(const char* kernel, const char* file, int line);
// A launch gets 48 KB of dynamic shared memory unless its kernel opts in to more (up to the
// GPU's limit): AK_LAUNCH does that for launches that ask for more. In src/cuda/launch.cu.
constexpr std::size_t kDefaultDynamicSharedBytes = 48 * 1024;
void allow_dynamic_shared(const void* kernel, std::size_t bytes, const char* name, const char* file, int line);
// Makes the device of `stream` current for a launch and its shared-memory opt-in (both act on
// the current device), and the previous one current again after: a launch for a tensor on cuda:1
// while cuda:0 is current goes to cuda:1. The legacy default stream (null) changes nothing. In
// src/cuda/launch.cu.
class LaunchDevice {
 public:
  explicit LaunchDevice(cudaStream_t stream, const char* kernel, const char* file, int line);
  ~LaunchDevice();
  LaunchDevice(const LaunchDevice&) = delete;
  LaunchDevice& operator=(const LaunchDevice&) = delete;

 private:
  int previous_ = -1;  // -1: nothing to restore
};

#define AK_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                             \
  do {                                                                                                        \
    const ::ak::LaunchDevice ak_launch_device((stream), #kernel, __FILE__, __LINE__);                         \
    const std::size_t ak_shared_bytes = (shared_bytes);                                                       \
    if (ak_shared_bytes > ::ak::kDefaultDynamicSharedBytes)                                                   \
      ::ak::allow_dynamic_shared(reinterpret_cast<const void*>(&kernel), ak_shared_bytes, #kernel, __FILE__,  \
                                 __LINE__);                                                                   \
    kernel<<<(grid), (block), ak_shared_bytes, (stream)>>>(__VA_ARGS__);                                      \
    ::ak::check_launch(#kernel, __FILE__, __LINE__);                                                          \
  } while (0)

// Declares, for the launches in its scope, that float results sum with atomics in an order
// that varies from run to run: the sim then compares its schedules' results with `tolerance`
// (relative; absolute below 1) instead of bit for bit. Nothing on a GPU.
struct UnorderedSums {
  explicit UnorderedSums(double) {}
};

template <typename T>
AK_DEVICE T* dynamic_shared() {
  extern __shared__ __align__(16) unsigned char ak_dynamic_shared_memory[];
  return reinterpret_cast<T*>(ak_dynamic_shared_memory);
}

AK_DEVICE float to_float(half x) { return __half2float(x); }
AK_DEVICE float to_float(bfloat16 x) { return __bfloat162float(x); }
AK_DEVICE float to_float(float x) { return x; }
template <typename T>
AK_DEVICE T from_float(float x);
template <>
AK_DEVICE float from_float<float>(float x) { return x; }
template <>
AK_DEVICE half from_float<half>(float x) { return __float2half_rn(x); }
template <>
AK_DEVICE bfloat16 from_float<bfloat16>(float x) { return __float2bfloat16_rn(x); }

AK_DEVICE unsigned lane_id() { return threadIdx.x % kWarpSize; }

template <typename T>
AK_DEVICE T shfl(T value, int source_lane, unsigned mask = kFullMask) { return __shfl_sync(mask, value, source_lane); }
template <typename T>
AK_DEVICE T shfl_xor(T value, int lane_mask, unsigned mask = kFullMask) { return __shfl_xor_sync(mask, value, lane_mask); }
template <typename T>
AK_DEVICE T shfl_down(T value, unsigned delta, unsigned mask = kFullMask) { return __shfl_down_sync(mask, value, delta); }
AK_DEVICE unsigned ballot(bool predicate, unsigned mask = kFullMask) { return __ballot_sync(mask, predicate); }
AK_DEVICE bool any(bool predicate, unsigned mask = kFullMask) { return __any_sync(mask, predicate); }
AK_DEVICE bool all(bool predicate, unsigned mask = kFullMask) { return __all_sync(mask, predicate); }

AK_DEVICE float atomic_add(float* address, float value) { return atomicAdd(address, value); }
AK_DEVICE int atomic_add(int* address, int value) { return atomicAdd(address, value); }
AK_DEVICE int atomic_max(int* address, int value) { return atomicMax(address, value); }

// D = A B + C for one warp: a[4], b[2] hold pairs of 16-bit values, c and d four floats.
template <typename T>
AK_DEVICE void mma_m16n8k16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                            const float (&c)[4]);
template <>
AK_DEVICE void mma_m16n8k16<half>(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                                  const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
template <>
AK_DEVICE void mma_m16n8k16<bfloat16>(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                                      const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

AK_DEVICE unsigned shared_address(const void* pointer) {
  return static_cast<unsigned>(__cvta_generic_to_shared(pointer));
}
// ldmatrix .m8n8 .b16: lanes 8i..8i+7 give the rows of matrix i; register i receives matrix i.
AK_DEVICE void ldmatrix_x1(std::uint32_t (&r)[1], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(shared_address(row)));
}
AK_DEVICE void ldmatrix_x2(std::uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row)));
}
AK_DEVICE void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
AK_DEVICE void ldmatrix_x2_trans(std::uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row)));
}
AK_DEVICE void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

// 16 bytes from global to shared memory, asynchronously; the first `source_bytes` are read and
// the rest zero-filled (0 reads nothing: rows past the end of a tensor).
AK_DEVICE void cp_async_16(void* shared_destination, const void* global_source, int source_bytes = 16) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared_destination)),
               "l"(global_source), "r"(source_bytes));
}
AK_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
AK_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// 2^x by the special-function unit's instruction, ex2.approx.ftz.f32: within 2 ulp of the
// correctly rounded result over the full range (PTX ISA, "Floating Point Instructions: ex2"),
// results below 2^-126 flushed to 0, 2^-inf = 0. exp2f without fast math wraps the same
// instruction in range handling that attention's softmax does not need.
AK_DEVICE float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Eight 16-bit values from a 16-byte aligned address, as floats: one 16-byte load.
template <typename T>
AK_DEVICE void load_8_as_float(float (&x)[8], const T* address) {
  const uint4 bits = *reinterpret_cast<const uint4*>(address);
  const T* values = reinterpret_cast<const T*>(&bits);
  AK_UNROLL
  for (int i = 0; i < 8; ++i) x[i] = to_float(values[i]);
}

// A register pair of two 16-bit values (pack2) to a 4-byte aligned address: one store.
AK_DEVICE void store_pair(void* address, std::uint32_t pair) { *static_cast<std::uint32_t*>(address) = pair; }

#else

// ================================================================ sim (host C++)

using half = ::attnkit::Half;
using bfloat16 = ::attnkit::BFloat16;
using stream_t = void*;

#define AK_HOST_DEVICE
#define AK_DEVICE inline
#define AK_UNROLL
#define AK_NO_UNROLL
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

#define threadIdx (::attnkit::sim::current->thread_idx)
#define blockIdx (::attnkit::sim::current->block_idx)
#define blockDim (::attnkit::sim::current->block_dim)
#define gridDim (::attnkit::sim::current->grid_dim)
#define __syncthreads() ::attnkit::sim::sync_threads(__FILE__, __LINE__)
#define __syncwarp(...) ::attnkit::sim::sync_warp(::ak::detail::mask_or_full(__VA_ARGS__), __FILE__, __LINE__)

#define AK_SHARED(type, name, dims)                                       \
  static const char ak_shared_site_##name = 0;                            \
  type(&name) dims = *static_cast<type(*) dims>(                          \
      ::attnkit::sim::block_shared(&ak_shared_site_##name, sizeof(type dims)))

#define AK_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                        \
  (static_cast<void>(stream), /* the sim runs every launch at once, in order */                         \
   ::attnkit::sim::launch(#kernel, ::ak::detail::dim(grid), ::ak::detail::dim(block), (shared_bytes),   \
                          [&]() { kernel(__VA_ARGS__); }))

// See the CUDA twin above.
class UnorderedSums {
 public:
  explicit UnorderedSums(double tolerance) : saved_(::attnkit::sim::options().float_tolerance) {
    if (tolerance > saved_) ::attnkit::sim::options().float_tolerance = tolerance;
  }
  ~UnorderedSums() { ::attnkit::sim::options().float_tolerance = saved_; }
  UnorderedSums(const UnorderedSums&) = delete;
  UnorderedSums& operator=(const UnorderedSums&) = delete;

 private:
  double saved_;
};

namespace detail {
inline unsigned mask_or_full() { return kFullMask; }
inline unsigned mask_or_full(unsigned mask) { return mask; }
inline ::attnkit::sim::Dim3 dim(::attnkit::sim::Dim3 d) { return d; }
inline ::attnkit::sim::Dim3 dim(unsigned x) { return {x, 1, 1}; }
inline ::attnkit::sim::Dim3 dim(int x) { return {static_cast<unsigned>(x), 1, 1}; }
inline ::attnkit::sim::Dim3 dim(long x) { return {static_cast<unsigned>(x), 1, 1}; }
inline ::attnkit::sim::Dim3 dim(unsigned long x) { return {static_cast<unsigned>(x), 1, 1}; }
inline ::attnkit::sim::Dim3 dim(long long x) { return {static_cast<unsigned>(x), 1, 1}; }

// Every lane's value of `value` (lanes outside the mask: zero).
template <typename T>
void exchange(unsigned mask, const T& value, T (&all)[kWarpSize], const char* op) {
  static_assert(sizeof(T) <= 64, "a warp exchange carries at most 64 bytes per lane");
  ::attnkit::sim::warp_exchange(mask, &value, all, sizeof(T), op);
}
inline std::uint16_t bits_of(half x) { return x.bits; }
inline std::uint16_t bits_of(bfloat16 x) { return x.bits; }
template <typename T>
float element(std::uint32_t pair, int which) {  // element 0 is the low half, as in registers
  T x;
  x.bits = static_cast<std::uint16_t>(which == 0 ? pair & 0xFFFFu : pair >> 16);
  return static_cast<float>(x);
}
}  // namespace detail

}  // namespace ak
using dim3 = ::attnkit::sim::Dim3;
namespace ak {

template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(::attnkit::sim::dynamic_shared());
}

inline float to_float(half x) { return static_cast<float>(x); }
inline float to_float(bfloat16 x) { return static_cast<float>(x); }
inline float to_float(float x) { return x; }
template <typename T>
T from_float(float x) {
  return T(x);
}
template <>
inline float from_float<float>(float x) {
  return x;
}

inline unsigned lane_id() { return ::attnkit::sim::current->linear_thread % kWarpSize; }

template <typename T>
T shfl(T value, int source_lane, unsigned mask = kFullMask) {
  T all[kWarpSize];
  detail::exchange(mask, value, all, "__shfl_sync");
  return all[source_lane & (kWarpSize - 1)];
}
template <typename T>
T shfl_xor(T value, int lane_mask, unsigned mask = kFullMask) {
  T all[kWarpSize];
  detail::exchange(mask, value, all, "__shfl_xor_sync");
  return all[(lane_id() ^ static_cast<unsigned>(lane_mask)) & (kWarpSize - 1)];
}
template <typename T>
T shfl_down(T value, unsigned delta, unsigned mask = kFullMask) {
  T all[kWarpSize];
  detail::exchange(mask, value, all, "__shfl_down_sync");
  const unsigned source = lane_id() + delta;
  return source < static_cast<unsigned>(kWarpSize) ? all[source] : value;  // past the end: its own value
}
inline unsigned ballot(bool predicate, unsigned mask = kFullMask) {
  bool all[kWarpSize];
  detail::exchange(mask, predicate, all, "__ballot_sync");
  unsigned bits = 0;
  for (int l = 0; l < kWarpSize; ++l) bits |= (mask >> l & 1u) && all[l] ? 1u << l : 0u;
  return bits;
}
inline bool any(bool predicate, unsigned mask = kFullMask) { return ballot(predicate, mask) != 0; }
inline bool all(bool predicate, unsigned mask = kFullMask) { return ballot(predicate, mask) == mask; }

// One fiber runs at a time and never between a read and a write here: atomic by construction.
inline float atomic_add(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}
inline int atomic_add(int* address, int value) {
  const int old = *address;
  *address = old + value;
  return old;
}
inline int atomic_max(int* address, int value) {
  const int old = *address;
  *address = old > value ? old : value;
  return old;
}

template <typename T>
void mma_m16n8k16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4]) {
  struct Fragments {
    std::uint32_t a[4], b[2];
  };
  Fragments all[kWarpSize];
  detail::exchange(kFullMask, Fragments{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all, "mma.sync.m16n8k16");
  // Rebuild A [16][16] and B [16][8] from the lanes' registers, by the PTX ISA's layouts.
  float A[16][16], B[16][8];
  for (int lane = 0; lane < kWarpSize; ++lane) {
    const int g = lane / 4, c2 = 2 * (lane % 4);
    for (int r = 0; r < 4; ++r)
      for (int e = 0; e < 2; ++e) {
        const int row = g + (r % 2 == 1 ? 8 : 0);
        const int col = c2 + e + (r >= 2 ? 8 : 0);
        A[row][col] = detail::element<T>(all[lane].a[r], e);
      }
    for (int r = 0; r < 2; ++r)
      for (int e = 0; e < 2; ++e) B[c2 + e + 8 * r][g] = detail::element<T>(all[lane].b[r], e);
  }
  const int g = static_cast<int>(lane_id()) / 4, c2 = 2 * (static_cast<int>(lane_id()) % 4);
  float out[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = c2 + (i % 2);
    float sum = c[i];
    for (int k = 0; k < 16; ++k) sum = std::fma(A[row][k], B[k][col], sum);
    out[i] = sum;
  }
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// ldmatrix: each of the first 8 * count lanes gives the address of one 16-byte row.
template <int count, bool transposed>
void ldmatrix(std::uint32_t (&r)[count], const void* row) {
  // The hardware reads each row as one 16-byte access: lanes that give a row must give it aligned.
  if (lane_id() < 8u * count) ::attnkit::sim::check_aligned(row, 16, transposed ? "an ldmatrix.trans row" : "an ldmatrix row");
  const void* rows[kWarpSize];
  detail::exchange(kFullMask, row, rows, transposed ? "ldmatrix.trans" : "ldmatrix");
  const unsigned lane = lane_id();
  for (int m = 0; m < count; ++m) {
    std::uint16_t element[2];
    for (int e = 0; e < 2; ++e) {
      // Without .trans a lane gets row lane/4, columns 2(lane%4)+e; with it, the transpose.
      const unsigned matrix_row = transposed ? 2 * (lane % 4) + static_cast<unsigned>(e) : lane / 4;
      const unsigned matrix_col = transposed ? lane / 4 : 2 * (lane % 4) + static_cast<unsigned>(e);
      std::memcpy(&element[e], static_cast<const char*>(rows[8 * m + static_cast<int>(matrix_row)]) + 2 * matrix_col, 2);
    }
    r[m] = static_cast<std::uint32_t>(element[0]) | static_cast<std::uint32_t>(element[1]) << 16;
  }
}
inline void ldmatrix_x1(std::uint32_t (&r)[1], const void* row) { ldmatrix<1, false>(r, row); }
inline void ldmatrix_x2(std::uint32_t (&r)[2], const void* row) { ldmatrix<2, false>(r, row); }
inline void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) { ldmatrix<4, false>(r, row); }
inline void ldmatrix_x2_trans(std::uint32_t (&r)[2], const void* row) { ldmatrix<2, true>(r, row); }
inline void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* row) { ldmatrix<4, true>(r, row); }

inline void cp_async_16(void* shared_destination, const void* global_source, int source_bytes = 16) {
  ::attnkit::sim::cp_async(shared_destination, global_source, 16, static_cast<std::size_t>(source_bytes));
}
inline void cp_async_commit() { ::attnkit::sim::cp_async_commit(); }
template <int N>
void cp_async_wait() {
  ::attnkit::sim::cp_async_wait(N);
}

// See the CUDA twin above. The sim gives the instruction's worst case: the correctly rounded
// power moved 2 ulp away, up or down by the lowest bit of x, and results below 2^-126 flushed
// to 0, so that tests see what the documented error does to the kernels' results.
inline float exp2_approx(float x) {
  const float exact = std::exp2(x);
  if (std::isnan(exact) || std::isinf(exact)) return exact;
  if (exact < 1.17549435e-38f) return 0.0f;
  std::uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const float away = bits & 1u ? INFINITY : 0.0f;
  return std::nextafter(std::nextafter(exact, away), away);
}

template <typename T>
void load_8_as_float(float (&x)[8], const T* address) {
  ::attnkit::sim::check_aligned(address, 16, "a 16-byte load");
  T values[8];
  std::memcpy(values, address, 16);
  for (int i = 0; i < 8; ++i) x[i] = to_float(values[i]);
}

inline void store_pair(void* address, std::uint32_t pair) {
  ::attnkit::sim::check_aligned(address, 4, "a 32-bit store");
  std::memcpy(address, &pair, 4);
}

#endif

// The stream a launcher was given (launchers take void* so that host code needs no CUDA header).
inline stream_t as_stream(void* stream) { return static_cast<stream_t>(stream); }

// Blocks of `threads` for a grid-stride loop over `count` elements: enough for one element per
// thread, at least 1, at most 4096 (each thread then takes several).
inline unsigned grid_stride_blocks(std::int64_t count, int threads) {
  const std::int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 4096 ? 4096 : blocks));
}

// Two 16-bit values packed as a register pair holds them (the first in the low half).
template <typename T>
AK_HOST_DEVICE inline std::uint32_t pack2(T low, T high) {
  std::uint16_t l, h;
  std::memcpy(&l, &low, 2);
  std::memcpy(&h, &high, 2);
  return static_cast<std::uint32_t>(l) | static_cast<std::uint32_t>(h) << 16;
}

}  // namespace ak
