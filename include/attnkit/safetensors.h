// attnkit/safetensors.h: reading and writing the safetensors format.
//
// A file is an 8-byte little-endian header length N, a JSON header of N bytes (padded with
// spaces to a multiple of 8), then the raw little-endian tensor data. The header maps each name
// to {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets into the data), and
// may hold "__metadata__", a map of strings. Python's safetensors and numpy read these files.
//
// Reading checks everything before trusting it: the header length against the file size, the
// JSON, every dtype, shape and offset range, and that each tensor's bytes match its shape; a
// problem is an attnkit::Error that names the file and the entry.
//
// Integrity: attnkit writes the SHA-256 of each tensor's bytes into the metadata (key
// "sha256:NAME"), and reading checks every tensor against its digest, so that a flipped bit in
// the data is an error naming the tensor rather than a model that quietly answers wrongly. A
// file with no digests at all (written elsewhere, or by attnkit before it wrote them) is read
// unverified, and says so (SafetensorsFile::verified); one with digests for some tensors only
// is an error.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attnkit/tensor.h"

namespace attnkit {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;           // without the digests
  bool verified = false;  // every tensor matched its SHA-256; false: the file carries none
};

// Writes atomically: a temporary file beside `path`, flushed, then renamed over it.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
SafetensorsFile read_safetensors(const std::string& path);
// The same from a file's bytes; errors name it `name`.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);

// Writes `contents` to `path` atomically (temporary file, flush, rename).
void write_file_atomically(const std::string& path, const std::string& contents);
// The whole file; an error names the path and the reason.
std::string read_file(const std::string& path);

}  // namespace attnkit
