#include "common/image/v1/sqlite.h"

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {

absl::StatusOr<bool> SqliteStmt::Step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return absl::InvalidArgumentError(StrCat(what_, ": ", sqlite3_errmsg(db_)));
}

absl::Status SqliteStmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  return absl::OkStatus();
}

absl::Status SqliteStmt::BindBlob(int index, std::string_view blob) {
  if (sqlite3_bind_blob(stmt_.get(), index, blob.data(), static_cast<int>(blob.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    return absl::InternalError(StrCat(what_, ": bind: ", sqlite3_errmsg(db_)));
  }
  return absl::OkStatus();
}

absl::Status SqliteStmt::BindInt(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_.get(), index, value) != SQLITE_OK) {
    return absl::InternalError(StrCat(what_, ": bind: ", sqlite3_errmsg(db_)));
  }
  return absl::OkStatus();
}

std::string_view SqliteStmt::Bytes(int col) const {
  const void* data = Type(col) == SQLITE_TEXT
                         ? static_cast<const void*>(sqlite3_column_text(stmt_.get(), col))
                         : sqlite3_column_blob(stmt_.get(), col);
  const int size = sqlite3_column_bytes(stmt_.get(), col);
  if (data == nullptr || size <= 0) return {};
  return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

absl::StatusOr<SqliteDb> SqliteDb::OpenReadOnly(const std::filesystem::path& path,
                                                std::string what) {
  const std::string uri = StrCat("file:", path.string(), "?immutable=1");
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(uri.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  SqliteDb db(raw, std::move(what));
  if (rc != SQLITE_OK) {
    return absl::InvalidArgumentError(StrCat(
        db.what_,
        ": cannot open as SQLite: ", raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  // A small page cache: rows are streamed once.
  sqlite3_exec(raw, "PRAGMA cache_size=-8192", nullptr, nullptr, nullptr);
  return db;
}

absl::StatusOr<SqliteStmt> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db_.get());
    sqlite3_finalize(stmt);
    return absl::InvalidArgumentError(StrCat(what_, ": ", msg, " (is it a v1 table?)"));
  }
  return SqliteStmt(db_.get(), stmt, what_);
}

absl::StatusOr<int64_t> SqliteDb::QueryInt(std::string_view sql) {
  OTA_ASSIGN_OR_RETURN(SqliteStmt stmt, Prepare(sql));
  OTA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InvalidArgumentError(StrCat(what_, ": query returned no row"));
  return stmt.Int(0);
}

}  // namespace ota::image::v1
