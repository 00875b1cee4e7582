// The safetensors format (see safetensors.h), and atomic file writes.
#include "attnkit/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sha256.h"

namespace attnkit {
namespace {

// The metadata key of a tensor's SHA-256 is this prefix and its name; the prefix and
// "__metadata__" hold the digest of the rest of the metadata (metadata_text).
constexpr const char* kDigestKey = "sha256:";
const std::string kMetadataDigestKey = std::string(kDigestKey) + "__metadata__";

// The metadata other than the digests, one "key=value" a line in the order of the keys (values
// may hold anything: the length of each comes first).
std::string metadata_text(const std::map<std::string, std::string>& metadata) {
  std::string text;
  for (const auto& [key, value] : metadata)
    if (key.rfind(kDigestKey, 0) != 0) text += key + "=" + std::to_string(value.size()) + ":" + value + "\n";
  return text;
}

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
  }
  return "?";
}

bool parse_dtype(const std::string& name, DType* dtype) {
  for (const DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::u8})
    if (name == safetensors_dtype(d)) {
      *dtype = d;
      return true;
    }
  return false;
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ATTNKIT_CHECK(fd >= 0, "cannot write '", temporary, "': ", std::strerror(errno));
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      ATTNKIT_FAIL("cannot write '", temporary, "': ", std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    ATTNKIT_FAIL("cannot write '", path, "': ", std::strerror(error));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTNKIT_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  ATTNKIT_CHECK(!in.bad(), "cannot read '", path, "'");
  return contents.str();
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;
  std::map<std::string, std::string> with_digests = metadata;
  for (const auto& [name, tensor] : tensors) {
    ATTNKIT_CHECK(metadata.count(kDigestKey + name) == 0, "write_safetensors: the metadata key '", kDigestKey, name,
                  "' is attnkit's own");
    host.push_back(tensor.to(Device::cpu()));
    with_digests[kDigestKey + name] = sha256_hex(host.back().raw_data(), host.back().nbytes());
  }
  const std::string metadata_bytes = metadata_text(metadata);
  with_digests[kMetadataDigestKey] = sha256_hex(metadata_bytes.data(), metadata_bytes.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = with_digests;
  std::size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    ATTNKIT_CHECK(name != "__metadata__" && !header.contains(name), "write_safetensors: the name '", name,
                  "' is reserved or repeated");
    header[name] = {{"dtype", safetensors_dtype(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + tensor.nbytes()}}};
    offset += tensor.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  const std::uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) file[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
  file += text;
  file.reserve(file.size() + offset);
  for (const Tensor& tensor : host) file.append(static_cast<const char*>(tensor.raw_data()), tensor.nbytes());
  write_file_atomically(path, file);
}

namespace {

// Checks each tensor against its digest and takes the digests out of the metadata.
void verify_digests(SafetensorsFile& file, const std::string& path) {
  std::size_t digests = 0;
  for (const auto& entry : file.metadata) digests += entry.first.rfind(kDigestKey, 0) == 0;
  file.verified = digests > 0;
  if (digests == 0) return;
  const auto metadata_digest = file.metadata.find(kMetadataDigestKey);
  ATTNKIT_CHECK(metadata_digest != file.metadata.end(), "'", path,
                "': the file carries SHA-256 digests, but none for its metadata");
  const std::string metadata_bytes = metadata_text(file.metadata);
  ATTNKIT_CHECK(sha256_hex(metadata_bytes.data(), metadata_bytes.size()) == metadata_digest->second, "'", path,
                "': its metadata does not match their SHA-256 (the file is damaged)");
  file.metadata.erase(metadata_digest);
  for (const auto& [name, tensor] : file.tensors) {
    const auto found = file.metadata.find(kDigestKey + name);
    ATTNKIT_CHECK(found != file.metadata.end(), "'", path, "', tensor '", name,
                  "': the file carries SHA-256 digests, but none for this tensor");
    ATTNKIT_CHECK(sha256_hex(tensor.raw_data(), tensor.nbytes()) == found->second, "'", path, "', tensor '", name,
                  "': its bytes do not match their SHA-256 (the file is damaged)");
    file.metadata.erase(found);
  }
  for (const auto& entry : file.metadata)
    ATTNKIT_CHECK(entry.first.rfind(kDigestKey, 0) != 0, "'", path, "': a SHA-256 digest for '",
                  entry.first.substr(std::strlen(kDigestKey)), "', which the file does not hold");
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

SafetensorsFile parse_safetensors(const std::string& file, const std::string& path) {
  ATTNKIT_CHECK(file.size() >= 8, "'", path, "' is not a safetensors file: it has ", file.size(),
                " bytes, fewer than the 8 of the header length");
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(file[static_cast<std::size_t>(i)]);
  ATTNKIT_CHECK(length <= file.size() - 8, "'", path, "': the header length ", length, " exceeds the ",
                file.size() - 8, " bytes after it (truncated or not a safetensors file)");
  const std::size_t data_start = 8 + static_cast<std::size_t>(length);
  const std::size_t data_size = file.size() - data_start;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.begin() + 8, file.begin() + static_cast<std::ptrdiff_t>(data_start));
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("'", path, "': corrupt safetensors header: ", e.what());
  }
  ATTNKIT_CHECK(header.is_object(), "'", path, "': the safetensors header is not a JSON object");

  SafetensorsFile result;
  std::vector<std::pair<std::size_t, std::pair<std::string, Tensor>>> by_offset;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      ATTNKIT_CHECK(entry.is_object(), "'", path, "': __metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        ATTNKIT_CHECK(value.is_string(), "'", path, "': __metadata__ entry '", key, "' is not a string");
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "'" + path + "', tensor '" + name + "'";
    ATTNKIT_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                      entry.contains("data_offsets"),
                  where, ": needs dtype, shape and data_offsets");
    DType dtype;
    ATTNKIT_CHECK(entry["dtype"].is_string() && parse_dtype(entry["dtype"].get<std::string>(), &dtype), where,
                  ": unsupported dtype ", entry["dtype"].dump(), " (attnkit reads F32, F64, F16, BF16, I32, U8)");
    const auto& shape_json = entry["shape"];
    ATTNKIT_CHECK(shape_json.is_array(), where, ": shape is not an array");
    Shape shape;
    std::uint64_t count = 1;
    for (const auto& extent : shape_json) {
      ATTNKIT_CHECK(extent.is_number_unsigned(), where, ": shape ", shape_json.dump(), " has an invalid extent");
      const std::uint64_t e = extent.get<std::uint64_t>();
      // The byte count must fit too: no extent, nor the product with the element size, overflows.
      const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / dtype_size(dtype);
      ATTNKIT_CHECK(e <= limit && (e == 0 || count <= limit / e), where, ": shape ", shape_json.dump(), " overflows");
      count *= e;
      shape.push_back(static_cast<std::int64_t>(e));
    }
    const auto& offsets = entry["data_offsets"];
    ATTNKIT_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                      offsets[1].is_number_unsigned(),
                  where, ": data_offsets must be two non-negative integers");
    const std::uint64_t begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    ATTNKIT_CHECK(begin <= end && end <= data_size, where, ": data_offsets [", begin, ", ", end,
                  "] lie outside the ", data_size, " bytes of data (truncated file?)");
    ATTNKIT_CHECK(end - begin == count * dtype_size(dtype), where, ": ", end - begin, " bytes do not hold ",
                  dtype_name(dtype), shape_str(shape), " (", count * dtype_size(dtype), " bytes)");
    Tensor tensor = Tensor::empty(shape, dtype);
    if (end > begin) std::memcpy(tensor.raw_data(), file.data() + data_start + begin, end - begin);
    by_offset.push_back({static_cast<std::size_t>(begin), {name, tensor}});
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& entry : by_offset) result.tensors.push_back(std::move(entry.second));
  verify_digests(result, path);
  return result;
}

}  // namespace attnkit
