// metadata_bench: times what an ECU does with a large image's metadata before any download:
// fetch + verify + parse (OpenImage over the real CurlFetcher: either format, detected as an
// ECU does; v1 images: the payload of --ecu-id, default autoware), index the needed contents
// (ContentIndex::Build) and plan the delta against an active tree (PlanDelta, empty standby in a
// temp dir). Prints one JSON line with the time of each step and the peak RSS.
//
//   metadata_bench --url BASE_URL --certs DIR --active DIR [--standby-parent DIR]
//                  [--hash-threads N] [--ecu-id ID]
//
// Steps (all timed, in this order):
//   load_ca       CaStore::LoadDir(--certs)
//   load_image    OpenImage: legacy: metadata.jwt, certificate, chain, signature, list files
//                 fetched and checked against their signed hashes, parsed into the Manifest;
//                 v1: oci-layout, index.jwt, chain, signature, index.json, manifest, config,
//                 file and resource tables downloaded by digest and decompressed to disk, the
//                 file table read into the Manifest. The time spent inside the fetcher (Get and
//                 DownloadAll) is reported apart as `fetch_seconds`
//   index         ContentIndex::Build
//   delta         PlanDelta against --active
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/http/curl_fetcher.h"
#include "common/http/fetcher.h"
#include "common/image/image_reader.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/delta_planner.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/update_session.h"
#include "test/bench/bench_util.h"

namespace ota::bench {
namespace {

namespace stdfs = std::filesystem;

constexpr char kUsage[] = R"(usage: metadata_bench --url BASE_URL --certs DIR --active DIR
                      [--standby-parent DIR] [--hash-threads N] [--ecu-id ID]
)";

// Forwards to a real fetcher and adds up the wall time and bytes of the Get calls, so the
// loader's network time can be told apart from its verify + parse time.
class TimingFetcher : public http::Fetcher {
 public:
  explicit TimingFetcher(http::Fetcher& inner) : inner_(inner) {}

  absl::StatusOr<std::string> Get(const std::string& url,
                                  const http::GetOptions& options) override {
    const Stopwatch watch;
    absl::StatusOr<std::string> body = inner_.Get(url, options);
    seconds_ += watch.Seconds();
    ++requests_;
    if (body.ok()) bytes_ += body->size();
    return body;
  }

  absl::Status DownloadAll(std::span<const http::DownloadJob> jobs,
                           const std::function<bool(const http::DownloadResult&)>& on_done,
                           const http::TransferObserver& observer,
                           const http::CancelFlag& cancel) override {
    const Stopwatch watch;
    absl::Status st = inner_.DownloadAll(
        jobs,
        [&](const http::DownloadResult& r) {
          bytes_ += r.network_bytes;
          return on_done(r);
        },
        observer, cancel);
    seconds_ += watch.Seconds();
    requests_ += jobs.size();
    return st;
  }

  double seconds() const { return seconds_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t requests() const { return requests_; }

 private:
  http::Fetcher& inner_;
  double seconds_ = 0;
  uint64_t bytes_ = 0;
  uint64_t requests_ = 0;
};

absl::Status Run(const Flags& flags) {
  std::string problem;
  const std::optional<uint64_t> threads =
      flags.GetUint("hash-threads", static_cast<uint64_t>(update::kHashThreads), &problem);
  if (!threads || *threads == 0 || *threads > 64) {
    return absl::InvalidArgumentError(
        problem.empty() ? std::string("--hash-threads must be in [1, 64]") : problem);
  }
  OTA_ASSIGN_OR_RETURN(fs::TempDir standby_dir,
                       fs::TempDir::Create("metadata-standby", flags.Get("standby-parent")));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir active, fs::RootedDir::Open(flags.Get("active")));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir standby, fs::RootedDir::Open(standby_dir.path()));

  const double cpu_start = ProcessCpuSeconds();
  const Stopwatch total;
  OTA_ASSIGN_OR_RETURN(crypto::CaStore ca_store, crypto::CaStore::LoadDir(flags.Get("certs")));
  const double ca_seconds = total.Seconds();

