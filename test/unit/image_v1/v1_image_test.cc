// OTA image v1 end to end at the library level, against real parts: images built by the v1
// builder from real trees, signed with a PKI made by deploy/gen-certs.sh, served over file:// by
// the real CurlFetcher, read by OpenImage (detection included) and their contents rebuilt by the
// v1 content source (bundles, zstd, slices with repeated ids, resume of intermediates).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/image/image_reader.h"
#include "common/image/legacy/writer.h"
#include "common/image/url.h"
#include "common/image/v1/writer.h"
#include "common/util/strings.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::image {
namespace {

namespace stdfs = std::filesystem;
using ::testing::HasSubstr;

const testing::TestPki& Pki() {
  static const testing::TestPki pki = *testing::CachedTestPki("main");
  return pki;
}
const testing::TestPki& OtherPki() {
  static const testing::TestPki pki = *testing::CachedTestPki("other");
  return pki;
}

std::string Random(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

void Write(const stdfs::path& p, std::string_view content, mode_t mode = 0644) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  ::chmod(p.c_str(), mode);
}

class V1ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("ota-v1-image-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_.emplace(std::move(*tmp));
    root_ = tmp_->path() / "rootfs";
    MakeTree();
    // Certs dir for v1: the root only (intermediates must travel in x5c).
    stdfs::create_directories(tmp_->path() / "certs");
    stdfs::copy_file(Pki().path("root.pem"), tmp_->path() / "certs" / "root.pem");
    std::ofstream(tmp_->path() / "chain.pem") << Pki().sign_pem << Pki().interm_pem;
  }

  void MakeTree() {
    stdfs::create_directories(root_ / "etc");
    stdfs::create_directories(root_ / "usr/lib");
    ::chmod((root_ / "usr").c_str(), 0750);
    Write(root_ / "etc/hostname", "ecu\n");                   // inlined
    Write(root_ / "etc/empty", "");                           // empty
    Write(root_ / "usr/bin/setuid", Random(3000, 1), 04755);  // bundle member
    for (int i = 0; i < 20; ++i) {
      Write(root_ / "usr/lib" / ("small" + std::to_string(i)), Random(200 + 37 * i, 10 + i));
    }
    Write(root_ / "usr/lib/copy_of_small3", Random(200 + 37 * 3, 13));          // same content
    Write(root_ / "usr/share/text", std::string(50000, 'a') + Random(100, 7));  // compressible
    Write(root_ / "opt/big.bin", Random(300000, 3));  // sliced (incompressible)
    // Repeated pieces: 3 identical 64 KiB blocks and a tail.
    const std::string block = Random(64 << 10, 99);
    Write(root_ / "opt/repeat.bin", block + block + block + "tail");
    ::symlink("../etc/hostname", (root_ / "usr/hn").c_str());
    ::symlink("/does/not/exist", (root_ / "usr/dangling").c_str());
    ::link((root_ / "usr/lib/small5").c_str(), (root_ / "usr/lib/small5.hard").c_str());
    xattrs_ = ::setxattr((root_ / "usr/lib/small1").c_str(), "user.ota", "v1\0x", 4, 0) == 0 &&
              ::setxattr((root_ / "etc").c_str(), "user.dir", "d", 1, 0) == 0;
    whiteout_ = ::mknod((root_ / "usr/.wh").c_str(), S_IFCHR | 0600, makedev(0, 0)) == 0;
  }

  v1::V1BuildOptions Options(const stdfs::path& out) {
    v1::V1BuildOptions o;
    o.rootfs = root_;
    o.out_dir = out;
    o.key_pem = Pki().path("sign.key");
    o.cert_pem = tmp_->path() / "chain.pem";
    o.ecu_ids = {"main", "sub"};
    o.persist_files = {"/etc/hostname", "/swapfile"};
    o.bundle_member_max = 4096;
    o.bundle_target = 2000;
    o.bundle_min_members = 2;
    o.compress_min = 1024;
    o.slice_threshold = 100000;
    o.slice_size = 64 << 10;
    return o;
  }

