#include "common/image/v1/content_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/image/v1/local_files.h"
#include "common/image/v1/reader.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

using Kind = ResourceFilter::Kind;

// Filters nest at most: bundle member → compressed bundle → slices → leaves.
constexpr int kMaxDepth = 8;

// One resource the plan has to make appear (a needed content or an intermediate).
struct Node {
  ResourceRow row;
  // Where it appears: the resources dir for needed contents, the work dir otherwise.
  bool in_resources = false;
  std::optional<size_t> request;  // index in the Fetch request when it is a needed content
  bool present = false;
  // How it is obtained.
  enum class How { kDownload, kDownloadDecoded, kAssemble } how = How::kDownload;
  ResourceRow blob;             // kDownloadDecoded: the compressed leaf blob
  std::vector<int64_t> inputs;  // kAssemble: the nodes it is made from
  int depth = 0;
};

class Planner {
 public:
  Planner(ResourceTable& table, const ContentFetchEnv& env, int res_fd, int work_fd)
      : table_(table), env_(env), res_fd_(res_fd), work_fd_(work_fd) {}

  absl::Status Run(const Manifest& manifest, std::span<const ContentRequest> contents,
                   const std::string& base_url) {
    base_url_ = base_url;
    for (size_t i = 0; i < contents.size(); ++i) {
      const ContentRequest& c = contents[i];
      OTA_ASSIGN_OR_RETURN(std::optional<ResourceRow> row, table_.FindByDigest(c.sha256));
      if (!row) {
        return absl::InvalidArgumentError(
            StrCat("resource table has no row for ", crypto::ToHex(c.sha256), " (content of '",
                   manifest.Str(manifest.regulars[c.entry].path), "')"));
      }
      if (c.size && *c.size != row->size) {
        return absl::InvalidArgumentError(StrCat("resource ", crypto::ToHex(c.sha256),
                                                 ": the file table says ", *c.size,
                                                 " bytes, the resource table ", row->size));
      }
      const int64_t id = row->id;
      auto [it, inserted] = nodes_.try_emplace(id);
      if (inserted) it->second.row = std::move(*row);
      it->second.in_resources = true;
      it->second.request = i;
      it->second.present = false;  // the delta found it missing
      roots_.push_back(id);
    }
    for (int64_t id : roots_) OTA_RETURN_IF_ERROR(Expand(id, 0));
    OTA_RETURN_IF_ERROR(Download());
    for (int64_t id : order_) OTA_RETURN_IF_ERROR(Assemble(nodes_.at(id)));
    return absl::OkStatus();
  }

 private:
  std::string Name(const Node& n) const { return crypto::ToHex(n.row.digest); }
  std::string Where(const Node& n) const {
    return ((n.in_resources ? env_.resources_dir : env_.work_dir) / Name(n)).string();
  }
  int DirFd(const Node& n) const { return n.in_resources ? res_fd_ : work_fd_; }

  absl::StatusOr<ResourceRow> Row(int64_t id, const Node& parent) {
    OTA_ASSIGN_OR_RETURN(std::optional<ResourceRow> row, table_.FindById(id));
    if (!row) {
      return absl::InvalidArgumentError(
          StrCat("resource table: resource ", Name(parent), " refers to missing resource id ", id));
    }
    return *row;
  }

