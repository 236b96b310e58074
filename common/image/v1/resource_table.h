// The v1 resource table (reference/ota-image-v1.md §11): rs_manifest rows looked up by digest
// (the join key with the file table; the first row when an older image lists a digest twice) or
// by resource id (what filters reference). Read-only, one statement of each kind, rows decoded
// on demand: nothing of the table is held in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "common/image/v1/filter.h"
#include "common/image/v1/sqlite.h"

namespace ota::image::v1 {

struct ResourceRow {
  int64_t id = 0;
  crypto::Sha256Digest digest{};
  uint64_t size = 0;  // of the resource as reconstructed
  ResourceFilter filter;
};

class ResourceTable {
 public:
  static absl::StatusOr<ResourceTable> Open(const std::filesystem::path& path);

  // nullopt when no row has it; kInvalidArgument for a malformed row.
  absl::StatusOr<std::optional<ResourceRow>> FindByDigest(const crypto::Sha256Digest& digest);
  absl::StatusOr<std::optional<ResourceRow>> FindById(int64_t id);

 private:
  ResourceTable(SqliteDb db, SqliteStmt by_digest, SqliteStmt by_id)
      : db_(std::move(db)), by_digest_(std::move(by_digest)), by_id_(std::move(by_id)) {}
  absl::StatusOr<std::optional<ResourceRow>> ReadOne(SqliteStmt& stmt);

  SqliteDb db_;
  SqliteStmt by_digest_;
  SqliteStmt by_id_;
};

}  // namespace ota::image::v1
