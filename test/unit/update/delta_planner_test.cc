// The content-based delta against real trees: what is reused, what is hashed, what is resumed.
#include "otaclient/update/delta_planner.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "otaclient/update/content_index.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

using testing::Content;
using testing::Digest;
using testing::Hex;
using testing::ManifestBuilder;
using testing::ReadFile;
using testing::WriteFile;

class DeltaPlannerTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    active_root_ = tmp() / "active";
    standby_root_ = tmp() / "standby";
    std::filesystem::create_directories(active_root_);
    std::filesystem::create_directories(standby_root_);
  }

  absl::StatusOr<DeltaResult> Plan(const image::Manifest& manifest, ContentIndex* index_out) {
    auto index = ContentIndex::Build(manifest);
    if (!index.ok()) return index.status();
    auto active = fs::RootedDir::Open(active_root_);
    auto standby = fs::RootedDir::Open(standby_root_);
    if (!active.ok() || !standby.ok()) return absl::InternalError("open roots");
    DeltaOptions options;
    options.hash_threads = 3;
    auto result = PlanDelta(*index, *active, *standby, options, counters_);
    if (index_out != nullptr) *index_out = std::move(*index);
    return result;
  }

  // Hex digests of the contents still to download.
  std::set<std::string> MissingHex(const DeltaResult& r, const ContentIndex& index) {
    std::set<std::string> out;
    for (uint32_t slot : r.missing) out.insert(crypto::ToHex(index[slot].sha256));
    return out;
  }

  std::filesystem::path Resource(std::string_view content) {
    return standby_root_ / ".ota-resources" / Hex(content);
  }

  std::filesystem::path active_root_, standby_root_;
  ProgressCounters counters_;
};

TEST_F(DeltaPlannerTest, ReusesContentFromAnyPathAndHashesOnlySizeCandidates) {
  const std::string moved = Content(100, 1);    // on the active slot under another name
  const std::string fresh = Content(300, 2);    // nowhere locally
  const std::string decoy = Content(300, 3);    // same size as `fresh`, other content
  const std::string in_proc = Content(200, 4);  // only under /proc: never a source
  const std::string outside = Content(250, 5);  // only reachable through a symlink
  WriteFile(active_root_ / "old/name/a.bin", moved);
  WriteFile(active_root_ / "z.bin", decoy);
  WriteFile(active_root_ / "proc/1/data", in_proc);
  for (int i = 0; i < 20; ++i)
    WriteFile(active_root_ / "noise" / std::to_string(i), Content(7 + i, i));
  WriteFile(tmp() / "outside/secret", outside);
  std::filesystem::create_directory_symlink(tmp() / "outside", active_root_ / "escape");
  std::filesystem::create_symlink("z.bin", active_root_ / "link_to_decoy");

  ManifestBuilder b;
  b.Regular("/new/place/a.bin", moved);
  b.Regular("/also/a.bin", moved);  // same content twice: one resource
  b.Regular("/fresh.bin", fresh);
  b.Regular("/from-proc", in_proc);
  b.Regular("/from-outside", outside);
  b.Regular("/empty", "");
  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_EQ(index.size(), 4u);  // the empty content is not indexed
  EXPECT_EQ(MissingHex(*result, index),
            (std::set<std::string>{Hex(fresh), Hex(in_proc), Hex(outside)}));
  EXPECT_EQ(result->missing_bytes, 300u + 200u + 250u);
  EXPECT_EQ(ReadFile(Resource(moved)), moved);
  EXPECT_EQ(testing::Lstat(Resource(moved)).st_mode & 07777, 0600u);
  // Exactly the two regular files of a needed size outside /proc: a.bin and the decoy. The
  // 20 noise files, the symlinks and what lies behind them were never read.
  EXPECT_EQ(counters_.delta_files_hashed.load(), 2u);
  EXPECT_EQ(counters_.delta_bytes_hashed.load(), 400u);
  EXPECT_EQ(counters_.delta_reused.load(), 1u);
  EXPECT_EQ(counters_.delta_resumed.load(), 0u);
  // The active slot is read-only for the delta.
  EXPECT_EQ(ReadFile(active_root_ / "old/name/a.bin"), moved);
  EXPECT_FALSE(std::filesystem::exists(active_root_ / ".ota-resources"));
}