  stdfs::path Build(std::string_view name,
                    const std::function<void(v1::V1BuildOptions&)>& edit = {}) {
    const stdfs::path out = tmp_->path() / name;
    v1::V1BuildOptions o = Options(out);
    if (edit) edit(o);
    auto built = v1::BuildV1Image(o);
    EXPECT_TRUE(built.ok()) << built.status();
    return out;
  }

  std::string Url(const stdfs::path& dir) { return "file://" + PercentEncodePath(dir.string()); }

  absl::StatusOr<Image> Open(const stdfs::path& image, const stdfs::path& certs,
                             std::string ecu = "main") {
    auto store = crypto::CaStore::LoadDir(certs);
    if (!store.ok()) return store.status();
    store_.emplace(std::move(*store));
    ReaderOptions o;
    o.ca_store = &*store_;
    o.ecu_id = std::move(ecu);
    return OpenImage(*fetcher_, Url(image), o);
  }

  // Every non-inlined content of the manifest (or of the paths `wanted` accepts), fetched into a
  // fresh resources dir through `via` (default: the fixture's fetcher).
  absl::Status FetchAll(Image& img, const stdfs::path& resources, const stdfs::path& work,
                        uint64_t* network_bytes,
                        const std::function<bool(std::string_view path)>& wanted = {},
                        http::Fetcher* via = nullptr) {
    std::vector<ContentRequest> requests;
    std::set<std::string> seen;
    for (uint32_t i = 0; i < img.manifest.regulars.size(); ++i) {
      const RegularEntry& e = img.manifest.regulars[i];
      if (e.has_inline || e.size == 0) continue;
      if (wanted && !wanted(img.manifest.Str(e.path))) continue;
      if (!seen.insert(crypto::ToHex(e.sha256)).second) continue;
      requests.push_back(ContentRequest{e.sha256, e.size, i});
    }
    stdfs::create_directories(resources);
    delivered_ = 0;
    ContentFetchEnv env;
    env.fetcher = via != nullptr ? via : fetcher_.get();
    env.resources_dir = resources;
    env.work_dir = work;
    env.cancel = &cancel_;
    env.observer.on_bytes = [&](uint64_t n) { *network_bytes += n; };
    env.on_content = [&](size_t, uint64_t, uint32_t) { ++delivered_; };
    absl::Status st = img.source->Fetch(img.manifest, requests, env);
    if (st.ok() && delivered_ != requests.size()) return absl::InternalError("not all delivered");
    requested_ = requests.size();
    return st;
  }

  std::optional<fs::TempDir> tmp_;
  stdfs::path root_;
  bool xattrs_ = false, whiteout_ = false;
  std::unique_ptr<http::Fetcher> fetcher_ = http::CreateCurlFetcher([] {
    http::FetcherConfig c;
    c.max_attempts = 1;
    return c;
  }());
  std::optional<crypto::CaStore> store_;
  http::CancelFlag cancel_{false};
  size_t delivered_ = 0, requested_ = 0;
};

