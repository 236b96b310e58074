#include "common/image/v1/resource_table.h"

#include <cstring>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {

absl::StatusOr<ResourceTable> ResourceTable::Open(const std::filesystem::path& path) {
  OTA_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::OpenReadOnly(path, "resource table"));
  // ORDER BY resource_id LIMIT 1: the first row of a digest listed twice (older images).
  OTA_ASSIGN_OR_RETURN(SqliteStmt by_digest,
                       db.Prepare("SELECT resource_id,digest,size,filter_applied FROM rs_manifest "
                                  "WHERE digest=?1 ORDER BY resource_id LIMIT 1"));
  OTA_ASSIGN_OR_RETURN(SqliteStmt by_id,
                       db.Prepare("SELECT resource_id,digest,size,filter_applied FROM rs_manifest "
                                  "WHERE resource_id=?1"));
  return ResourceTable(std::move(db), std::move(by_digest), std::move(by_id));
}

absl::StatusOr<std::optional<ResourceRow>> ResourceTable::ReadOne(SqliteStmt& stmt) {
  absl::StatusOr<bool> found = stmt.Step();
  if (!found.ok() || !*found) {
    OTA_RETURN_IF_ERROR(stmt.Reset());
    if (!found.ok()) return found.status();
    return std::optional<ResourceRow>();
  }
  ResourceRow row;
  row.id = stmt.Int(0);
  const std::string_view digest = stmt.Bytes(1);
  const int64_t size = stmt.Int(2);
  if (digest.size() != 32 || size < 0) {
    OTA_RETURN_IF_ERROR(stmt.Reset());
    return absl::InvalidArgumentError(
        StrCat("resource table: row ", row.id, " has a malformed digest or size"));
  }
  std::memcpy(row.digest.data(), digest.data(), 32);
  row.size = static_cast<uint64_t>(size);
  absl::StatusOr<ResourceFilter> filter = ParseResourceFilter(stmt.OptBytes(3));
  OTA_RETURN_IF_ERROR(stmt.Reset());
  if (!filter.ok()) {
    return WithContext(filter.status(), StrCat("resource table row ", row.id));
  }
  row.filter = std::move(*filter);
  return std::optional<ResourceRow>(std::move(row));
}

absl::StatusOr<std::optional<ResourceRow>> ResourceTable::FindByDigest(
    const crypto::Sha256Digest& digest) {
  OTA_RETURN_IF_ERROR(by_digest_.BindBlob(
      1, std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())));
  return ReadOne(by_digest_);
}

absl::StatusOr<std::optional<ResourceRow>> ResourceTable::FindById(int64_t id) {
  OTA_RETURN_IF_ERROR(by_id_.BindInt(1, id));
  return ReadOne(by_id_);
}

}  // namespace ota::image::v1