  // An intermediate left by an earlier attempt counts when its size and sha256 match.
  bool Resumable(const Node& n) {
    fs::UniqueFd fd(::openat(work_fd_, Name(n).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return false;
    struct stat st;
    bool ok = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
              static_cast<uint64_t>(st.st_size) == n.row.size;
    if (ok) {
      crypto::Sha256 sha;
      ok = StreamFileRange(
               fd.get(), 0, n.row.size,
               [&](std::string_view chunk) {
                 sha.Update(chunk);
                 return absl::OkStatus();
               },
               Name(n))
               .ok() &&
           sha.Finish() == n.row.digest;
    }
    if (!ok) ::unlinkat(work_fd_, Name(n).c_str(), 0);
    return ok;
  }

  // Decides how `id` is obtained and adds what it needs, children first (post-order in order_).
  absl::Status Expand(int64_t id, int depth) {
    Node& n = nodes_.at(id);
    if (n.depth < 0) return absl::OkStatus();  // expanded already
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError(StrCat("resource table: filters nest deeper than ",
                                               kMaxDepth, " at ", Name(n), " (a cycle?)"));
    }
    n.depth = -1;
    if (n.present) return absl::OkStatus();
    const ResourceFilter& f = n.row.filter;
    switch (f.kind) {
      case Kind::kLeaf:
        n.how = Node::How::kDownload;
        downloads_.push_back(id);
        return absl::OkStatus();
      case Kind::kCompressed: {
        OTA_ASSIGN_OR_RETURN(ResourceRow inner, Row(f.ref, n));
        if (inner.filter.kind == Kind::kLeaf) {
          n.how = Node::How::kDownloadDecoded;
          n.blob = std::move(inner);
          downloads_.push_back(id);
          return absl::OkStatus();
        }
        n.how = Node::How::kAssemble;
        n.inputs = {inner.id};
        OTA_RETURN_IF_ERROR(AddIntermediate(std::move(inner), depth + 1));
        break;
      }
      case Kind::kBundle: {
        OTA_ASSIGN_OR_RETURN(ResourceRow bundle, Row(f.ref, n));
        if (f.offset > bundle.size || f.length > bundle.size - f.offset || f.length != n.row.size) {
          return absl::InvalidArgumentError(
              StrCat("resource table: member ", Name(n), " [", f.offset, ", +", f.length,
                     ") does not fit bundle ", crypto::ToHex(bundle.digest), " of ", bundle.size,
                     " bytes, or has the wrong length"));
        }
        n.how = Node::How::kAssemble;
        n.inputs = {bundle.id};
        OTA_RETURN_IF_ERROR(AddIntermediate(std::move(bundle), depth + 1));
        break;
      }
      case Kind::kSliced: {
        n.how = Node::How::kAssemble;
        n.inputs = f.slices;
        uint64_t total = 0;
        for (int64_t slice_id : f.slices) {
          OTA_ASSIGN_OR_RETURN(ResourceRow slice, Row(slice_id, n));
          if (slice.filter.kind != Kind::kLeaf) {
            return absl::InvalidArgumentError(StrCat("resource table: slice ", slice_id, " of ",
                                                     Name(n), " is not a plain blob"));
          }
          total += slice.size;
          OTA_RETURN_IF_ERROR(AddIntermediate(std::move(slice), depth + 1));
        }
        if (total != n.row.size) {
          return absl::InvalidArgumentError(StrCat("resource table: the slices of ", Name(n),
                                                   " add up to ", total, " bytes, not ",
                                                   n.row.size));
        }
        break;
      }
    }
    order_.push_back(id);
    return absl::OkStatus();
  }

  absl::Status AddIntermediate(ResourceRow row, int depth) {
    const int64_t id = row.id;
    auto [it, inserted] = nodes_.try_emplace(id);
    if (inserted) {
      it->second.row = std::move(row);
      it->second.present = Resumable(it->second);
      if (it->second.present) ++resumed_;
    }
    return Expand(id, depth);
  }

  absl::Status Download() {
    std::vector<http::DownloadJob> jobs;
    for (size_t start = 0; start < downloads_.size(); start += kDownloadBatch) {
      const size_t end = std::min(downloads_.size(), start + kDownloadBatch);
      jobs.clear();
      for (size_t k = start; k < end; ++k) {
        const Node& n = nodes_.at(downloads_[k]);
        http::DownloadJob job;
        if (n.how == Node::How::kDownloadDecoded) {
          job.url = BlobUrl(base_url_, crypto::ToHex(n.blob.digest));
          job.compression = content::Compression::kZstd;
          job.body_sha256 = n.blob.digest;  // otaproxy caches the blob as stored
        } else {
          job.url = BlobUrl(base_url_, Name(n));
        }
        job.dest = Where(n);
        job.sha256 = n.row.digest;
        job.size = n.row.size;
        job.tag = k;
        jobs.push_back(std::move(job));
      }
      absl::Status first_error;
      auto on_done = [&](const http::DownloadResult& r) {
        if (!r.status.ok()) {
          if (first_error.ok()) {
            first_error = WithContext(r.status, StrCat("downloading ", jobs[r.tag - start].url));
          }
          return false;
        }
        Node& n = nodes_.at(downloads_[r.tag]);
        n.present = true;
        if (n.request && env_.on_content) env_.on_content(*n.request, r.file_bytes, r.retries);
        return !env_.cancel->load();
      };
      absl::Status st = env_.fetcher->DownloadAll(jobs, on_done, env_.observer, *env_.cancel);
      if (!first_error.ok()) return first_error;
      OTA_RETURN_IF_ERROR(st);
      if (env_.cancel->load()) return absl::CancelledError("update cancelled during download");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<fs::UniqueFd> OpenInput(const Node& n) {
    fs::UniqueFd fd(::openat(DirFd(n), Name(n).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", Where(n)));
    return fd;
  }

  absl::Status Assemble(Node& n) {
    if (n.present) return absl::OkStatus();
    if (env_.cancel->load()) return absl::CancelledError("update cancelled during download");
    const ResourceFilter& f = n.row.filter;
    content::Expected expected{n.row.digest, n.row.size};
    absl::Status st;
    if (f.kind == Kind::kSliced) {
      std::vector<fs::UniqueFd> inputs;
      for (int64_t id : n.inputs) {
        OTA_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenInput(nodes_.at(id)));
        inputs.push_back(std::move(fd));
      }
      st = WriteVerified(
          DirFd(n), Name(n),
          StrCat("resource ", Name(n), " (joined from ", n.inputs.size(), " slices)"),
          content::Compression::kNone, expected,
          [&](const ChunkSink& sink) -> absl::Status {
            for (size_t k = 0; k < inputs.size(); ++k) {
              const Node& slice = nodes_.at(n.inputs[k]);
              OTA_RETURN_IF_ERROR(
                  StreamFileRange(inputs[k].get(), 0, slice.row.size, sink, Where(slice)));
            }
            return absl::OkStatus();
          },
          /*durable=*/false);
    } else {
      const Node& input = nodes_.at(n.inputs.front());
      OTA_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenInput(input));
      const bool member = f.kind == Kind::kBundle;
      st = WriteVerified(
          DirFd(n), Name(n),
          member ? StrCat("resource ", Name(n), " (member of bundle ", Name(input), ")")
                 : StrCat("resource ", Name(n), " (decoded from ", Name(input), ")"),
          member ? content::Compression::kNone : content::Compression::kZstd, expected,
          [&](const ChunkSink& sink) {
            return member ? StreamFileRange(fd.get(), f.offset, f.length, sink, Where(input))
                          : StreamFileRange(fd.get(), 0, input.row.size, sink, Where(input));
          },
          /*durable=*/false);
    }
    OTA_RETURN_IF_ERROR(st);
    n.present = true;
    if (n.request && env_.on_content) env_.on_content(*n.request, n.row.size, 0);
    return absl::OkStatus();
  }

 public:
  size_t resumed() const { return resumed_; }
  size_t downloads() const { return downloads_.size(); }
  size_t assembled() const { return order_.size(); }

 private:
  ResourceTable& table_;
  const ContentFetchEnv& env_;
  int res_fd_;
  int work_fd_;
  std::string base_url_;
  std::unordered_map<int64_t, Node> nodes_;
  std::vector<int64_t> roots_;
  std::vector<int64_t> downloads_;  // node ids fetched over the network
  std::vector<int64_t> order_;      // node ids assembled locally, inputs first
  size_t resumed_ = 0;
};

class V1Source final : public ContentSource {
 public:
  V1Source(std::string base_url, fs::TempDir tables_dir, ResourceTable table)
      : base_url_(std::move(base_url)),
        tables_dir_(std::move(tables_dir)),
        table_(std::move(table)) {}

  absl::Status Fetch(const Manifest& manifest, std::span<const ContentRequest> contents,
                     const ContentFetchEnv& env) override {
    if (contents.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(env.work_dir, ec);
      return absl::OkStatus();
    }
    fs::UniqueFd res_fd(
        ::open(env.resources_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!res_fd.valid()) return ErrnoStatus(errno, StrCat("open ", env.resources_dir.string()));
    if (::mkdir(env.work_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, StrCat("mkdir ", env.work_dir.string()));
    }
    fs::UniqueFd work_fd(
        ::open(env.work_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!work_fd.valid()) return ErrnoStatus(errno, StrCat("open ", env.work_dir.string()));
    Planner planner(table_, env, res_fd.get(), work_fd.get());
    OTA_RETURN_IF_ERROR(planner.Run(manifest, contents, base_url_));
    log::Info("v1 contents fetched", {{"contents", StrCat(contents.size())},
                                      {"blobs_downloaded", StrCat(planner.downloads())},
                                      {"assembled", StrCat(planner.assembled())},
                                      {"intermediates_resumed", StrCat(planner.resumed())}});
    work_fd.Reset();
    std::error_code ec;
    std::filesystem::remove_all(env.work_dir, ec);
    if (ec) {
      return absl::InternalError(StrCat("remove ", env.work_dir.string(), ": ", ec.message()));
    }
    return absl::OkStatus();
  }

 private:
  std::string base_url_;
  fs::TempDir tables_dir_;  // holds the resource table file open below
  ResourceTable table_;
};

}  // namespace

std::unique_ptr<ContentSource> MakeV1ContentSource(std::string base_url, fs::TempDir tables_dir,
                                                   ResourceTable table) {
  return std::make_unique<V1Source>(std::move(base_url), std::move(tables_dir), std::move(table));
}

}  // namespace ota::image::v1