TEST_F(V1ImageTest, BuildsReadsAndRebuildsEveryContent) {
  const stdfs::path image = Build("img");
  ASSERT_TRUE(stdfs::exists(image / "oci-layout"));
  auto img = Open(image, tmp_->path() / "certs");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->format, ImageFormat::kV1);
  const Manifest& m = img->manifest;

  std::map<std::string, const RegularEntry*> regs;
  for (const RegularEntry& e : m.regulars) regs[std::string(m.Str(e.path))] = &e;
  ASSERT_TRUE(regs.contains("/etc/hostname"));
  EXPECT_TRUE(regs["/etc/hostname"]->has_inline);
  EXPECT_EQ(m.Str(regs["/etc/hostname"]->inline_content), "ecu\n");
  EXPECT_EQ(regs["/usr/bin/setuid"]->mode, static_cast<uint32_t>(S_IFREG | 04755));
  EXPECT_EQ(regs["/usr/lib/small5"]->nlink, 2u);
  EXPECT_EQ(regs["/usr/lib/small5"]->inode, regs["/usr/lib/small5.hard"]->inode);
  EXPECT_EQ(regs["/etc/empty"]->size, 0u);
  std::map<std::string, std::string> links;
  for (const SymlinkEntry& l : m.symlinks) links[std::string(m.Str(l.path))] = m.Str(l.target);
  EXPECT_EQ(links["/usr/hn"], "../etc/hostname");
  EXPECT_EQ(links["/usr/dangling"], "/does/not/exist");
  EXPECT_EQ(m.specials.size(), whiteout_ ? 1u : 0u);
  bool root_dir = false;
  for (const DirEntry& d : m.dirs) {
    if (m.Str(d.path) == "/") root_dir = true;
    if (m.Str(d.path) == "/usr") {
      EXPECT_EQ(d.mode & 07777, 0750u);
    }
  }
  EXPECT_TRUE(root_dir);
  if (xattrs_) {
    std::string value;
    m.ForEachXattr(regs["/usr/lib/small1"]->xattrs, [&](std::string_view n, std::string_view v) {
      if (n == "user.ota") value = v;
    });
    EXPECT_EQ(value, std::string("v1\0x", 4));
  }
  // As listed (the persistents step skips /swapfile, whatever the format).
  ASSERT_EQ(m.persistents.size(), 2u);
  EXPECT_EQ(m.Str(m.persistents[0]), "/etc/hostname");
  EXPECT_EQ(m.Str(m.persistents[1]), "/swapfile");

  uint64_t bytes = 0;
  const stdfs::path res = tmp_->path() / "res";
  ASSERT_TRUE(FetchAll(*img, res, tmp_->path() / "work", &bytes).ok());
  for (const auto& [path, e] : regs) {
    if (e->has_inline || e->size == 0) continue;
    auto content = fs::ReadFile(res / crypto::ToHex(e->sha256));
    ASSERT_TRUE(content.ok()) << path;
    auto original = fs::ReadFile(root_ / path.substr(1));
    ASSERT_TRUE(original.ok());
    EXPECT_EQ(*content, *original) << path;
  }
  EXPECT_FALSE(stdfs::exists(tmp_->path() / "work")) << "work dir removed after success";
  // Network bytes: at most the blob store (each blob once).
  uint64_t store = 0;
  for (const auto& b : stdfs::directory_iterator(image / "blobs/sha256")) store += b.file_size();
  EXPECT_LT(bytes, store);
}

TEST_F(V1ImageTest, RepeatedSliceIdsAndSecondEcu) {
  const stdfs::path image = Build("img", [](v1::V1BuildOptions& o) { o.compress = false; });
  auto img = Open(image, tmp_->path() / "certs", "sub");
  ASSERT_TRUE(img.ok()) << img.status();
  uint64_t bytes = 0;
  const stdfs::path res = tmp_->path() / "res";
  ASSERT_TRUE(FetchAll(*img, res, tmp_->path() / "work", &bytes).ok());
  auto original = fs::ReadFile(root_ / "opt/repeat.bin");
  ASSERT_TRUE(original.ok());
  auto rebuilt = fs::ReadFile(res / crypto::ToHex(crypto::Sha256Of(*original)));
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, *original);
  auto none = Open(image, tmp_->path() / "certs", "nobody");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  // The manifest's architecture must be the machine's (amd64 is x86_64).
  auto store = crypto::CaStore::LoadDir(tmp_->path() / "certs");
  ASSERT_TRUE(store.ok());
  ReaderOptions ro;
  ro.ca_store = &*store;
  ro.ecu_id = "sub";
  ro.architecture = "amd64";
  EXPECT_TRUE(OpenImage(*fetcher_, Url(image), ro).ok());
  ro.architecture = "aarch64";
  auto wrong = OpenImage(*fetcher_, Url(image), ro);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("is for x86_64"));
}

