// safetensors: round trips in every dtype, a reading by numpy alone, clear errors for every
// kind of damaged file, and the SHA-256 digests that catch damage in the data (SHA-256 itself
// against FIPS 180-2's examples and Python's hashlib).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attnkit/safetensors.h"
#include "sha256.h"
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

TEST(Sha256, MatchesTheStandardsExamplesAndHashlib) {
  const auto digest = [](const std::string& text) { return sha256_hex(text.data(), text.size()); };
  EXPECT_EQ(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(digest(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Every length around the block and padding boundaries, against Python's hashlib.
  std::string text, expected_lines, ours;
  for (int n = 0; n <= 130; ++n) {
    text.push_back(static_cast<char>('a' + n % 26));
    ours += digest(text.substr(0, static_cast<std::size_t>(n))) + "\n";
  }
  const std::string command = std::string(ATTNKIT_TEST_PYTHON) +
                              " -c \"import hashlib\nfor n in range(131): print(hashlib.sha256(bytes(97 + i % 26 "
                              "for i in range(n))).hexdigest())\"";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) expected_lines += buffer;
  ASSERT_EQ(pclose(pipe), 0) << command;
  EXPECT_EQ(ours, expected_lines);
}

// A file's bytes with one bit of byte `at` flipped.
std::string flipped(const std::string& path, std::size_t at) {
  std::string bytes = read_file(path);
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  return bytes;
}

TEST(Safetensors, DigestsCatchDamageAndNameTheTensor) {
  const std::string path = temp_path("digests.safetensors");
  const auto tensors = sample_tensors();
  write_safetensors(path, tensors, {{"format", "attnkit"}, {"note", "=x\ny"}});
  const SafetensorsFile file = read_safetensors(path);
  EXPECT_TRUE(file.verified);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "attnkit"}, {"note", "=x\ny"}}));
  // A flipped bit in the data of tensor "half" (the third, after 15 floats and 4 doubles).
  const std::string bytes = read_file(path);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const std::size_t half_at = 8 + static_cast<std::size_t>(header) + 15 * 4 + 4 * 8 + 3;
  EXPECT_ATTNKIT_ERROR(parse_safetensors(flipped(path, half_at), "damaged"),
                       "'damaged', tensor 'half': its bytes do not match their SHA-256 (the file is damaged)");
  // A flipped bit in a metadata value (the 'n' of "attnkit" becomes '~').
  const std::size_t format_at = bytes.find("\"attnkit\"") + 5;
  EXPECT_ATTNKIT_ERROR(parse_safetensors(flipped(path, format_at), "damaged"), "its metadata does not match");
  // Files written without digests load, unverified; a digest missing for one tensor is an error.
  const std::string plain = with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\1'));
  const SafetensorsFile unverified = parse_safetensors(plain, "plain");
  EXPECT_FALSE(unverified.verified);
  EXPECT_EQ(unverified.tensors.size(), 1u);
  write_safetensors(path, {{"w", Tensor::full({2}, 1.0)}});
  std::string partial = read_file(path);
  partial.replace(partial.find("\"sha256:w\""), 10, "\"sha256:v\"");
  EXPECT_ATTNKIT_ERROR(parse_safetensors(partial, "partial"), "'partial', tensor 'w': the file carries SHA-256 digests, but none for this tensor");
  std::filesystem::remove(path);
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