// A mount this test made; unmounted (lazily if busy) when it goes, even on a failed assertion.
class TestMount {
 public:
  static std::unique_ptr<TestMount> Make(const char* source, const std::filesystem::path& target,
                                         const char* type, unsigned long flags) {
    std::filesystem::create_directories(target);
    if (::mount(source, target.c_str(), type, flags, nullptr) != 0) return nullptr;
    return std::unique_ptr<TestMount>(new TestMount(target));
  }
  ~TestMount() { ::umount2(target_.c_str(), MNT_DETACH); }
  TestMount(const TestMount&) = delete;
  TestMount& operator=(const TestMount&) = delete;

 private:
  explicit TestMount(std::filesystem::path target) : target_(std::move(target)) {}
  std::filesystem::path target_;
};

// Regression (issue 11 §2h): the active-slot scan crossed into other file systems mounted under
// the active root (a data partition, a tmpfs, a bind mount) and reused their files as if they
// were the slot's. It stays on the slot's file system now, like `find -xdev`.
TEST_F(DeltaPlannerTest, StaysOnTheActiveSlotsFileSystem) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIP: mounting needs root";
  const std::string on_slot = Content(120, 11);   // a file of the slot itself
  const std::string on_tmpfs = Content(130, 12);  // only on a tmpfs mounted in the slot
  const std::string via_bind = Content(140, 13);  // only under a bind mount from /dev/shm
  WriteFile(active_root_ / "usr/lib/kept.bin", on_slot);
  auto tmpfs = TestMount::Make("ota-delta-test", active_root_ / "var/data", "tmpfs", 0);
  ASSERT_NE(tmpfs, nullptr) << "mount tmpfs: " << std::strerror(errno);
  WriteFile(active_root_ / "var/data/deep/file.bin", on_tmpfs);
  auto shm = fs::TempDir::Create("ota-delta-bind", "/dev/shm");
  ASSERT_TRUE(shm.ok()) << shm.status();
  WriteFile(shm->path() / "file.bin", via_bind);
  auto bind = TestMount::Make(shm->path().c_str(), active_root_ / "srv/bound", nullptr, MS_BIND);
  ASSERT_NE(bind, nullptr) << "bind mount: " << std::strerror(errno);

  ManifestBuilder b;
  b.Regular("/usr/lib/kept.bin", on_slot);
  b.Regular("/data/file.bin", on_tmpfs);
  b.Regular("/srv/file.bin", via_bind);
  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(MissingHex(*result, index), (std::set<std::string>{Hex(on_tmpfs), Hex(via_bind)}));
  EXPECT_EQ(ReadFile(Resource(on_slot)), on_slot);
  EXPECT_FALSE(std::filesystem::exists(Resource(on_tmpfs)));
  EXPECT_FALSE(std::filesystem::exists(Resource(via_bind)));
}

TEST_F(DeltaPlannerTest, StopsHashingASizeOnceAllItsContentsAreFound) {
  const std::string wanted = Content(64, 10);
  // Many files of the wanted size; once `wanted` is found the rest need not be hashed.
  WriteFile(active_root_ / "a/wanted", wanted);
  for (int i = 0; i < 50; ++i)
    WriteFile(active_root_ / "b" / std::to_string(i), Content(64, 100 + i));
  ManifestBuilder b;
  b.Regular("/wanted", wanted);
  auto result = Plan(b.m, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->missing.empty());
  EXPECT_LE(counters_.delta_files_hashed.load(), 51u);
  EXPECT_GE(counters_.delta_files_hashed.load(), 1u);
}

