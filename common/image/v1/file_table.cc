#include "common/image/v1/file_table.h"

#include <sys/stat.h>

#include <climits>
#include <cstring>

#include "common/image/legacy/list_lines.h"  // ValidateImagePath
#include "common/image/v1/msgpack.h"
#include "common/image/v1/sqlite.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

constexpr int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged" to chown

absl::Status Bad(const FileTableRow& row, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("file table: '", row.path.substr(0, 4096), "': ", why));
}

absl::Status CheckCommon(const FileTableRow& row, bool allow_root) {
  if (!(allow_root && row.path == "/")) {
    if (absl::Status st = ValidateImagePath(row.path); !st.ok())
      return Bad(row, std::string(st.message()));
  }
  if (row.uid < 0 || row.uid > kMaxId || row.gid < 0 || row.gid > kMaxId) {
    return Bad(row, StrCat("owner ", row.uid, ":", row.gid, " out of range"));
  }
  if (row.mode < 0 || row.mode > 0xffff)
    return Bad(row, StrCat("mode ", row.mode, " out of range"));
  return absl::OkStatus();
}

absl::StatusOr<XattrsRef> InternXattrs(const FileTableRow& row, Manifest& manifest) {
  if (!row.xattrs.has_value() || row.xattrs->empty()) return XattrsRef{};
  auto decoded = DecodeXattrs(*row.xattrs);
  if (!decoded.ok()) return Bad(row, std::string(decoded.status().message()));
  const uint32_t begin = manifest.BeginXattrs();
  for (const auto& [name, value] : *decoded) manifest.AddXattr(name, value);
  return manifest.EndXattrs(begin);
}

absl::Status CheckType(const FileTableRow& row, uint32_t want, std::string_view kind) {
  const uint32_t type = static_cast<uint32_t>(row.mode) & S_IFMT;
  if (type != 0 && type != want) {
    return Bad(row, StrCat("mode 0", std::to_string(row.mode), " (decimal) is not a ", kind));
  }
  return absl::OkStatus();
}

// The fields every kind of entry shares, from the row (xattrs interned before the path).
template <typename Entry>
absl::StatusOr<Entry> CommonFields(const FileTableRow& row, Manifest& manifest) {
  Entry e;
  e.mode = static_cast<uint32_t>(row.mode);
  e.uid = static_cast<uint32_t>(row.uid);
  e.gid = static_cast<uint32_t>(row.gid);
  OTA_ASSIGN_OR_RETURN(e.xattrs, InternXattrs(row, manifest));
  e.path = manifest.Intern(row.path);
  return e;
}

}  // namespace

absl::Status AddDirRow(const FileTableRow& row, Manifest& manifest) {
  OTA_RETURN_IF_ERROR(CheckCommon(row, /*allow_root=*/true));
  OTA_RETURN_IF_ERROR(CheckType(row, S_IFDIR, "directory"));
  OTA_ASSIGN_OR_RETURN(DirEntry d, CommonFields<DirEntry>(row, manifest));
  manifest.dirs.push_back(d);
  return absl::OkStatus();
}

absl::Status AddNonRegularRow(const FileTableRow& row, Manifest& manifest) {
  OTA_RETURN_IF_ERROR(CheckCommon(row, /*allow_root=*/false));
  const uint32_t type = static_cast<uint32_t>(row.mode) & S_IFMT;
  if (type == S_IFLNK) {
    if (!row.meta.has_value() || row.meta->empty()) return Bad(row, "symlink without a target");
    if (row.meta->size() >= PATH_MAX || row.meta->find('\0') != std::string_view::npos) {
      return Bad(row, "symlink target is too long or holds a NUL byte");
    }
    OTA_ASSIGN_OR_RETURN(SymlinkEntry l, CommonFields<SymlinkEntry>(row, manifest));
    l.target = manifest.Intern(*row.meta);
    manifest.symlinks.push_back(l);
    return absl::OkStatus();
  }
  if (type == S_IFCHR) {
    if (row.meta.has_value() && !row.meta->empty()) {
      return Bad(row, "a character device carries data; only whiteouts (0:0) are supported");
    }
    OTA_ASSIGN_OR_RETURN(SpecialEntry x, CommonFields<SpecialEntry>(row, manifest));
    manifest.specials.push_back(x);
    return absl::OkStatus();
  }
  return Bad(row, StrCat("non-regular entry with mode ", row.mode,
                         " is neither a symlink nor a whiteout (character device)"));
}

