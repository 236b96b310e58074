// A strict reader for the small msgpack subset OTA image v1 uses: non-negative integers, str,
// bin, arrays and maps (resource-table filters, file-table xattrs). Anything else — floats, nil,
// booleans, ext types, negative integers, truncated or trailing bytes — is kInvalidArgument.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::image::v1 {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view data) : data_(data) {}

  absl::StatusOr<uint64_t> ReadUint();
  absl::StatusOr<std::string_view> ReadStr();
  absl::StatusOr<std::string_view> ReadBin();
  absl::StatusOr<uint32_t> ReadArrayHeader();
  absl::StatusOr<uint32_t> ReadMapHeader();
  bool AtEnd() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  absl::StatusOr<uint8_t> Byte();
  absl::StatusOr<uint64_t> BigEndian(size_t bytes);
  absl::StatusOr<std::string_view> Take(uint64_t size);
  absl::Status Unexpected(uint8_t tag, std::string_view wanted) const;

  std::string_view data_;
  size_t pos_ = 0;
};

// file-table xattrs: a msgpack map from attribute name (str) to value (bin), as tier4 writes
// it. Names must be non-empty, without NUL, unique; at most 64 KiB per value.
absl::StatusOr<std::vector<std::pair<std::string_view, std::string_view>>> DecodeXattrs(
    std::string_view msgpack);

// Encoders for the builder and tests: smallest integer forms, str8+ and bin8+ as needed.
void MsgpackAppendUint(std::string& out, uint64_t v);
void MsgpackAppendStr(std::string& out, std::string_view s);
void MsgpackAppendBin(std::string& out, std::string_view b);
void MsgpackAppendArrayHeader(std::string& out, uint32_t n);
void MsgpackAppendMapHeader(std::string& out, uint32_t n);

}  // namespace ota::image::v1
