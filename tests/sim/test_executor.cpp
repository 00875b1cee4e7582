// The sim executor itself: kernels with planted bugs (a missing barrier, an out-of-bounds write,
// divergent barriers, a barrier some threads skip, a warp exchange with a missing lane, cp.async
// and ldmatrix addresses off their 16-byte alignment) must be caught and named; correct kernels
// (a warp-shuffle reduction, a shared-memory transpose, a tiled matrix product through ldmatrix
// and mma.sync, cp.async staging) must match plain loops; ex2.approx's host version is the
// instruction's documented worst case.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/dialect.h"
#include "support.h"

namespace {

using attnkit::Generator;
using attnkit::sim::Buffer;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  Generator generator(seed);
  const attnkit::Tensor t = attnkit::testing::random_tensor({static_cast<std::int64_t>(n)}, generator, -1.0, 1.0, attnkit::DType::f32);
  return std::vector<float>(t.data<float>(), t.data<float>() + n);
}

// ---------------------------------------------------------------- a block-wide sum

// Sums `n` floats with one block of `threads`: each thread adds its stride of the input, the
// partial sums are halved in shared memory, with a barrier between the halving steps.
__global__ void block_sum(const float* x, int n, float* out) {
  AK_SHARED(float, partial, [256]);
  const unsigned t = threadIdx.x;
  float sum = 0;
  for (int i = static_cast<int>(t); i < n; i += static_cast<int>(blockDim.x)) sum += x[i];
  partial[t] = sum;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) *out = partial[0];
}

// The same without the barrier inside the halving loop: thread t may read partial[t + half]
// before thread t + half has added into it.
__global__ void block_sum_missing_barrier(const float* x, int n, float* out) {
  AK_SHARED(float, partial, [256]);
  const unsigned t = threadIdx.x;
  float sum = 0;
  for (int i = static_cast<int>(t); i < n; i += static_cast<int>(blockDim.x)) sum += x[i];
  partial[t] = sum;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
  }
  if (t == 0) *out = partial[0];
}

TEST(SimExecutor, BlockSumMatchesAPlainLoop) {
  const std::vector<float> values = random_floats(1000, 1);
  Buffer<float> x(values), out(1);
  out.fill(NAN);
  AK_LAUNCH(block_sum, 1, 256, 0, nullptr, x.data(), 1000, out.data());
  double expected = 0;
  for (const float v : values) expected += v;
  EXPECT_NEAR(out.values()[0], expected, 1e-4);
}

TEST(SimExecutor, CatchesAMissingBarrier) {
  const std::vector<float> values = random_floats(1000, 2);
  Buffer<float> x(values), out(1);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(block_sum_missing_barrier, 1, 256, 0, nullptr, x.data(), 1000, out.data()),
                       "kernel block_sum_missing_barrier: results differ between the forward and");
}

// Two warps swap halves through shared memory. The warp shuffle between the write and the read
// orders the lanes of one warp, not the two warps: only the barrier makes the other warp's half
// visible.
template <bool kWithBarrier>
__global__ void swap_halves_across_warps(float* out) {
  AK_SHARED(float, halves, [64]);
  const unsigned t = threadIdx.x;
  halves[t] = static_cast<float>(t);
  const float neighbour = ak::shfl_xor(static_cast<float>(t), 1);
  if (kWithBarrier) __syncthreads();
  out[t] = halves[(t + 32) % 64] + 0 * neighbour;
}

TEST(SimExecutor, CatchesAMissingBarrierBetweenWarpsThatMeetAtWarpOperations) {
  Buffer<float> out(64);
  AK_LAUNCH(swap_halves_across_warps<true>, 1, 64, 0, nullptr, out.data());
  for (unsigned t = 0; t < 64; ++t) EXPECT_EQ(out.values()[t], static_cast<float>((t + 32) % 64));
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(swap_halves_across_warps<false>, 1, 64, 0, nullptr, out.data()),
                       "results differ between the forward and");
}

// ---------------------------------------------------------------- barriers

__global__ void barrier_skipped_by_some(float* out) {
  if (threadIdx.x < 20) {
    out[threadIdx.x] = 1;
    __syncthreads();
  }
}

__global__ void divergent_barriers(float* out) {
  if (threadIdx.x % 2 == 0) {
    out[threadIdx.x] = 1;
    __syncthreads();
  } else {
    out[threadIdx.x] = 2;
    __syncthreads();
  }
}

