// Gives a slot the record an update leaves on it (update/slot_table.h: /.ota-meta/slot-table and
// state "complete"), for a tree that already holds the image's files: what an active slot written
// by an earlier update carries. run.sh uses it for the in-place benchmarks' slot a (a hard-linked
// copy of the tree: the table observes those inodes, and nothing else changes them).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/crypto/signing.h"
#include "common/fs/rooted.h"
#include "common/http/curl_fetcher.h"
#include "common/image/image_reader.h"
#include "common/util/errors.h"
#include "otaclient/update/in_place.h"
#include "otaclient/update/slot_table.h"
#include "test/bench/bench_util.h"

namespace ota::bench {
namespace {

constexpr char kUsage[] = "usage: slot_record_tool --url BASE_URL --certs DIR --slot DIR\n";

absl::Status Run(const Flags& flags) {
  OTA_ASSIGN_OR_RETURN(crypto::CaStore ca_store, crypto::CaStore::LoadDir(flags.Get("certs")));
  std::unique_ptr<http::Fetcher> fetcher = http::CreateCurlFetcher(http::FetcherConfig{});
  image::ReaderOptions options;
  options.ca_store = &ca_store;
  OTA_ASSIGN_OR_RETURN(image::Image image, image::OpenImage(*fetcher, flags.Get("url"), options));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir slot, fs::RootedDir::Open(flags.Get("slot")));
  OTA_ASSIGN_OR_RETURN(update::SlotTable table, update::RecordSlotTable(image.manifest, slot, 2));
  OTA_RETURN_IF_ERROR(update::WriteSlotRecordComplete(slot, table));
  std::printf("{\"entries\":%zu}\n", table.size());
  return absl::OkStatus();
}

}  // namespace
}  // namespace ota::bench

int main(int argc, char** argv) {
  std::string problem;
  auto flags = ota::bench::Flags::Parse(argc, argv, {"url", "certs", "slot"}, &problem);
  if (!flags || !flags->Has("url") || !flags->Has("certs") || !flags->Has("slot")) {
    std::fprintf(stderr, "slot_record_tool: %s\n%s",
                 problem.empty() ? "--url, --certs and --slot are required" : problem.c_str(),
                 ota::bench::kUsage);
    return 2;
  }
  if (absl::Status st = ota::bench::Run(*flags); !st.ok()) {
    std::fprintf(stderr, "slot_record_tool: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
