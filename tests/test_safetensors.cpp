// safetensors: round trips in every dtype, a reading by numpy alone, and clear errors for every
// kind of damaged file.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attnkit/safetensors.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("attnkit_" + name)).string();
}

std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  Generator gen(161);
  return {{"dense/kernel", random_tensor({3, 5}, gen, -2, 2, DType::f32)},
          {"double", random_tensor({4}, gen, -2, 2, DType::f64)},
          {"half", random_tensor({2, 3}, gen, -2, 2, DType::f16)},
          {"brain", random_tensor({7}, gen, -2, 2, DType::bf16)},
          {"ids", random_ids({2, 2}, 100, gen)},
          {"mask", random_mask(2, 5, gen)},
          {"scalar", Tensor::full({}, 3.5)},
          {"empty", Tensor::zeros({0, 4})}};
}

TEST(Safetensors, RoundTripsEveryDtype) {
  const std::string path = temp_path("roundtrip.safetensors");
  const auto tensors = sample_tensors();
  write_safetensors(path, tensors, {{"format", "attnkit"}});
  const SafetensorsFile file = read_safetensors(path);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  EXPECT_EQ(file.metadata.at("format"), "attnkit");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.tensors[i].first, tensors[i].first);
    EXPECT_EQ(file.tensors[i].second.describe(), tensors[i].second.describe());
    EXPECT_EQ(values(file.tensors[i].second), values(tensors[i].second)) << tensors[i].first;
  }
  // The data starts 8-byte aligned, as the format recommends.
  std::ifstream in(path, std::ios::binary);
  std::uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), 8);
  EXPECT_EQ(length % 8, 0u);
  std::filesystem::remove(path);
}

TEST(Safetensors, NumpyReadsWhatWeWrite) {
  const std::string path = temp_path("numpy.safetensors");
  const auto tensors = sample_tensors();
  write_safetensors(path, tensors, {{"model", "test"}});
  const std::string command = std::string(ATTNKIT_TEST_PYTHON) + " " + ATTNKIT_TEST_SOURCE_DIR +
                              "/read_safetensors.py " + path;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  ASSERT_EQ(pclose(pipe), 0) << command << " failed: " << output;
  const nlohmann::json read = nlohmann::json::parse(output);
  EXPECT_EQ(read["__metadata__"]["model"], "test");
  for (const auto& [name, tensor] : tensors) {
    const auto& entry = read.at(name);
    EXPECT_EQ(entry["shape"].get<Shape>(), tensor.shape()) << name;
    const std::vector<double> v = values(tensor);
    double sum = 0;
    for (const double x : v) sum += x;
    EXPECT_NEAR(entry["sum"].get<double>(), sum, 1e-6 * (1 + std::abs(sum))) << name;
    if (!v.empty()) {
      EXPECT_EQ(entry["first"].get<double>(), v[0]) << name;
    }
  }
  std::filesystem::remove(path);
}

// Writes `bytes` to a file and expects reading it to fail with `fragment`.
void expect_rejected(const std::string& bytes, const std::string& fragment) {
  const std::string path = temp_path("damaged.safetensors");
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_ATTNKIT_ERROR(read_safetensors(path), fragment);
  std::filesystem::remove(path);
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return bytes + json + data;
}

TEST(Safetensors, DamagedFilesAreRejectedWithTheReason) {
  const std::string good = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected("", "fewer than the 8 of the header length");
  expect_rejected(with_header(good, std::string(8, '\1')).substr(0, 20), "exceeds");
  expect_rejected(with_header(good, std::string(4, '\1')), "lie outside the 4 bytes of data (truncated file?)");
  expect_rejected(with_header(R"({"w":{"dtype":"F32",)", ""), "corrupt safetensors header");
  expect_rejected(with_header("[1, 2]", ""), "not a JSON object");
  expect_rejected(with_header(R"({"w":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}})", "ab"), "unsupported dtype");
  expect_rejected(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\1')),
                  "8 bytes do not hold f32[3]");
  expect_rejected(with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\1')),
                  "invalid extent");
  expect_rejected(with_header(R"({"w":{"dtype":"F32","shape":[2]}})", std::string(8, '\1')),
                  "needs dtype, shape and data_offsets");
  // 2^62 doubles are 2^65 bytes: a 64-bit byte count wraps to 0 and matched the empty range.
  expect_rejected(with_header(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
                  "overflows");
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
                  "overflows");
  expect_rejected(with_header(R"({"__metadata__":{"a":1}})", ""), "is not a string");
  EXPECT_ATTNKIT_ERROR(read_safetensors(temp_path("no_such_file")), "cannot open");
}

TEST(Safetensors, WritesAreAtomic) {
  // A write that fails leaves the old file whole and no temporary behind.
  const std::string path = temp_path("atomic.safetensors");
  write_safetensors(path, {{"a", Tensor::full({3}, 1.0)}});
  EXPECT_ATTNKIT_ERROR(write_safetensors(path, {{"a", Tensor::zeros({1})}, {"a", Tensor::zeros({1})}}), "repeated");
  EXPECT_EQ(values(read_safetensors(path).tensors[0].second), (std::vector<double>{1, 1, 1}));
  EXPECT_ATTNKIT_ERROR(write_file_atomically("/nonexistent-dir/x", "data"), "cannot write");
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    EXPECT_EQ(entry.path().string().find("atomic.safetensors.tmp"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace attnkit
