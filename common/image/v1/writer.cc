#include "common/image/v1/writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/image/legacy/metadata.h"  // Base64UrlEncode
#include "common/image/v1/filter.h"
#include "common/image/v1/msgpack.h"
#include "common/image/v1/release_package.h"
#include "common/image/v1/schema.h"
#include "common/image/v1/sqlite.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

namespace stdfs = std::filesystem;
using OJson = nlohmann::ordered_json;

constexpr std::string_view kBuilderVersion = "otaclient-cpp ota-image 0.1";

struct DigestHash {
  size_t operator()(const crypto::Sha256Digest& d) const {
    size_t h = 0;
    std::memcpy(&h, d.data(), sizeof(h));
    return h;
  }
};

std::string_view AsBytes(const crypto::Sha256Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

absl::StatusOr<std::string> ZstdCompress(std::string_view data, int level) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  if (!ctx) return absl::ResourceExhaustedError("ZSTD_createCCtx failed");
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_contentSizeFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress2(ctx.get(), out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) return absl::InternalError(StrCat("zstd: ", ZSTD_getErrorName(n)));
  out.resize(n);
  return out;
}

// SQL through the C API, for the tables this builder writes.
class SqlWriter {
 public:
  static absl::StatusOr<SqlWriter> Create(const stdfs::path& path) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    SqlWriter w(raw);
    if (rc != SQLITE_OK) return absl::InternalError(StrCat("sqlite open ", path.string()));
    return w;
  }
  absl::Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      return absl::InternalError(StrCat("sqlite: ", msg, " in: ", sql.substr(0, 120)));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<sqlite3_stmt*> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return absl::InternalError(StrCat("sqlite prepare: ", sqlite3_errmsg(db_.get())));
    }
    stmts_.emplace_back(stmt);
    return stmt;
  }
  absl::Status Run(sqlite3_stmt* stmt) {
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
      return absl::InternalError(StrCat("sqlite step: ", sqlite3_errmsg(db_.get())));
    }
    return absl::OkStatus();
  }
  void Close() {
    stmts_.clear();
    db_.reset();
  }

 private:
  explicit SqlWriter(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  std::vector<std::unique_ptr<sqlite3_stmt, SqliteFinalizer>> stmts_;
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindBlob(sqlite3_stmt* s, int i, std::string_view v) {
  // A zero-length blob must stay a blob (X''), not NULL.
  if (v.empty()) {
    sqlite3_bind_zeroblob(s, i, 0);
  } else {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
}

// The xattrs of an entry as tier4 stores them (msgpack map str → bin), or nullopt.
absl::StatusOr<std::optional<std::string>> ReadXattrs(const stdfs::path& path) {
  ssize_t size = ::llistxattr(path.c_str(), nullptr, 0);
  if (size < 0) {
    if (errno == ENOTSUP) return std::optional<std::string>();
    return ErrnoStatus(errno, StrCat("llistxattr ", path.string()));
  }
  if (size == 0) return std::optional<std::string>();
  std::string names(static_cast<size_t>(size), '\0');
  size = ::llistxattr(path.c_str(), names.data(), names.size());
  if (size < 0) return ErrnoStatus(errno, StrCat("llistxattr ", path.string()));
  names.resize(static_cast<size_t>(size));
  std::vector<std::pair<std::string, std::string>> attrs;
  for (size_t start = 0; start < names.size();) {
    const size_t end = names.find('\0', start);
    std::string name = names.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    ssize_t vsize = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vsize < 0) return ErrnoStatus(errno, StrCat("lgetxattr ", name, " ", path.string()));
    std::string value(static_cast<size_t>(vsize), '\0');
    vsize = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vsize < 0) return ErrnoStatus(errno, StrCat("lgetxattr ", name, " ", path.string()));
    value.resize(static_cast<size_t>(vsize));
    // tier4 rewrites namespaced (v3, 24-byte) file capabilities into the v2 form.
    if (name == "security.capability" && value.size() == 24 && value[3] == 3) {
      value[3] = 2;
      value.resize(20);
    }
    attrs.emplace_back(std::move(name), std::move(value));
  }
  std::sort(attrs.begin(), attrs.end());
  std::string packed;
  MsgpackAppendMapHeader(packed, static_cast<uint32_t>(attrs.size()));
  for (const auto& [name, value] : attrs) {
    MsgpackAppendStr(packed, name);
    MsgpackAppendBin(packed, value);
  }
  return std::optional<std::string>(std::move(packed));
}

struct RsRow {
  crypto::Sha256Digest digest{};
  uint64_t size = 0;
  std::string filter;      // empty: a leaf stored as blobs/sha256/<hex>
  bool from_file = false;  // the content of a rootfs file (bundle and compress candidates)
};

class Builder {
 public:
  explicit Builder(const V1BuildOptions& o) : o_(o) {}