// The real fetcher, recording the URL of every download it is asked for.
class RecordingFetcher final : public http::Fetcher {
 public:
  explicit RecordingFetcher(http::Fetcher& inner) : inner_(inner) {}
  absl::StatusOr<std::string> Get(const std::string& url, const http::GetOptions& o) override {
    return inner_.Get(url, o);
  }
  absl::Status DownloadAll(std::span<const http::DownloadJob> jobs,
                           const std::function<bool(const http::DownloadResult&)>& on_done,
                           const http::TransferObserver& observer,
                           const http::CancelFlag& cancel) override {
    for (const http::DownloadJob& j : jobs) urls.push_back(j.url);
    return inner_.DownloadAll(jobs, on_done, observer, cancel);
  }
  std::vector<std::string> urls;

 private:
  http::Fetcher& inner_;
};

TEST_F(V1ImageTest, BundleIsFetchedOnceForManyMembersAndNotAtAllForNone) {
  // Bundles only, no compression and no slices: each blob is a bundle or a content's own blob.
  const stdfs::path out = tmp_->path() / "img";
  v1::V1BuildOptions o = Options(out);
  o.compress = false;
  o.slice = false;
  o.bundle_min_members = 1;
  auto built = v1::BuildV1Image(o);
  ASSERT_TRUE(built.ok()) << built.status();
  ASSERT_GE(built->bundles, 2u);
  auto img = Open(out, tmp_->path() / "certs");
  ASSERT_TRUE(img.ok()) << img.status();
  // Bundle candidates (65..4096 bytes); a group left with one member stays a plain blob.
  const std::vector<std::string> candidates = [] {
    std::vector<std::string> c = {"/usr/bin/setuid"};
    for (int i = 0; i < 20; ++i) c.push_back("/usr/lib/small" + std::to_string(i));
    return c;
  }();
  auto candidate = [&](std::string_view p) {
    return std::find(candidates.begin(), candidates.end(), p) != candidates.end() ||
           p == "/usr/lib/copy_of_small3" || p == "/usr/lib/small5.hard";
  };
  auto plain_blob_url = [&](const std::string& path) {  // the URL of its content's own blob
    auto content = fs::ReadFile(root_ / path.substr(1));
    EXPECT_TRUE(content.ok()) << path;
    return StrCat("/blobs/sha256/", crypto::ToHex(crypto::Sha256Of(content.value_or(""))));
  };
  auto dupes = [](std::vector<std::string> urls) {
    std::sort(urls.begin(), urls.end());
    return std::adjacent_find(urls.begin(), urls.end()) != urls.end();
  };

  // Every candidate: each bundle fetched once, the few unbundled ones as plain blobs.
  RecordingFetcher all(*fetcher_);
  uint64_t bytes = 0;
  ASSERT_TRUE(
      FetchAll(*img, tmp_->path() / "res1", tmp_->path() / "work1", &bytes, candidate, &all).ok());
  EXPECT_FALSE(dupes(all.urls));
  EXPECT_EQ(requested_, candidates.size());
  EXPECT_EQ(all.urls.size(), built->bundles + (requested_ - built->bundled));
  std::set<std::string> bundle_urls(all.urls.begin(), all.urls.end());
  std::string bundled_member;
  for (const std::string& path : candidates) {
    const std::string own = plain_blob_url(path);
    const auto it = std::find_if(bundle_urls.begin(), bundle_urls.end(),
                                 [&](const std::string& u) { return u.ends_with(own); });
    if (it != bundle_urls.end()) {
      bundle_urls.erase(it);  // not bundled: fetched as its own blob
    } else if (bundled_member.empty()) {
      bundled_member = path;
    }
  }
  EXPECT_EQ(bundle_urls.size(), built->bundles);
  ASSERT_FALSE(bundled_member.empty());

  // One member: exactly its bundle.
  RecordingFetcher one(*fetcher_);
  ASSERT_TRUE(FetchAll(
                  *img, tmp_->path() / "res2", tmp_->path() / "work2", &bytes,
                  [&](std::string_view p) { return p == bundled_member; }, &one)
                  .ok());
  ASSERT_EQ(one.urls.size(), 1u);
  EXPECT_TRUE(bundle_urls.contains(one.urls[0])) << one.urls[0];

  // No member: no bundle.
  RecordingFetcher none(*fetcher_);
  ASSERT_TRUE(FetchAll(
                  *img, tmp_->path() / "res3", tmp_->path() / "work3", &bytes,
                  [&](std::string_view p) { return !candidate(p); }, &none)
                  .ok());
  EXPECT_EQ(none.urls.size(), 3u);  // big.bin, repeat.bin, text: plain blobs
  for (const std::string& url : none.urls) {
    EXPECT_FALSE(bundle_urls.contains(url)) << url << " is a bundle";
  }
  EXPECT_FALSE(dupes(none.urls));
}