absl::Status AddRegularRow(const FileTableRow& row, Manifest& manifest) {
  OTA_RETURN_IF_ERROR(CheckCommon(row, /*allow_root=*/false));
  OTA_RETURN_IF_ERROR(CheckType(row, S_IFREG, "regular file"));
  if (row.digest.size() != 32) {
    return Bad(row, StrCat("resource digest of ", row.digest.size(), " bytes (want 32)"));
  }
  if (row.size < 0) return Bad(row, "negative size");
  RegularEntry e;
  e.mode = static_cast<uint32_t>(row.mode);
  e.uid = static_cast<uint32_t>(row.uid);
  e.gid = static_cast<uint32_t>(row.gid);
  std::memcpy(e.sha256.data(), row.digest.data(), 32);
  e.size = static_cast<uint64_t>(row.size);
  e.has_size = true;
  if (row.size == 0) {
    if (e.sha256 != crypto::Sha256Of("")) {
      return Bad(row, "size 0 but the digest is not the empty content's");
    }
    if (row.contents.has_value() && !row.contents->empty()) {
      return Bad(row, "size 0 with non-empty contents");
    }
  } else if (row.contents.has_value()) {
    if (row.contents->empty()) {
      return Bad(row, "contents X'' with size > 0: neither inlined nor a resource");
    }
    if (row.contents->size() != static_cast<uint64_t>(row.size)) {
      return Bad(row, StrCat("inlined contents of ", row.contents->size(), " bytes, size says ",
                             row.size));
    }
    if (crypto::Sha256Of(*row.contents) != e.sha256) {
      return Bad(row, "inlined contents do not match their digest");
    }
    e.has_inline = true;
  }
  if (row.links_count.has_value()) {
    if (*row.links_count < 1 || *row.links_count > UINT32_MAX) {
      return Bad(row, StrCat("links_count ", *row.links_count, " out of range"));
    }
    if (*row.links_count > 1) {
      e.nlink = static_cast<uint32_t>(*row.links_count);
      e.inode = static_cast<uint64_t>(row.inode_id);
      e.has_inode = true;
    }
  }
  OTA_ASSIGN_OR_RETURN(e.xattrs, InternXattrs(row, manifest));
  e.path = manifest.Intern(row.path);
  if (e.has_inline) e.inline_content = manifest.Intern(*row.contents);
  manifest.regulars.push_back(e);
  return absl::OkStatus();
}

absl::Status LoadFileTable(const std::filesystem::path& path, Manifest& manifest) {
  OTA_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::OpenReadOnly(path, "file table"));
  struct Kind {
    const char* table;
    const char* sql;
  };
  // LEFT JOINs in one pass: a row whose inode or resource is missing (tier4's inner joins would
  // drop the file silently) comes back with NULLs and is refused.
  const Kind kinds[] = {
      {"ft_dir", "SELECT path,uid,gid,mode,xattrs FROM ft_dir LEFT JOIN ft_inode USING(inode_id)"},
      {"ft_non_regular",
       "SELECT path,uid,gid,mode,xattrs,meta FROM ft_non_regular LEFT JOIN ft_inode "
       "USING(inode_id)"},
      {"ft_regular",
       "SELECT path,uid,gid,mode,xattrs,links_count,digest,size,contents,inode_id FROM ft_regular "
       "LEFT JOIN ft_inode USING(inode_id) LEFT JOIN ft_resource USING(resource_id)"},
  };
  for (const Kind& kind : kinds) {
    const std::string_view table = kind.table;
    if (table == "ft_regular") {
      OTA_ASSIGN_OR_RETURN(int64_t rows, db.QueryInt("SELECT count(*) FROM ft_regular"));
      manifest.regulars.reserve(static_cast<size_t>(rows));
    }
    OTA_ASSIGN_OR_RETURN(SqliteStmt stmt, db.Prepare(kind.sql));
    while (true) {
      OTA_ASSIGN_OR_RETURN(bool more, stmt.Step());
      if (!more) break;
      FileTableRow row;
      row.path = stmt.Bytes(0);
      if (stmt.IsNull(1) || stmt.IsNull(3) || (table == "ft_regular" && stmt.IsNull(6))) {
        return Bad(row, StrCat("its ", table, " row references a missing ft_inode",
                               table == "ft_regular" ? " or ft_resource" : "", " row"));
      }
      row.uid = stmt.Int(1);
      row.gid = stmt.Int(2);
      row.mode = stmt.Int(3);
      row.xattrs = stmt.OptBytes(4);
      if (table == "ft_dir") {
        OTA_RETURN_IF_ERROR(AddDirRow(row, manifest));
      } else if (table == "ft_non_regular") {
        row.meta = stmt.OptBytes(5);
        OTA_RETURN_IF_ERROR(AddNonRegularRow(row, manifest));
      } else {
        if (!stmt.IsNull(5)) row.links_count = stmt.Int(5);
        row.digest = stmt.Bytes(6);
        row.size = stmt.Int(7);
        row.contents = stmt.OptBytes(8);
        if (row.contents.has_value() && stmt.Type(8) != SQLITE_BLOB &&
            stmt.Type(8) != SQLITE_TEXT) {
          return Bad(row, "contents is neither NULL nor a blob");
        }
        row.inode_id = stmt.Int(9);
        OTA_RETURN_IF_ERROR(AddRegularRow(row, manifest));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ota::image::v1