TEST(SimExecutor, CatchesABarrierNotReachedByAllThreads) {
  Buffer<float> out(64);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(barrier_skipped_by_some, 2, 64, 0, nullptr, out.data()),
                       "kernel barrier_skipped_by_some, block (0,0,0): the barrier at");
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(barrier_skipped_by_some, 2, 64, 0, nullptr, out.data()),
                       "is not reached by all 64 threads of the block: 44 exited without it");
}

TEST(SimExecutor, CatchesDivergentBarriers) {
  Buffer<float> out(64);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(divergent_barriers, 1, 64, 0, nullptr, out.data()),
                       "kernel divergent_barriers, block (0,0,0): divergent barriers: thread");
}

// ---------------------------------------------------------------- out of bounds

// Writes one element per thread for n threads rounded up to the block: no bounds check.
__global__ void write_without_bounds_check(float* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}
__global__ void write_with_bounds_check(float* out, int n) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (static_cast<int>(i) < n) out[i] = 1.0f;
}

TEST(SimExecutor, BoundsCheckedWritesPass) {
  Buffer<float> out(1000);
  AK_LAUNCH(write_with_bounds_check, 4, 256, 0, nullptr, out.data(), 1000);
  for (const float v : out.values()) ASSERT_EQ(v, 1.0f);
}

TEST(SimExecutorDeathTest, CatchesAnOutOfBoundsWriteAndNamesTheKernel) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // 1,000 floats and 1,024 threads: the writes run off the end past the canary into the guard page.
  EXPECT_DEATH(
      {
        Buffer<float> out(1000);
        AK_LAUNCH(write_without_bounds_check, 4, 256, 0, nullptr, out.data());
      },
      "sim: kernel write_without_bounds_check, block \\(3,0,0\\), thread \\(232,0,0\\): out-of-bounds access 0 bytes "
      "past the end of a buffer of 4000 bytes");
}

TEST(SimExecutor, CatchesAWriteIntoTheRoundingCanary) {
  Buffer<float> out(1001);  // 4,004 bytes, rounded to 4,016: the next three floats are canaries
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(write_with_bounds_check, 1, 1002, 0, nullptr, out.data(), 1002),
                       "sim: kernel write_with_bounds_check wrote 0 bytes past the end of a buffer of 4004 bytes");
}

// ---------------------------------------------------------------- warp exchanges

// Sums 32 values per warp with xor shuffles; every lane ends with the warp's total.
__global__ void warp_sums(const float* x, float* out, int n) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = static_cast<int>(i) < n ? x[i] : 0.0f;
  for (int offset = 16; offset > 0; offset /= 2) v += ak::shfl_xor(v, offset);
  if (static_cast<int>(i) < n) out[i] = v;
}

__global__ void shuffle_with_lane_exited(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = ak::shfl(1.0f, 0);
}

__global__ void votes(const int* x, unsigned* ballots, int* any, int* all) {
  const bool positive = x[threadIdx.x] > 0;
  const unsigned b = ak::ballot(positive);
  const bool a = ak::any(positive), e = ak::all(positive);
  if (ak::lane_id() == 0) {
    ballots[threadIdx.x / 32] = b;
    any[threadIdx.x / 32] = a;
    all[threadIdx.x / 32] = e;
  }
}

TEST(SimExecutor, WarpShuffleReductionMatchesAPlainLoop) {
  const int n = 200;  // the last warp is partly out of range
  const std::vector<float> values = random_floats(n, 3);
  Buffer<float> x(values), out(n);
  out.fill(NAN);
  AK_LAUNCH(warp_sums, 2, 128, 0, nullptr, x.data(), out.data(), n);
  const std::vector<float> got = out.values();
  for (int i = 0; i < n; ++i) {
    double expected = 0;
    for (int j = i / 32 * 32; j < std::min(n, i / 32 * 32 + 32); ++j) expected += values[static_cast<std::size_t>(j)];
    ASSERT_NEAR(got[static_cast<std::size_t>(i)], expected, 1e-5) << i;
  }
}

TEST(SimExecutor, CatchesAShuffleWhoseLaneHasExited) {
  Buffer<float> out(32);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(shuffle_with_lane_exited, 1, 32, 0, nullptr, out.data()),
                       "__shfl_sync by lane 0 of warp 0 waits for lane 5, which has exited");
}