  // From a loaded image instead of a rootfs walk (ota-image convert).
  void UseManifest(const Manifest* m, stdfs::path contents) {
    manifest_ = m;
    contents_ = std::move(contents);
  }

  absl::StatusOr<V1BuildSummary> Run() {
    OTA_RETURN_IF_ERROR(Prepare());
    OTA_ASSIGN_OR_RETURN(fs::TempDir tmp, fs::TempDir::Create("ota-image-v1"));
    const stdfs::path ft_path = tmp.path() / "file_table.sqlite3";
    OTA_ASSIGN_OR_RETURN(SqlWriter ft, SqlWriter::Create(ft_path));
    ft_.emplace(std::move(ft));
    OTA_RETURN_IF_ERROR(CreateFileTable(*ft_));
    OTA_RETURN_IF_ERROR(manifest_ != nullptr ? FromManifest(*manifest_, contents_) : Walk("/"));
    OTA_RETURN_IF_ERROR(ft_->Exec("COMMIT"));
    OTA_RETURN_IF_ERROR(ft_->Exec("PRAGMA journal_mode=DELETE"));
    ft_.reset();

    if (o_.bundle) OTA_RETURN_IF_ERROR(BundleFilter());
    if (o_.compress) OTA_RETURN_IF_ERROR(CompressFilter());
    if (o_.slice) OTA_RETURN_IF_ERROR(SliceFilter());
    const stdfs::path rs_path = tmp.path() / "resource_table.sqlite3";
    OTA_RETURN_IF_ERROR(WriteResourceTable(rs_path));

    OTA_ASSIGN_OR_RETURN(OJson ft_desc, TableBlob(ft_path, kMediaFileTable, kMediaFileTableZstd));
    OTA_ASSIGN_OR_RETURN(OJson rs_desc,
                         TableBlob(rs_path, kMediaResourceTable, kMediaResourceTableZstd));
    OTA_RETURN_IF_ERROR(WriteMetadata(ft_desc, rs_desc));
    return summary_;
  }

 private:
  absl::Status Prepare() {
    std::error_code ec;
    if (stdfs::exists(o_.out_dir, ec) && !stdfs::is_empty(o_.out_dir, ec)) {
      return absl::FailedPreconditionError(
          StrCat("output directory ", o_.out_dir.string(), " is not empty"));
    }
    blobs_ = o_.out_dir / "blobs" / "sha256";
    stdfs::create_directories(blobs_, ec);
    if (ec) return absl::InternalError(StrCat("mkdir ", blobs_.string(), ": ", ec.message()));
    if (o_.ecu_ids.empty()) return absl::InvalidArgumentError("no ECU id given");
    OTA_ASSIGN_OR_RETURN(key_pem_, fs::ReadFile(o_.key_pem));
    OTA_ASSIGN_OR_RETURN(std::string chain_pem, fs::ReadFile(o_.cert_pem));
    // The signing certificate first, then intermediates; a root there would make every client
    // refuse the image (roots never travel in x5c).
    OTA_ASSIGN_OR_RETURN(x5c_, crypto::PemToX5c(chain_pem));
    return absl::OkStatus();
  }

  absl::Status CreateFileTable(SqlWriter& ft) {
    OTA_RETURN_IF_ERROR(ft.Exec("PRAGMA page_size=4096"));
    OTA_RETURN_IF_ERROR(ft.Exec(
        "CREATE TABLE ft_regular (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL,resource_id "
        "INTEGER) WITHOUT ROWID;"
        "CREATE INDEX fr_resource_id_index ON ft_regular (resource_id);"
        "CREATE INDEX fr_inode_id_index ON ft_regular (inode_id);"
        "CREATE TABLE ft_dir (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX fd_inode_id_index ON ft_dir (inode_id);"
        "CREATE TABLE ft_non_regular (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL,meta BLOB) "
        "WITHOUT ROWID;"
        "CREATE INDEX fnr_inode_id_index ON ft_non_regular (inode_id);"
        "CREATE TABLE ft_resource (resource_id INTEGER PRIMARY KEY,digest BLOB NOT NULL "
        "UNIQUE,size INTEGER NOT NULL,contents BLOB);"
        "CREATE TABLE ft_inode (inode_id INTEGER PRIMARY KEY,uid INTEGER NOT NULL,gid INTEGER NOT "
        "NULL,mode INTEGER NOT NULL,links_count INTEGER,xattrs BLOB);"
        "BEGIN"));
    OTA_ASSIGN_OR_RETURN(ins_regular_, ft.Prepare("INSERT INTO ft_regular VALUES (?1,?2,?3)"));
    OTA_ASSIGN_OR_RETURN(ins_dir_, ft.Prepare("INSERT INTO ft_dir VALUES (?1,?2)"));
    OTA_ASSIGN_OR_RETURN(ins_nonreg_, ft.Prepare("INSERT INTO ft_non_regular VALUES (?1,?2,?3)"));
    OTA_ASSIGN_OR_RETURN(ins_resource_, ft.Prepare("INSERT INTO ft_resource VALUES (?1,?2,?3,?4)"));
    OTA_ASSIGN_OR_RETURN(ins_inode_,
                         ft.Prepare("INSERT OR IGNORE INTO ft_inode VALUES (?1,?2,?3,?4,?5,?6)"));
    // The empty file is always resource 0.
    const crypto::Sha256Digest empty = crypto::Sha256Of("");
    sqlite3_bind_int64(ins_resource_, 1, 0);
    BindBlob(ins_resource_, 2, AsBytes(empty));
    sqlite3_bind_int64(ins_resource_, 3, 0);
    BindBlob(ins_resource_, 4, "");
    OTA_RETURN_IF_ERROR(ft_->Run(ins_resource_));
    ft_ids_.emplace(empty, 0);
    return absl::OkStatus();
  }