TEST_F(DeltaPlannerTest, ResumesFromValidResourcesAndDiscardsBadOnes) {
  const std::string kept = Content(500, 20);     // valid leftover: resumed, not re-hashed elsewhere
  const std::string corrupt = Content(400, 21);  // leftover with the right size, wrong bytes
  const std::string truncated = Content(350, 22);  // leftover with the wrong size
  const std::string unneeded = Content(123, 23);   // leftover of a content no longer needed
  const auto res = standby_root_ / ".ota-resources";
  WriteFile(res / Hex(kept), kept, 0600);
  std::string bad = corrupt;
  bad[17] ^= 0x40;
  WriteFile(res / Hex(corrupt), bad, 0600);
  WriteFile(res / Hex(truncated), truncated.substr(0, 100), 0600);
  WriteFile(res / Hex(unneeded), unneeded, 0600);
  WriteFile(res / ".abc.ota-partial.XYZ", "partial download", 0600);
  WriteFile(res / Hex(kept).substr(0, 63), "not a digest name", 0600);
  std::filesystem::create_directories(res / "a-directory/inside");
  // The corrupt one's real content is still available on the active slot.
  WriteFile(active_root_ / "usr/lib/corrupt.so", corrupt);

  ManifestBuilder b;
  b.Regular("/kept", kept);
  b.Regular("/corrupt", corrupt);
  b.Regular("/truncated", truncated);
  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(MissingHex(*result, index), (std::set<std::string>{Hex(truncated)}));
  EXPECT_EQ(counters_.delta_resumed.load(), 1u);
  EXPECT_EQ(counters_.delta_reused.load(), 1u);
  EXPECT_EQ(ReadFile(res / Hex(kept)), kept);
  EXPECT_EQ(ReadFile(res / Hex(corrupt)), corrupt);  // replaced by the good copy
  std::set<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(res)) left.insert(e.path().filename());
  EXPECT_EQ(left, (std::set<std::string>{Hex(kept), Hex(corrupt)}));
}

// The active slot is walked only while some content is missing: when the resources dir supplied
// everything it is not read at all; with one content missing it is walked and supplies it.
TEST_F(DeltaPlannerTest, TheActiveSlotIsScannedOnlyWhenContentIsMissing) {
  const std::string resumed = Content(300, 30);
  const std::string on_active = Content(301, 31);
  WriteFile(standby_root_ / ".ota-resources" / Hex(resumed), resumed, 0600);
  WriteFile(active_root_ / "usr/lib/a.so", on_active);
  WriteFile(active_root_ / "usr/lib/same-size-as-resumed", Content(300, 32));
  {
    ManifestBuilder b;
    b.Regular("/resumed", resumed);
    auto result = Plan(b.m, nullptr);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->missing.empty());
    EXPECT_FALSE(result->active_scanned);
    EXPECT_EQ(counters_.delta_files_hashed.load(), 1u);  // the resumed resource only
  }
  ManifestBuilder b;
  b.Regular("/resumed", resumed);
  b.Regular("/on-active", on_active);
  auto result = Plan(b.m, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->active_scanned);
  EXPECT_TRUE(result->missing.empty());
  EXPECT_EQ(counters_.delta_reused.load(), 1u);
  EXPECT_EQ(ReadFile(Resource(on_active)), on_active);
}

TEST_F(DeltaPlannerTest, EntriesWithoutSizeAreMatchedByDigestOnly) {
  const std::string content = Content(77, 30);
  WriteFile(active_root_ / "x", content);
  ManifestBuilder b;
  b.Regular("/x", content, 0644, 0, 0, 1, std::nullopt, /*with_size=*/false);
  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();
  // No size known: no size filter can select it, so it is downloaded, and nothing was hashed.
  EXPECT_EQ(result->missing.size(), 1u);
  EXPECT_EQ(counters_.delta_files_hashed.load(), 0u);
}

TEST_F(DeltaPlannerTest, ResourcesDirThatIsASymlinkIsRefused) {
  std::filesystem::create_directories(tmp() / "elsewhere");
  std::filesystem::create_directory_symlink(tmp() / "elsewhere", standby_root_ / ".ota-resources");
  const std::string content = Content(10, 40);
  WriteFile(active_root_ / "f", content);
  ManifestBuilder b;
  b.Regular("/f", content);
  auto result = Plan(b.m, nullptr);
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(std::filesystem::is_empty(tmp() / "elsewhere"));
}

TEST_F(DeltaPlannerTest, LargeFilesAreCopiedAndVerifiedWhileStreaming) {
  // Larger than the planner's 1 MiB read buffer: hashed in chunks, then copied with a second
  // hash over exactly the bytes written.
  const std::string big = Content((5u << 20) / 2 + 17, 50);
  const std::string big_decoy = Content(big.size(), 51);  // same size, other content
  WriteFile(active_root_ / "opt/big.bin", big);
  WriteFile(active_root_ / "opt/decoy.bin", big_decoy);
  ManifestBuilder b;
  b.Regular("/big", big);
  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->missing.empty());
  EXPECT_EQ(ReadFile(Resource(big)), big);
  EXPECT_EQ(counters_.delta_reused.load(), 1u);
  EXPECT_GE(counters_.delta_files_hashed.load(), 1u);
  EXPECT_LE(counters_.delta_files_hashed.load(), 2u);
  EXPECT_EQ(counters_.delta_bytes_hashed.load(), counters_.delta_files_hashed.load() * big.size());
}