TEST(SimExecutor, VotesMatchTheirDefinitions) {
  std::vector<int> values(64);
  Generator generator(4);
  for (int& v : values) v = static_cast<int>(generator.uniform_int(3)) - 1;
  for (int l = 32; l < 64; ++l) values[static_cast<std::size_t>(l)] = 1;  // warp 1: all positive
  Buffer<int> x(values), any(2), all(2);
  Buffer<unsigned> ballots(2);
  AK_LAUNCH(votes, 1, 64, 0, nullptr, x.data(), ballots.data(), any.data(), all.data());
  for (int w = 0; w < 2; ++w) {
    unsigned expected = 0;
    for (int l = 0; l < 32; ++l) expected |= values[static_cast<std::size_t>(32 * w + l)] > 0 ? 1u << l : 0u;
    EXPECT_EQ(ballots.values()[static_cast<std::size_t>(w)], expected);
    EXPECT_EQ(any.values()[static_cast<std::size_t>(w)], expected != 0);
    EXPECT_EQ(all.values()[static_cast<std::size_t>(w)], expected == 0xFFFFFFFFu);
  }
}

// ---------------------------------------------------------------- shared memory

// A 32x32 tile transpose through padded shared memory: rows x cols in, cols x rows out.
__global__ void transpose(const float* in, float* out, int rows, int cols) {
  AK_SHARED(float, tile, [32][33]);
  const int x = static_cast<int>(blockIdx.x * 32 + threadIdx.x), y0 = static_cast<int>(blockIdx.y * 32);
  for (int dy = static_cast<int>(threadIdx.y); dy < 32; dy += static_cast<int>(blockDim.y))
    if (x < cols && y0 + dy < rows) tile[dy][threadIdx.x] = in[(y0 + dy) * cols + x];
  __syncthreads();
  const int out_x = static_cast<int>(blockIdx.y * 32 + threadIdx.x), out_y0 = static_cast<int>(blockIdx.x * 32);
  for (int dy = static_cast<int>(threadIdx.y); dy < 32; dy += static_cast<int>(blockDim.y))
    if (out_x < rows && out_y0 + dy < cols) out[(out_y0 + dy) * rows + out_x] = tile[threadIdx.x][dy];
}

TEST(SimExecutor, SharedMemoryTransposeMatchesAPlainLoop) {
  const int rows = 45, cols = 70;
  const std::vector<float> values = random_floats(rows * cols, 5);
  Buffer<float> in(values), out(rows * cols);
  out.fill(NAN);
  AK_LAUNCH(transpose, dim3((cols + 31) / 32, (rows + 31) / 32), dim3(32, 8), 0, nullptr, in.data(), out.data(), rows,
            cols);
  const std::vector<float> got = out.values();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) ASSERT_EQ(got[static_cast<std::size_t>(c * rows + r)], values[static_cast<std::size_t>(r * cols + c)]);
}

// ---------------------------------------------------------------- mma.sync, ldmatrix, cp.async

// C [M, N] f32 = A [M, K] times B [K, N] (16-bit, row-major), one warp per 16x8 tile of C. The
// warp stages a 16x16 tile of A and a 16x8 tile of B in shared memory through cp.async, loads A
// with ldmatrix.x4 and B (stored k-major) with ldmatrix.x2.trans, and accumulates with mma.sync.
// M, N and K must be multiples of 16, 8 and 16.
template <typename T>
__global__ void mma_matmul(const T* a, const T* b, float* c, int m, int n, int k) {
  AK_SHARED(T, a_tile, [16][16]);
  AK_SHARED(T, b_tile, [16][8]);
  const unsigned lane = ak::lane_id();
  const int row0 = static_cast<int>(blockIdx.y * 16), col0 = static_cast<int>(blockIdx.x * 8);
  float accumulator[4] = {0, 0, 0, 0};
  for (int k0 = 0; k0 < k; k0 += 16) {
    // A: 16 rows of 32 bytes, two 16-byte pieces each: one piece per lane.
    ak::cp_async_16(&a_tile[lane / 2][(lane % 2) * 8], a + (row0 + static_cast<int>(lane / 2)) * k + k0 + (lane % 2) * 8);
    // B: 16 rows of 16 bytes: lanes 0 to 15.
    if (lane < 16) ak::cp_async_16(&b_tile[lane][0], b + (k0 + static_cast<int>(lane)) * n + col0);
    ak::cp_async_commit();
    ak::cp_async_wait<0>();
    __syncwarp();
    std::uint32_t a_fragment[4], b_fragment[2];
    // Matrices 0..3 of A: rows 0-7/cols 0-7, rows 8-15/cols 0-7, rows 0-7/cols 8-15, rows 8-15/cols 8-15.
    ak::ldmatrix_x4(a_fragment, &a_tile[(lane % 8) + ((lane / 8) % 2) * 8][(lane / 16) * 8]);
    ak::ldmatrix_x2_trans(b_fragment, &b_tile[(lane % 8) + ((lane / 8) % 2) * 8][0]);
    ak::mma_m16n8k16<T>(accumulator, a_fragment, b_fragment, accumulator);
    __syncwarp();
  }
  const int g = static_cast<int>(lane / 4), c2 = static_cast<int>(2 * (lane % 4));
  c[(row0 + g) * n + col0 + c2] = accumulator[0];
  c[(row0 + g) * n + col0 + c2 + 1] = accumulator[1];
  c[(row0 + g + 8) * n + col0 + c2] = accumulator[2];
  c[(row0 + g + 8) * n + col0 + c2 + 1] = accumulator[3];
}