  std::unique_ptr<http::Fetcher> curl = http::CreateCurlFetcher(http::FetcherConfig{});
  TimingFetcher fetcher(*curl);
  image::ReaderOptions load_options;
  load_options.ca_store = &ca_store;
  if (flags.Has("ecu-id")) load_options.ecu_id = flags.Get("ecu-id");
  const double load_cpu_start = ProcessCpuSeconds();
  const Stopwatch load_watch;
  OTA_ASSIGN_OR_RETURN(image::Image image,
                       image::OpenImage(fetcher, flags.Get("url"), load_options));
  const double load_seconds = load_watch.Seconds();
  const double load_cpu_seconds = ProcessCpuSeconds() - load_cpu_start;

  const double index_cpu_start = ProcessCpuSeconds();
  const Stopwatch index_watch;
  OTA_ASSIGN_OR_RETURN(update::ContentIndex index, update::ContentIndex::Build(image.manifest));
  const double index_seconds = index_watch.Seconds();
  const double index_cpu_seconds = ProcessCpuSeconds() - index_cpu_start;

  update::ProgressCounters counters;
  update::DeltaOptions options;
  options.hash_threads = static_cast<int>(*threads);
  const double delta_cpu_start = ProcessCpuSeconds();
  const Stopwatch delta_watch;
  OTA_ASSIGN_OR_RETURN(update::DeltaResult delta,
                       update::PlanDelta(index, active, standby, options, counters));
  const double delta_seconds = delta_watch.Seconds();
  const double total_seconds = total.Seconds();
  const double delta_cpu_seconds = ProcessCpuSeconds() - delta_cpu_start;
  const double total_cpu_seconds = ProcessCpuSeconds() - cpu_start;

  const image::Manifest& m = image.manifest;
  const uint64_t entries =
      m.dirs.size() + m.symlinks.size() + m.regulars.size() + m.persistents.size();
  JsonLine out;
  out.Add("format", std::string(image::ImageFormatName(image.format)))
      .Add("entries", entries)
      .Add("dirs", static_cast<uint64_t>(m.dirs.size()))
      .Add("symlinks", static_cast<uint64_t>(m.symlinks.size()))
      .Add("regulars", static_cast<uint64_t>(m.regulars.size()))
      .Add("persistents", static_cast<uint64_t>(m.persistents.size()))
      .Add("contents", static_cast<uint64_t>(index.size()))
      .Add("requests", fetcher.requests())
      .Add("metadata_bytes", fetcher.bytes())
      .Add("ca_seconds", ca_seconds)
      .Add("fetch_seconds", fetcher.seconds())
      .Add("load_seconds", load_seconds)
      .Add("verify_parse_seconds", load_seconds - fetcher.seconds())
      .Add("index_seconds", index_seconds)
      .Add("delta_seconds", delta_seconds)
      .Add("total_seconds", total_seconds)
      .Add("load_cpu_seconds", load_cpu_seconds)
      .Add("index_cpu_seconds", index_cpu_seconds)
      .Add("delta_cpu_seconds", delta_cpu_seconds)
      .Add("total_cpu_seconds", total_cpu_seconds)
      .Add("files_hashed", counters.delta_files_hashed.load())
      .Add("bytes_hashed", counters.delta_bytes_hashed.load())
      .Add("reused", counters.delta_reused.load())
      .Add("missing", static_cast<uint64_t>(delta.missing.size()))
      .Add("peak_rss_kib", PeakRssKib());
  std::printf("%s\n", out.ToString().c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace ota::bench

int main(int argc, char** argv) {
  std::string problem;
  auto flags = ota::bench::Flags::Parse(
      argc, argv, {"url", "certs", "active", "standby-parent", "hash-threads", "ecu-id"}, &problem);
  if (flags && flags->help()) {
    std::fputs(ota::bench::kUsage, stdout);
    return 0;
  }
  if (!flags || !flags->Has("url") || !flags->Has("certs") || !flags->Has("active")) {
    std::fprintf(stderr, "metadata_bench: %s\n%s",
                 problem.empty() ? "--url, --certs and --active are required" : problem.c_str(),
                 ota::bench::kUsage);
    return 2;
  }
  if (absl::Status st = ota::bench::Run(*flags); !st.ok()) {
    std::fprintf(stderr, "metadata_bench: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