  absl::Status InsertInode(int64_t id, const struct stat& st, std::optional<int64_t> links,
                           const std::optional<std::string>& xattrs) {
    sqlite3_bind_int64(ins_inode_, 1, id);
    sqlite3_bind_int64(ins_inode_, 2, st.st_uid);
    sqlite3_bind_int64(ins_inode_, 3, st.st_gid);
    sqlite3_bind_int64(ins_inode_, 4, st.st_mode);
    if (links) sqlite3_bind_int64(ins_inode_, 5, *links);
    if (xattrs) BindBlob(ins_inode_, 6, *xattrs);
    return ft_->Run(ins_inode_);
  }

  absl::StatusOr<crypto::Sha256Digest> HashFile(const stdfs::path& path, uint64_t size,
                                                std::string* keep) {
    fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
    crypto::Sha256 sha;
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, StrCat("read ", path.string()));
      if (n == 0) break;
      sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
      if (keep != nullptr) keep->append(buf.data(), static_cast<size_t>(n));
      done += static_cast<uint64_t>(n);
    }
    if (done != size) {
      return absl::FailedPreconditionError(StrCat(path.string(), " changed while read"));
    }
    return sha.Finish();
  }

  absl::Status WriteBlobBytes(const crypto::Sha256Digest& digest, std::string_view bytes) {
    const stdfs::path path = blobs_ / crypto::ToHex(digest);
    std::error_code ec;
    if (stdfs::exists(path, ec)) return absl::OkStatus();
    return fs::WriteFileAtomic(path, bytes, 0644);
  }

  absl::Status CopyBlobFromFile(const crypto::Sha256Digest& digest, const stdfs::path& src) {
    const stdfs::path path = blobs_ / crypto::ToHex(digest);
    std::error_code ec;
    if (stdfs::exists(path, ec)) return absl::OkStatus();
    stdfs::copy_file(src, path, ec);
    if (ec) return absl::InternalError(StrCat("copy ", src.string(), ": ", ec.message()));
    return absl::OkStatus();
  }

  // One entry of the new image's tree, whichever source describes it.
  struct Attrs {
    uint32_t mode = 0;  // the whole st_mode, type bits included
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::optional<std::string> xattrs;  // msgpack map, as stored
  };
  absl::Status InsertInode(int64_t id, const Attrs& a, std::optional<int64_t> links) {
    struct stat st {};
    st.st_mode = a.mode;
    st.st_uid = a.uid;
    st.st_gid = a.gid;
    return InsertInode(id, st, links, a.xattrs);
  }

  absl::Status AddDir(const std::string& rel, const Attrs& a) {
    const int64_t inode_id = next_inode_++;
    OTA_RETURN_IF_ERROR(InsertInode(inode_id, a, std::nullopt));
    BindText(ins_dir_, 1, rel);
    sqlite3_bind_int64(ins_dir_, 2, inode_id);
    OTA_RETURN_IF_ERROR(ft_->Run(ins_dir_));
    ++summary_.dirs;
    return absl::OkStatus();
  }

  // A symlink (target set) or a whiteout (no target).
  absl::Status AddNonRegular(const std::string& rel, const Attrs& a,
                             std::optional<std::string_view> target) {
    const int64_t inode_id = next_inode_++;
    OTA_RETURN_IF_ERROR(InsertInode(inode_id, a, std::nullopt));
    BindText(ins_nonreg_, 1, rel);
    sqlite3_bind_int64(ins_nonreg_, 2, inode_id);
    if (target) BindBlob(ins_nonreg_, 3, *target);
    OTA_RETURN_IF_ERROR(ft_->Run(ins_nonreg_));
    ++summary_.non_regulars;
    return absl::OkStatus();
  }

  // A regular file whose content is the file `content` (`size` bytes). `link_key`: files sharing
  // one are one hard-link group of `nlink` links.
  absl::Status AddRegular(const std::string& rel, const Attrs& a, const stdfs::path& content,
                          uint64_t size, uint32_t nlink, int64_t link_key) {
    std::string small;
    OTA_ASSIGN_OR_RETURN(crypto::Sha256Digest digest,
                         HashFile(content, size, size <= o_.inline_max ? &small : nullptr));
    auto [ft_it, new_content] = ft_ids_.try_emplace(digest, next_ft_resource_);
    rootfs_size_ += size;
    if (new_content) {
      unique_size_ += size;
      ++next_ft_resource_;
      sqlite3_bind_int64(ins_resource_, 1, ft_it->second);
      BindBlob(ins_resource_, 2, AsBytes(digest));
      sqlite3_bind_int64(ins_resource_, 3, static_cast<int64_t>(size));
      if (size <= o_.inline_max) BindBlob(ins_resource_, 4, small);
      OTA_RETURN_IF_ERROR(ft_->Run(ins_resource_));
      if (size > o_.inline_max) {
        rs_index_.emplace(digest, rs_.size());
        rs_.push_back(RsRow{digest, size, "", true});
        OTA_RETURN_IF_ERROR(CopyBlobFromFile(digest, content));
      }
    }
    if (size > 0 && size <= o_.inline_max) ++summary_.inlined;
    int64_t file_inode = next_inode_++;
    std::optional<int64_t> links;
    if (nlink > 1) {
      file_inode = link_key;
      links = nlink;
    }
    OTA_RETURN_IF_ERROR(InsertInode(file_inode, a, links));
    BindText(ins_regular_, 1, rel);
    sqlite3_bind_int64(ins_regular_, 2, file_inode);
    sqlite3_bind_int64(ins_regular_, 3, ft_it->second);
    OTA_RETURN_IF_ERROR(ft_->Run(ins_regular_));
    ++summary_.regulars;
    return absl::OkStatus();
  }

  absl::Status Walk(const std::string& rel) {
    const stdfs::path path = rel == "/" ? o_.rootfs : o_.rootfs / rel.substr(1);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("lstat ", path.string()));
    Attrs a{st.st_mode, st.st_uid, st.st_gid, std::nullopt};
    OTA_ASSIGN_OR_RETURN(a.xattrs, ReadXattrs(path));
    if (S_ISDIR(st.st_mode)) {
      OTA_RETURN_IF_ERROR(AddDir(rel, a));
      std::vector<std::string> names;
      std::error_code ec;
      for (stdfs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        names.push_back(it->path().filename().string());
      }
      if (ec) return absl::InternalError(StrCat("list ", path.string(), ": ", ec.message()));
      std::sort(names.begin(), names.end());
      for (const std::string& name : names) {
        OTA_RETURN_IF_ERROR(Walk(rel == "/" ? StrCat("/", name) : StrCat(rel, "/", name)));
      }
      return absl::OkStatus();
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, StrCat("readlink ", path.string()));
      target.resize(static_cast<size_t>(n));
      return AddNonRegular(rel, a, target);
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      return AddNonRegular(rel, a, std::nullopt);
    }
    if (!S_ISREG(st.st_mode)) {
      log::Warning("ota-image v1: skipping a special file", {{"path", path.string()}});
      return absl::OkStatus();
    }
    return AddRegular(rel, a, path, static_cast<uint64_t>(st.st_size),
                      static_cast<uint32_t>(st.st_nlink), -static_cast<int64_t>(st.st_ino));
  }

  // The entries of an already loaded image (ota-image convert): contents from
  // <contents>/<sha256hex>; modes get their type bits; hard-link groups keyed by the image's
  // inode, or by content when it has none (as the legacy client groups them).
  absl::Status FromManifest(const Manifest& m, const stdfs::path& contents) {
    bool has_root = false;
    for (const DirEntry& d : m.dirs) has_root = has_root || m.Str(d.path) == "/";
    if (!has_root) OTA_RETURN_IF_ERROR(AddDir("/", Attrs{S_IFDIR | 0755, 0, 0, std::nullopt}));
    auto attrs = [&](uint32_t type, uint32_t mode, uint32_t uid, uint32_t gid, XattrsRef x) {
      Attrs a{(mode & S_IFMT) != 0 ? mode : (type | (mode & 07777)), uid, gid, std::nullopt};
      if (x.size > 0) {
        std::vector<std::pair<std::string_view, std::string_view>> pairs;
        m.ForEachXattr(x,
                       [&](std::string_view n, std::string_view v) { pairs.emplace_back(n, v); });
        std::string packed;
        MsgpackAppendMapHeader(packed, static_cast<uint32_t>(pairs.size()));
        for (const auto& [n, v] : pairs) {
          MsgpackAppendStr(packed, n);
          MsgpackAppendBin(packed, v);
        }
        a.xattrs = std::move(packed);
      }
      return a;
    };
    for (const DirEntry& d : m.dirs) {
      OTA_RETURN_IF_ERROR(
          AddDir(std::string(m.Str(d.path)), attrs(S_IFDIR, d.mode, d.uid, d.gid, d.xattrs)));
    }
    for (const SymlinkEntry& l : m.symlinks) {
      OTA_RETURN_IF_ERROR(AddNonRegular(std::string(m.Str(l.path)),
                                        attrs(S_IFLNK, S_IFLNK | 0777, l.uid, l.gid, l.xattrs),
                                        m.Str(l.target)));
    }
    for (const SpecialEntry& x : m.specials) {
      OTA_RETURN_IF_ERROR(AddNonRegular(std::string(m.Str(x.path)),
                                        attrs(S_IFCHR, x.mode, x.uid, x.gid, x.xattrs),
                                        std::nullopt));
    }
    const stdfs::path empty = contents / "empty";
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(empty, ""));
    for (const RegularEntry& e : m.regulars) {
      int64_t key = 0;
      if (e.has_inode) {
        key = -1 - static_cast<int64_t>(e.inode & 0x3fffffffffffffffull);
      } else {
        uint64_t prefix = 0;
        std::memcpy(&prefix, e.sha256.data(), sizeof(prefix));
        key = -1 - static_cast<int64_t>(prefix & 0x3fffffffffffffffull);
      }
      const bool is_empty = e.sha256 == crypto::Sha256Of("");
      const stdfs::path content = is_empty ? empty : contents / crypto::ToHex(e.sha256);
      uint64_t size = e.size;
      if (!e.has_size) {
        std::error_code ec;
        size = is_empty ? 0 : stdfs::file_size(content, ec);
        if (ec)
          return absl::InternalError(StrCat("size of ", content.string(), ": ", ec.message()));
      }
      OTA_RETURN_IF_ERROR(AddRegular(std::string(m.Str(e.path)),
                                     attrs(S_IFREG, e.mode, e.uid, e.gid, e.xattrs), content, size,
                                     e.nlink, key));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ReadBlob(const RsRow& row) {
    return fs::ReadFile(blobs_ / crypto::ToHex(row.digest));
  }
  void RemoveBlob(const RsRow& row) {
    std::error_code ec;
    stdfs::remove(blobs_ / crypto::ToHex(row.digest), ec);
  }
  int64_t IdOf(size_t index) const { return static_cast<int64_t>(index) + 1; }

  // A leaf row for bytes produced here (compressed forms, pieces), reused when the digest exists.
  absl::StatusOr<size_t> AddLeaf(std::string_view bytes) {
    const crypto::Sha256Digest digest = crypto::Sha256Of(bytes);
    auto it = rs_index_.find(digest);
    if (it != rs_index_.end()) return it->second;
    OTA_RETURN_IF_ERROR(WriteBlobBytes(digest, bytes));
    rs_index_.emplace(digest, rs_.size());
    rs_.push_back(RsRow{digest, bytes.size(), "", false});
    return rs_.size() - 1;
  }

  absl::Status BundleFilter() {
    std::vector<std::vector<size_t>> groups(1);
    uint64_t total = 0;
    for (size_t i = 0; i < rs_.size(); ++i) {
      const RsRow& r = rs_[i];
      if (!r.filter.empty() || !r.from_file || r.size <= o_.inline_max ||
          r.size > o_.bundle_member_max) {
        continue;
      }
      groups.back().push_back(i);
      total += r.size;
      if (total > o_.bundle_target) {
        groups.emplace_back();
        total = 0;
      }
    }
    if (groups.back().size() < o_.bundle_min_members) groups.pop_back();
    for (const std::vector<size_t>& group : groups) {
      if (group.size() < 2) continue;  // one member would be its own bundle
      std::string bundle;
      std::vector<std::pair<size_t, uint64_t>> offsets;
      for (size_t i : group) {
        OTA_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(rs_[i]));
        offsets.emplace_back(i, bundle.size());
        bundle += bytes;
      }
      const crypto::Sha256Digest bundle_digest = crypto::Sha256Of(bundle);
      if (rs_index_.contains(bundle_digest)) continue;
      OTA_ASSIGN_OR_RETURN(std::string packed, ZstdCompress(bundle, o_.zstd_level));
      OTA_ASSIGN_OR_RETURN(size_t packed_index, AddLeaf(packed));
      const size_t bundle_index = rs_.size();
      rs_index_.emplace(bundle_digest, bundle_index);
      rs_.push_back(
          RsRow{bundle_digest, bundle.size(), EncodeCompressFilter(IdOf(packed_index)), false});
      for (const auto& [i, offset] : offsets) {
        rs_[i].filter = EncodeBundleFilter(IdOf(bundle_index), offset, rs_[i].size);
        RemoveBlob(rs_[i]);
      }
      ++summary_.bundles;
      summary_.bundled += group.size();
    }
    return absl::OkStatus();
  }

  absl::Status CompressFilter() {
    const size_t n = rs_.size();
    for (size_t i = 0; i < n; ++i) {
      if (!rs_[i].filter.empty() || !rs_[i].from_file || rs_[i].size <= o_.compress_min) continue;
      OTA_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(rs_[i]));
      if (bytes.starts_with("\x28\xb5\x2f\xfd") || bytes.starts_with("\x1f\x8b")) continue;
      OTA_ASSIGN_OR_RETURN(std::string packed, ZstdCompress(bytes, o_.zstd_level));
      if (bytes.size() * 4 < packed.size() * 5) continue;  // ratio below 1.25
      OTA_ASSIGN_OR_RETURN(size_t packed_index, AddLeaf(packed));
      rs_[i].filter = EncodeCompressFilter(IdOf(packed_index));
      RemoveBlob(rs_[i]);
      ++summary_.compressed;
    }
    return absl::OkStatus();
  }

  absl::Status SliceFilter() {
    const size_t n = rs_.size();
    for (size_t i = 0; i < n; ++i) {
      if (!rs_[i].filter.empty() || rs_[i].size <= o_.slice_threshold) continue;
      OTA_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(rs_[i]));
      std::vector<int64_t> ids;  // repeated pieces keep their repeats
      for (size_t off = 0; off < bytes.size(); off += o_.slice_size) {
        OTA_ASSIGN_OR_RETURN(size_t piece,
                             AddLeaf(std::string_view(bytes).substr(off, o_.slice_size)));
        ids.push_back(IdOf(piece));
        ++summary_.slices;
      }
      rs_[i].filter = EncodeSliceFilter(ids);
      RemoveBlob(rs_[i]);
      ++summary_.sliced;
    }
    return absl::OkStatus();
  }

  absl::Status WriteResourceTable(const stdfs::path& path) {
    OTA_ASSIGN_OR_RETURN(SqlWriter rs, SqlWriter::Create(path));
    OTA_RETURN_IF_ERROR(
        rs.Exec("PRAGMA page_size=4096;"
                "CREATE TABLE rs_manifest (resource_id INTEGER PRIMARY KEY,digest BLOB NOT NULL "
                "UNIQUE,size INTEGER NOT NULL,filter_applied BLOB,meta BLOB);BEGIN"));
    OTA_ASSIGN_OR_RETURN(sqlite3_stmt * ins,
                         rs.Prepare("INSERT INTO rs_manifest VALUES (?1,?2,?3,?4,NULL)"));
    for (size_t i = 0; i < rs_.size(); ++i) {
      sqlite3_bind_int64(ins, 1, IdOf(i));
      BindBlob(ins, 2, AsBytes(rs_[i].digest));
      sqlite3_bind_int64(ins, 3, static_cast<int64_t>(rs_[i].size));
      if (!rs_[i].filter.empty()) BindBlob(ins, 4, rs_[i].filter);
      OTA_RETURN_IF_ERROR(rs.Run(ins));
    }
    OTA_RETURN_IF_ERROR(rs.Exec("COMMIT"));
    OTA_RETURN_IF_ERROR(rs.Exec("VACUUM"));
    OTA_RETURN_IF_ERROR(rs.Exec("PRAGMA journal_mode=DELETE"));
    rs.Close();
    summary_.resources = rs_.size();
    return absl::OkStatus();
  }

  static OJson Desc(std::string_view media_type, const crypto::Sha256Digest& digest,
                    uint64_t size) {
    OJson d;
    d["size"] = size;
    d["digest"] = FormatDigest(digest);
    d["mediaType"] = media_type;
    return d;
  }

  absl::StatusOr<OJson> BlobDesc(std::string_view media_type, std::string_view bytes) {
    const crypto::Sha256Digest digest = crypto::Sha256Of(bytes);
    OTA_RETURN_IF_ERROR(WriteBlobBytes(digest, bytes));
    return Desc(media_type, digest, bytes.size());
  }

  absl::StatusOr<OJson> TableBlob(const stdfs::path& path, std::string_view plain,
                                  std::string_view zstd) {
    OTA_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(path));
    if (!o_.compress_tables) return BlobDesc(plain, bytes);
    OTA_ASSIGN_OR_RETURN(std::string packed, ZstdCompress(bytes, o_.zstd_level));
    return BlobDesc(zstd, packed);
  }

  // The otaclient release-package artifact (release_package.h) from a release directory; returns
  // its index.json entry.
  absl::StatusOr<OJson> WriteReleasePackage(const stdfs::path& dir) {
    const stdfs::path manifest_path = dir / "manifest.json";
    OTA_ASSIGN_OR_RETURN(std::string manifest_text, fs::ReadFile(manifest_path));
    absl::StatusOr<ClientReleaseManifest> release = ParseClientReleaseManifest(manifest_text);
    if (!release.ok()) return WithContext(release.status(), manifest_path.string());
    OJson layers = OJson::array();
    for (const ClientPackage& package : release->packages) {
      const std::string_view media = LayerMediaTypeOf(package.type);
      const std::string where = StrCat(manifest_path.string(), ": package ", package.filename);
      if (media.empty()) {
        log::Info("v1 image: otaclient package type not stored in the artifact, skipped",
                  {{"package", package.filename}, {"type", package.type}});
        continue;
      }
      const std::string_view arch = PackageArchitectureOf(package.architecture);
      if (arch.empty()) {
        return absl::InvalidArgumentError(
            StrCat(where, ": architecture \"", package.architecture, "\" (x86_64 or arm64)"));
      }
      if (package.checksum_algorithm != "sha256" || package.checksum_hex.size() != 64) {
        return absl::InvalidArgumentError(StrCat(where, ": checksum is not sha256:<hex>"));
      }
      OTA_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(dir / package.filename));
      const crypto::Sha256Digest digest = crypto::Sha256Of(bytes);
      if (bytes.size() != package.size || crypto::ToHex(digest) != package.checksum_hex) {
        return absl::InvalidArgumentError(
            StrCat(where, ": the file has ", bytes.size(), " bytes, sha256 ", crypto::ToHex(digest),
                   "; manifest.json says ", package.size, " bytes, sha256 ", package.checksum_hex));
      }
      OTA_RETURN_IF_ERROR(WriteBlobBytes(digest, bytes));
      OJson layer = Desc(media, digest, bytes.size());
      layer["annotations"] = {{"version", package.version},
                              {"type", package.type},
                              {"architecture", arch},
                              {"size", package.size},
                              {"checksum", FormatDigest(digest)}};
      layers.push_back(std::move(layer));
    }
    if (layers.empty()) {
      return absl::InvalidArgumentError(
          StrCat(manifest_path.string(), ": no squashfs or otaclient-cpp package to store"));
    }
    OTA_ASSIGN_OR_RETURN(OJson config_desc, BlobDesc(kMediaOtaclientPackage, manifest_text));
    OJson m;
    m["config"] = config_desc;
    m["layers"] = layers;
    m["annotations"] = {{"date", release->date}};
    m["schemaVersion"] = 2;
    m["mediaType"] = kMediaManifest;
    m["artifactType"] = kArtifactOtaclientPackage;
    const std::string text = m.dump();
    // What is written must read back as the client reads it (e.g. two packages of one kind).
    OTA_RETURN_IF_ERROR(
        WithContext(ParseReleasePackageManifest(text).status(), manifest_path.string()));
    OTA_ASSIGN_OR_RETURN(OJson entry, BlobDesc(kMediaOtaclientPackage, text));
    entry["artifactType"] = kArtifactOtaclientPackage;
    return entry;
  }

  absl::Status WriteMetadata(const OJson& ft_desc, const OJson& rs_desc) {
    const int64_t now = o_.iat.value_or(static_cast<int64_t>(std::time(nullptr)));
    // sys_config: YAML, persist_files and the required hostname.
    std::string sys = StrCat("hostname: \"", o_.hostname, "\"\n");
    if (!o_.persist_files.empty()) {
      sys += "persist_files:\n";
      for (const std::string& p : o_.persist_files) {
        std::string quoted;
        for (char c : p) {
          if (c == '"' || c == '\\') quoted.push_back('\\');
          quoted.push_back(c);
        }
        StrAppend(&sys, "  - \"", quoted, "\"\n");
      }
    }
    OTA_ASSIGN_OR_RETURN(OJson sys_desc, BlobDesc(kMediaSysConfig, sys));

    // Labels computed like tier4 (over the file table's contents).
    uint64_t blobs_count = 0, blobs_size = 0;
    for (const RsRow& r : rs_) {
      if (r.from_file) {
        ++blobs_count;
        blobs_size += r.size;
      }
    }
    OJson config;
    config["schemaVersion"] = 1;
    config["mediaType"] = kMediaImageConfig;
    config["resource_digest_alg"] = "sha256";
    config["created"] = "2026-01-01T00:00:00";
    config["architecture"] = o_.architecture;
    config["os"] = "linux";
    config["sys_config"] = sys_desc;
    config["file_table"] = ft_desc;
    OJson labels;
    labels["vnd.tier4.image.base-image"] = "scratch";
    labels["vnd.tier4.ota.image.blobs-count"] = blobs_count;
    labels["vnd.tier4.ota.image.blobs-size"] = blobs_size;
    labels["vnd.tier4.image.rootfs.size"] = rootfs_size_;
    labels["vnd.tier4.image.rootfs.regular-files-count"] = summary_.regulars;
    labels["vnd.tier4.image.rootfs.non-regular-files-count"] = summary_.non_regulars;
    labels["vnd.tier4.image.rootfs.dirs-count"] = summary_.dirs;
    labels["vnd.tier4.image.rootfs.unique-files-entries-count"] = ft_ids_.size();
    labels["vnd.tier4.image.rootfs.unique-files-entries-size"] = unique_size_;
    config["labels"] = labels;
    OTA_ASSIGN_OR_RETURN(OJson config_desc, BlobDesc(kMediaImageConfig, config.dump()));

    OJson index;
    index["schemaVersion"] = 2;
    index["mediaType"] = kMediaIndex;
    OJson manifests = OJson::array();
    for (const std::string& ecu : o_.ecu_ids) {
      OJson m;
      m["schemaVersion"] = 2;
      m["mediaType"] = kMediaManifest;
      m["artifactType"] = kArtifactImage;
      m["config"] = config_desc;
      m["layers"] = OJson::array({ft_desc});
      m["annotations"] = {{std::string(kAnnotationEcu), ecu},
                          {std::string(kAnnotationReleaseKey), o_.release_key},
                          {std::string(kAnnotationArchitecture), o_.architecture}};
      OTA_ASSIGN_OR_RETURN(OJson d, BlobDesc(kMediaManifest, m.dump()));
      OJson entry;
      entry["size"] = d["size"];
      entry["digest"] = d["digest"];
      entry["annotations"] = {{std::string(kAnnotationEcu), ecu},
                              {std::string(kAnnotationReleaseKey), o_.release_key}};
      entry["mediaType"] = kMediaManifest;
      entry["artifactType"] = kArtifactImage;
      manifests.push_back(entry);
    }
    manifests.push_back(rs_desc);
    if (!o_.otaclient_release.empty()) {
      OTA_ASSIGN_OR_RETURN(OJson package, WriteReleasePackage(o_.otaclient_release));
      manifests.push_back(std::move(package));
    }
    index["manifests"] = manifests;
    // The blob store, counted as finalized.
    std::error_code ec;
    for (stdfs::directory_iterator it(blobs_, ec), end; !ec && it != end; it.increment(ec)) {
      ++summary_.blobs;
      summary_.blobs_size += stdfs::file_size(it->path(), ec);
    }
    index["annotations"] = {{std::string(kAnnotationBuilderVersion), kBuilderVersion},
                            {"vnd.tier4.ota.image.created-at", now},
                            {"vnd.tier4.ota.image.signed-at", now},
                            {"vnd.tier4.ota.image.blobs-count", summary_.blobs},
                            {"vnd.tier4.ota.image.blobs-size", summary_.blobs_size}};
    const std::string index_text = index.dump();
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(o_.out_dir / "index.json", index_text));
    OTA_RETURN_IF_ERROR(
        fs::WriteFileAtomic(o_.out_dir / "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}"));

    // index.jwt: keys sorted, compact, as PyJWT writes it.
    nlohmann::json header;
    header["alg"] = "ES256";
    header["typ"] = "JWT";
    header["x5c"] = x5c_;
    OJson claims;
    claims["iat"] = now;
    claims["image_index"] = Desc(kMediaIndex, crypto::Sha256Of(index_text), index_text.size());
    const std::string signing_input =
        StrCat(Base64UrlEncode(header.dump(), false), ".", Base64UrlEncode(claims.dump(), false));
    OTA_ASSIGN_OR_RETURN(std::string sig, crypto::SignEs256Raw(key_pem_, signing_input));
    return fs::WriteFileAtomic(o_.out_dir / "index.jwt",
                               StrCat(signing_input, ".", Base64UrlEncode(sig, false)));
  }

 private:
  uint64_t rootfs_size_ = 0;
  uint64_t unique_size_ = 0;
  const V1BuildOptions& o_;
  stdfs::path blobs_;
  std::string key_pem_;
  std::vector<std::string> x5c_;
  std::optional<SqlWriter> ft_;
  const Manifest* manifest_ = nullptr;
  stdfs::path contents_;
  sqlite3_stmt* ins_regular_ = nullptr;
  sqlite3_stmt* ins_dir_ = nullptr;
  sqlite3_stmt* ins_nonreg_ = nullptr;
  sqlite3_stmt* ins_resource_ = nullptr;
  sqlite3_stmt* ins_inode_ = nullptr;
  int64_t next_inode_ = 1;
  int64_t next_ft_resource_ = 1;
  std::unordered_map<crypto::Sha256Digest, int64_t, DigestHash> ft_ids_;
  std::vector<RsRow> rs_;
  std::unordered_map<crypto::Sha256Digest, size_t, DigestHash> rs_index_;
  V1BuildSummary summary_;
};

}  // namespace

absl::StatusOr<V1BuildSummary> BuildV1Image(const V1BuildOptions& options) {
  Builder builder(options);
  return builder.Run();
}

absl::StatusOr<V1BuildSummary> BuildV1ImageFromManifest(const V1BuildOptions& options,
                                                        const Manifest& manifest,
                                                        const std::filesystem::path& contents) {
  Builder builder(options);
  builder.UseManifest(&manifest, contents);
  return builder.Run();
}

}  // namespace ota::image::v1