template <typename T>
void check_mma_matmul() {
  const int m = 48, n = 24, k = 64;
  const std::vector<float> a_values = random_floats(m * k, 6), b_values = random_floats(k * n, 7);
  std::vector<T> a16, b16;
  for (const float v : a_values) a16.push_back(T(v));
  for (const float v : b_values) b16.push_back(T(v));
  Buffer<T> a(a16), b(b16);
  Buffer<float> c(m * n);
  c.fill(NAN);
  AK_LAUNCH(mma_matmul<T>, dim3(n / 8, m / 16), 32, 0, nullptr, a.data(), b.data(), c.data(), m, n, k);
  const std::vector<float> got = c.values();
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double expected = 0;  // the rounded 16-bit inputs, multiplied exactly
      for (int p = 0; p < k; ++p)
        expected += static_cast<double>(static_cast<float>(a16[static_cast<std::size_t>(i * k + p)])) *
                    static_cast<float>(b16[static_cast<std::size_t>(p * n + j)]);
      ASSERT_NEAR(got[static_cast<std::size_t>(i * n + j)], expected, 1e-4) << i << ", " << j;
    }
}

TEST(SimExecutor, MmaMatrixProductMatchesAPlainLoopInHalf) { check_mma_matmul<ak::half>(); }
TEST(SimExecutor, MmaMatrixProductMatchesAPlainLoopInBfloat16) { check_mma_matmul<ak::bfloat16>(); }

// The same product without waiting for the asynchronous copies: the tiles are still poison.
__global__ void mma_matmul_without_wait(const ak::half* a, float* c) {
  AK_SHARED(ak::half, a_tile, [16][16]);
  const unsigned lane = ak::lane_id();
  ak::cp_async_16(&a_tile[lane / 2][(lane % 2) * 8], a + (lane / 2) * 16 + (lane % 2) * 8);
  ak::cp_async_commit();
  __syncwarp();
  std::uint32_t a_fragment[4];
  ak::ldmatrix_x4(a_fragment, &a_tile[(lane % 8) + ((lane / 8) % 2) * 8][(lane / 16) * 8]);
  const std::uint32_t b_fragment[2] = {ak::pack2(ak::half(1.0f), ak::half(1.0f)), ak::pack2(ak::half(1.0f), ak::half(1.0f))};
  float accumulator[4] = {0, 0, 0, 0};
  ak::mma_m16n8k16<ak::half>(accumulator, a_fragment, b_fragment, accumulator);
  c[lane] = accumulator[0];
}

TEST(SimExecutor, ReadingACpAsyncTileBeforeItsWaitSeesPoison) {
  std::vector<ak::half> values;
  for (const float v : random_floats(256, 8)) values.push_back(ak::half(v));
  Buffer<ak::half> a(values);
  Buffer<float> c(32);
  AK_LAUNCH(mma_matmul_without_wait, 1, 32, 0, nullptr, a.data(), c.data());
  for (const float v : c.values()) EXPECT_TRUE(std::isnan(v));
}

// ---------------------------------------------------------------- what the hardware requires

// A tile staged by cp.async, each lane's 16 bytes `shared_shift` bytes into shared memory and
// `global_shift` elements into the source.
__global__ void staged_copy(const ak::half* a, float* out, int shared_shift, int global_shift) {
  AK_SHARED(ak::half, tile, [16 * 16 + 16]);
  const unsigned lane = ak::lane_id();
  char* destination = reinterpret_cast<char*>(&tile[lane * 8]) + shared_shift;
  ak::cp_async_16(destination, a + global_shift + lane * 8);
  ak::cp_async_commit();
  ak::cp_async_wait<0>();
  __syncwarp();
  out[lane] = static_cast<float>(tile[lane * 8]);
}