TEST_F(DeltaPlannerTest, WideAndDeepTreesAreWalkedCompletely) {
  // One directory with many more files than a work item holds, plus a deep chain of
  // directories: every needed content must be found exactly once, none twice.
  ManifestBuilder b;
  std::set<std::string> expected;
  for (int i = 0; i < 700; ++i) {
    const std::string content = Content(40 + i % 13, 1000 + i);
    WriteFile(active_root_ / "usr/lib" / ("lib" + std::to_string(i) + ".so"), content);
    b.Regular("/new/lib" + std::to_string(i), content);
    expected.insert(Hex(content));
  }
  std::filesystem::path deep = active_root_;
  for (int d = 0; d < 60; ++d) deep /= "d" + std::to_string(d);
  const std::string deep_content = Content(333, 2000);
  WriteFile(deep / "leaf", deep_content);
  b.Regular("/leaf", deep_content);
  expected.insert(Hex(deep_content));
  // A fifo is neither opened nor counted (it would block a plain open).
  ASSERT_EQ(::mkfifo((active_root_ / "usr/lib/a.fifo").c_str(), 0644), 0);

  ContentIndex index;
  auto result = Plan(b.m, &index);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->missing.empty());
  EXPECT_EQ(counters_.delta_reused.load(), expected.size());
  EXPECT_EQ(counters_.delta_files_hashed.load(), 701u);
  std::set<std::string> resources;
  for (const auto& e : std::filesystem::directory_iterator(standby_root_ / ".ota-resources")) {
    resources.insert(e.path().filename());
    EXPECT_EQ(Hex(ReadFile(e.path())), e.path().filename().string());
  }
  EXPECT_EQ(resources, expected);
}

TEST_F(DeltaPlannerTest, CancelStopsTheScan) {
  for (int i = 0; i < 200; ++i) WriteFile(active_root_ / "f" / std::to_string(i), Content(50, i));
  ManifestBuilder b;
  b.Regular("/x", Content(50, 9999));
  auto index = ContentIndex::Build(b.m);
  ASSERT_TRUE(index.ok());
  auto active = fs::RootedDir::Open(active_root_);
  auto standby = fs::RootedDir::Open(standby_root_);
  ASSERT_TRUE(active.ok() && standby.ok());
  std::atomic<bool> cancel{true};
  DeltaOptions options;
  options.cancel = &cancel;
  auto result = PlanDelta(*index, *active, *standby, options, counters_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(counters_.delta_files_hashed.load(), 0u);
}

TEST(ContentIndexTest, DedupesAndRejectsInconsistentSizes) {
  ManifestBuilder b;
  b.Regular("/a", "same");
  b.Regular("/b", "same");
  b.Regular("/c", "other!");
  b.Regular("/e", "");
  auto index = ContentIndex::Build(b.m);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->size(), 2u);
  EXPECT_EQ(index->total_file_bytes(), 4u + 4u + 6u);
  auto slot = index->Find(Digest("same"));
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ((*index)[*slot].first_entry, 0u);
  EXPECT_FALSE(index->Find(Digest("absent")).has_value());
  EXPECT_TRUE(index->SizeSlot(4).has_value());
  EXPECT_TRUE(index->SizeSlot(6).has_value());
  EXPECT_FALSE(index->SizeSlot(5).has_value());
  EXPECT_FALSE(index->SizeSlot(0).has_value());

  ManifestBuilder bad;
  bad.Regular("/a", "same");
  bad.m.regulars.push_back(bad.m.regulars[0]);
  bad.m.regulars.back().size = 99;
  EXPECT_EQ(ContentIndex::Build(bad.m).status().code(), absl::StatusCode::kInvalidArgument);

  ManifestBuilder empty_with_size;
  empty_with_size.Regular("/e", "");
  empty_with_size.m.regulars[0].size = 3;
  EXPECT_EQ(ContentIndex::Build(empty_with_size.m).status().code(),
            absl::StatusCode::kInvalidArgument);

  ManifestBuilder zero_size;
  zero_size.Regular("/z", "x");
  zero_size.m.regulars[0].size = 0;
  EXPECT_EQ(ContentIndex::Build(zero_size.m).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ota::update