// Plain (not "+zstd") file and resource tables, as an unfinalized image carries them: read the
// same way, every content rebuilt.
TEST_F(V1ImageTest, PlainTablesAreReadToo) {
  const stdfs::path image =
      Build("plain", [](v1::V1BuildOptions& o) { o.compress_tables = false; });
  auto index = fs::ReadFile(image / "index.json");
  ASSERT_TRUE(index.ok());
  EXPECT_THAT(*index, HasSubstr("resource_table.v1.sqlite3\""));
  EXPECT_THAT(*index, ::testing::Not(HasSubstr("+zstd")));
  auto img = Open(image, tmp_->path() / "certs");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->manifest.regulars.size(), 28u);
  uint64_t bytes = 0;
  ASSERT_TRUE(FetchAll(*img, tmp_->path() / "res", tmp_->path() / "work", &bytes).ok());
  auto big = fs::ReadFile(root_ / "opt/big.bin");
  ASSERT_TRUE(big.ok());
  auto rebuilt = fs::ReadFile(tmp_->path() / "res" / crypto::ToHex(crypto::Sha256Of(*big)));
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, *big);
}

TEST_F(V1ImageTest, IntermediatesSurviveAFailedFetchAndAreNotDownloadedAgain) {
  const stdfs::path image = Build("img");
  auto img = Open(image, tmp_->path() / "certs");
  ASSERT_TRUE(img.ok()) << img.status();
  // Hide the blob of the compressed text: the first attempt fails after the bundles and slices
  // were fetched (batch order does not matter: the plan fails as a whole, intermediates stay).
  auto text = fs::ReadFile(root_ / "usr/share/text");
  ASSERT_TRUE(text.ok());
  uint64_t full = 0;
  {
    const stdfs::path probe = Build("probe");
    auto again = Open(probe, tmp_->path() / "certs");
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE(FetchAll(*again, tmp_->path() / "res0", tmp_->path() / "work0", &full).ok());
  }
  // Remove one slice piece of big.bin: the joined result cannot be made, other pieces stay.
  std::vector<stdfs::path> blobs;
  for (const auto& b : stdfs::directory_iterator(image / "blobs/sha256")) {
    if (b.file_size() == (64u << 10)) blobs.push_back(b.path());
  }
  ASSERT_FALSE(blobs.empty());
  const stdfs::path hidden = tmp_->path() / "hidden";
  stdfs::rename(blobs.front(), hidden);
  const stdfs::path res = tmp_->path() / "res";
  const stdfs::path work = tmp_->path() / "work";
  uint64_t first = 0;
  absl::Status failed = FetchAll(*img, res, work, &first);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.message()), HasSubstr(blobs.front().filename().string()));
  ASSERT_TRUE(stdfs::exists(work));
  stdfs::rename(hidden, blobs.front());
  uint64_t second = 0;
  // The resources dir is the delta's business; start it fresh to count only the work dir.
  stdfs::remove_all(res);
  ASSERT_TRUE(FetchAll(*img, res, work, &second).ok());
  EXPECT_LT(second, full) << "verified intermediates were reused";
}

