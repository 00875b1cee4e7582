// Internal: SHA-256 (FIPS 180-4), the checksum that safetensors files written by attnkit carry
// for each tensor.
#pragma once

#include <cstddef>
#include <string>

namespace attnkit {

// The digest of `size` bytes at `data`, as 64 lower-case hexadecimal digits.
std::string sha256_hex(const void* data, std::size_t size);

}  // namespace attnkit