// ldmatrix over a 16 x 16 tile (32-byte rows) read `shift` elements in.
__global__ void ldmatrix_rows(float* out, int shift) {
  AK_SHARED(ak::half, tile, [16 * 16 + 8]);
  const unsigned lane = ak::lane_id();
  for (int e = 0; e < 8; ++e) tile[lane * 8 + e] = ak::half(1.0f);
  if (lane < 8) tile[16 * 16 + lane] = ak::half(1.0f);
  __syncwarp();
  const unsigned m = lane / 8;
  std::uint32_t fragment[4];
  ak::ldmatrix_x4(fragment, &tile[(lane % 8 + m % 2 * 8) * 16 + m / 2 * 8 + shift]);
  out[lane] = static_cast<float>(fragment[0] != 0);
}

TEST(SimExecutor, CatchesMisalignedCpAsyncAndLdmatrixAddresses) {
  std::vector<ak::half> values;
  for (const float v : random_floats(512, 9)) values.push_back(ak::half(v));
  Buffer<ak::half> a(values);
  Buffer<float> out(32);
  AK_LAUNCH(staged_copy, 1, 32, 0, nullptr, a.data(), out.data(), 0, 0);  // aligned: runs
  for (unsigned lane = 0; lane < 32; ++lane) EXPECT_EQ(out.data()[lane], static_cast<float>(values[lane * 8]));
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(staged_copy, 1, 32, 0, nullptr, a.data(), out.data(), 8, 0),
                       "kernel staged_copy, block (0,0,0), thread (0,0,0): cp.async's shared destination at "
                       "address");
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(staged_copy, 1, 32, 0, nullptr, a.data(), out.data(), 0, 4),
                       "cp.async's global source at address");
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(staged_copy, 1, 32, 0, nullptr, a.data(), out.data(), 0, 4), "is not 16-byte aligned");
  AK_LAUNCH(ldmatrix_rows, 1, 32, 0, nullptr, out.data(), 0);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(ldmatrix_rows, 1, 32, 0, nullptr, out.data(), 4),
                       "kernel ldmatrix_rows, block (0,0,0), thread (0,0,0): an ldmatrix row at address");
}

// ex2.approx.ftz.f32 on the host: within 2 ulp of 2^x but never exact (the sim runs the worst
// case), 0 below 2^-126 and for -inf, NaN for NaN.
TEST(SimExecutor, Exp2ApproxIsTheInstructionsWorstCase) {
  const auto ulp = [](float y) { return std::nextafter(y, INFINITY) - y; };
  int moved = 0;
  for (int i = 0; i <= 20000; ++i) {
    const float x = -130.0f + 140.0f * static_cast<float>(i) / 20000.0f;
    const float exact = static_cast<float>(std::exp2(static_cast<double>(x)));
    const float y = ak::exp2_approx(x);
    if (exact < 1.17549435e-38f) {
      EXPECT_EQ(y, 0.0f) << x;
      continue;
    }
    EXPECT_LE(std::abs(y - exact), 2.5f * ulp(exact)) << x;
    EXPECT_LE(std::abs(y - exact) / exact, std::ldexp(1.0f, -21)) << x;
    moved += y != exact;
  }
  EXPECT_GT(moved, 15000);
  EXPECT_EQ(ak::exp2_approx(-INFINITY), 0.0f);
  EXPECT_EQ(ak::exp2_approx(INFINITY), INFINITY);
  EXPECT_TRUE(std::isnan(ak::exp2_approx(NAN)));
}

// ---------------------------------------------------------------- launch errors

TEST(SimExecutor, RejectsBadLaunchesByName) {
  Buffer<float> out(8);
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(write_with_bounds_check, 1, 2048, 0, nullptr, out.data(), 8),
                       "sim: kernel write_with_bounds_check: a block of (2048,1,1) threads; it must hold 1 to 1024");
  EXPECT_ATTNKIT_ERROR(AK_LAUNCH(write_with_bounds_check, 0, 32, 0, nullptr, out.data(), 8),
                       "sim: kernel write_with_bounds_check: an empty grid (0,1,1)");
}

}  // namespace