TEST_F(V1ImageTest, RefusesBeforeWritingAnything) {
  const stdfs::path image = Build("img");
  // Foreign root.
  stdfs::create_directories(tmp_->path() / "other-certs");
  stdfs::copy_file(OtherPki().path("root.pem"), tmp_->path() / "other-certs" / "root.pem");
  auto foreign = Open(image, tmp_->path() / "other-certs");
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("not trusted by any root"));
  // No root at all.
  stdfs::create_directories(tmp_->path() / "no-certs");
  auto none = Open(image, tmp_->path() / "no-certs");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("no self-signed root"));
  // Intermediate in the certs dir but not in x5c: refused (intermediates only from x5c).
  std::ofstream(tmp_->path() / "leaf-only.pem") << Pki().sign_pem;
  const stdfs::path leaf_only = Build(
      "leaf-only", [&](v1::V1BuildOptions& o) { o.cert_pem = tmp_->path() / "leaf-only.pem"; });
  stdfs::copy_file(Pki().path("interm.pem"), tmp_->path() / "certs" / "interm.pem");
  auto missing = Open(leaf_only, tmp_->path() / "certs");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("issuer certificate"));
  // Future iat.
  const stdfs::path future = Build("future", [](v1::V1BuildOptions& o) {
    o.iat = static_cast<int64_t>(std::time(nullptr)) + 3600;
  });
  auto early = Open(future, tmp_->path() / "certs");
  EXPECT_EQ(early.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(early.status().message()), HasSubstr("future"));
  // Tampered index.json (same size, one byte changed).
  const stdfs::path tampered = Build("tampered");
  {
    auto index = fs::ReadFile(tampered / "index.json");
    ASSERT_TRUE(index.ok());
    std::string changed = *index;
    changed[changed.find("\"main\"") + 1] = 'M';
    std::ofstream(tampered / "index.json", std::ios::trunc) << changed;
  }
  auto bad_index = Open(tampered, tmp_->path() / "certs");
  EXPECT_EQ(bad_index.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad_index.status().message()), HasSubstr("index.json"));
  // Tampered metadata blob (the file table): refused before anything is written.
  const stdfs::path tampered_blob = Build("tampered-blob");
  {
    std::string biggest;
    uintmax_t size = 0;
    auto idx = fs::ReadFile(tampered_blob / "index.json");
    ASSERT_TRUE(idx.ok());
    for (const auto& b : stdfs::directory_iterator(tampered_blob / "blobs/sha256")) {
      auto content = fs::ReadFile(b.path());
      // The image config names the file table; find it through the config blob.
      if (content.ok() && content->find("file_table") != std::string::npos &&
          content->find("labels") != std::string::npos) {
        const size_t at = content->find("sha256:", content->find("\"file_table\""));
        biggest = content->substr(at + 7, 64);
        size = 1;
      }
    }
    ASSERT_EQ(size, 1u);
    std::fstream f(tampered_blob / "blobs/sha256" / biggest,
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x42');
  }
  auto bad_blob = Open(tampered_blob, tmp_->path() / "certs");
  EXPECT_EQ(bad_blob.status().code(), absl::StatusCode::kDataLoss) << bad_blob.status();
  EXPECT_THAT(std::string(bad_blob.status().message()), HasSubstr("file table"));
}

TEST_F(V1ImageTest, TamperedResourceBlobFailsItsContent) {
  const stdfs::path image = Build("img");
  auto img = Open(image, tmp_->path() / "certs");
  ASSERT_TRUE(img.ok()) << img.status();
  // Flip a byte in every blob of 64 KiB (slice pieces): their digests no longer match.
  for (const auto& b : stdfs::directory_iterator(image / "blobs/sha256")) {
    if (b.file_size() != (64u << 10)) continue;
    std::fstream f(b.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5);
    f.put('\x01');
    f.seekp(6);
    f.put('\x02');
  }
  uint64_t bytes = 0;
  absl::Status st = FetchAll(*img, tmp_->path() / "res", tmp_->path() / "work", &bytes);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
}

TEST_F(V1ImageTest, LegacyUrlIsDetectedAsLegacy) {
  // A directory without oci-layout: detection says legacy (file:// "no such file" = 404).
  auto format = DetectImageFormat(*fetcher_, Url(tmp_->path()));
  ASSERT_TRUE(format.ok()) << format.status();
  EXPECT_EQ(*format, ImageFormat::kLegacy);
  const stdfs::path image = Build("img");
  auto v1 = DetectImageFormat(*fetcher_, Url(image));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(*v1, ImageFormat::kV1);
}

// ota-image convert's path: a legacy image, loaded and verified, its contents fetched, written
// as v1 from the model; the v1 image reads back to the same tree.
TEST_F(V1ImageTest, LegacyImageConvertsToTheSameTree) {
  std::filesystem::remove((root_ / "usr/.wh").c_str());  // legacy images cannot carry whiteouts
  BuildOptions legacy;
  legacy.rootfs = root_;
  legacy.out_dir = tmp_->path() / "legacy";
  legacy.key_pem = Pki().path("sign.key");
  legacy.cert_pem = Pki().path("sign.pem");
  ASSERT_TRUE(BuildImage(legacy).ok());
  auto store = crypto::CaStore::LoadDir(Pki().certs_dir());
  ASSERT_TRUE(store.ok());
  ReaderOptions ro;
  ro.ca_store = &*store;
  auto old_image = OpenImage(*fetcher_, Url(legacy.out_dir), ro);
  ASSERT_TRUE(old_image.ok()) << old_image.status();
  ASSERT_EQ(old_image->format, ImageFormat::kLegacy);
  uint64_t bytes = 0;
  const stdfs::path contents = tmp_->path() / "contents";
  ASSERT_TRUE(FetchAll(*old_image, contents, tmp_->path() / "work", &bytes).ok());
  v1::V1BuildOptions o = Options(tmp_->path() / "converted");
  o.ecu_ids = {"main"};
  auto built = v1::BuildV1ImageFromManifest(o, old_image->manifest, contents);
  ASSERT_TRUE(built.ok()) << built.status();
  auto converted = Open(tmp_->path() / "converted", tmp_->path() / "certs");
  ASSERT_TRUE(converted.ok()) << converted.status();

  auto describe = [](const Manifest& m) {
    std::map<std::string, std::string> out;
    for (const DirEntry& d : m.dirs) {
      if (m.Str(d.path) != "/") {
        out[std::string(m.Str(d.path))] = StrCat("d ", d.mode & 07777, " ", d.uid, ":", d.gid);
      }
    }
    for (const SymlinkEntry& l : m.symlinks) {
      out[std::string(m.Str(l.path))] = StrCat("l ", m.Str(l.target), " ", l.uid, ":", l.gid);
    }
    std::map<uint64_t, std::string> first_of_group;
    for (const RegularEntry& e : m.regulars) {
      std::string group;
      if (e.nlink > 1) {
        auto [it, _] = first_of_group.try_emplace(e.inode, std::string(m.Str(e.path)));
        group = " hl=" + it->second;
      }
      out[std::string(m.Str(e.path))] = StrCat("f ", e.mode & 07777, " ", e.uid, ":", e.gid, " ",
                                               crypto::ToHex(e.sha256), " ", e.nlink, group);
    }
    return out;
  };
  EXPECT_EQ(describe(converted->manifest), describe(old_image->manifest));
  uint64_t again = 0;
  ASSERT_TRUE(FetchAll(*converted, tmp_->path() / "res2", tmp_->path() / "work2", &again).ok());
}

}  // namespace
}  // namespace ota::image
