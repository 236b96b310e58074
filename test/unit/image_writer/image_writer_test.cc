#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/image/legacy/list_lines.h"
#include "common/image/legacy/metadata.h"
#include "common/image/legacy/writer.h"
#include "common/image/manifest.h"
#include "common/util/strings.h"
#include "test/lib/test_bytes.h"

namespace ota::image {
namespace {

using ::ota::testing::RandomBytes;

namespace stdfs = std::filesystem;
using ::testing::HasSubstr;

std::string Hex(std::string_view content) { return crypto::ToHex(crypto::Sha256Of(content)); }

std::string ReadOrDie(const stdfs::path& path) {
  absl::StatusOr<std::string> content = fs::ReadFile(path);
  EXPECT_TRUE(content.ok()) << content.status();
  return content.ok() ? *content : std::string();
}

class ImageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<fs::TempDir> dir = fs::TempDir::Create("image_writer_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_.emplace(std::move(*dir));
    rootfs_ = tmp_->path() / "rootfs";
    out_ = tmp_->path() / "out";
    ASSERT_EQ(::mkdir(rootfs_.c_str(), 0755), 0);
    key_ = tmp_->path() / "sign.key";
    cert_ = tmp_->path() / "sign.pem";
    MakeKeyAndCert(key_, cert_);
  }

  static void MakeKeyAndCert(const stdfs::path& key, const stdfs::path& cert) {
    std::string cmd = StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ota-test "
        "-days 2 -keyout ",
        key.string(), " -out ", cert.string(), " 2>/dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  // Rootfs helpers: every mode is set explicitly so the umask does not matter.
  void Dir(const std::string& path, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0) {
    stdfs::path p = Root(path);
    ASSERT_EQ(::mkdir(p.c_str(), mode), 0) << p;
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0) << p;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0) << p;
  }
  void File(const std::string& path, std::string_view content, mode_t mode = 0644, uid_t uid = 0,
            gid_t gid = 0) {
    stdfs::path p = Root(path);
    ASSERT_TRUE(fs::WriteFileAtomic(p, content, 0644).ok()) << p;
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0) << p;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0) << p;  // after chown, which clears setuid
  }
  void Symlink(const std::string& path, const std::string& target, uid_t uid = 0, gid_t gid = 0) {
    ASSERT_EQ(::symlink(target.c_str(), Root(path).c_str()), 0) << path;
    ASSERT_EQ(::lchown(Root(path).c_str(), uid, gid), 0) << path;
  }
  void HardLink(const std::string& existing, const std::string& path) {
    ASSERT_EQ(::link(Root(existing).c_str(), Root(path).c_str()), 0) << path;
  }
  stdfs::path Root(const std::string& path) const { return rootfs_.string() + path; }
  uint64_t Inode(const std::string& path) const {
    struct stat st {};
    EXPECT_EQ(::lstat(Root(path).c_str(), &st), 0);
    return st.st_ino;
  }

  BuildOptions Options() const {
    BuildOptions options;
    options.rootfs = rootfs_;
    options.out_dir = out_;
    options.key_pem = key_;
    options.cert_pem = cert_;
    return options;
  }

  // Parses every list file of the built image, as the client would.
  Manifest ParseBack() {
    Manifest m;
    for (auto [kind, name] :
         {std::pair{ListKind::kDirs, "dirs.txt"}, std::pair{ListKind::kSymlinks, "symlinks.txt"},
          std::pair{ListKind::kRegulars, "regulars.txt"},
          std::pair{ListKind::kPersistents, "persistents.txt"}}) {
      absl::Status st = ParseListFile(kind, ReadOrDie(out_ / name), name, m);
      EXPECT_TRUE(st.ok()) << st;
    }
    return m;
  }

  std::optional<fs::TempDir> tmp_;
  stdfs::path rootfs_, out_, key_, cert_;
};

// A small tree with every kind of entry and the nasty names, compared byte for byte.
TEST_F(ImageWriterTest, GoldenListFiles) {
  Dir("/bin-real");
  File("/bin-real/su", "su binary", 04755);
  File("/bin-real/sg", "sg binary", 02755, 0, 50);
  Symlink("/bin", "bin-real");
  Dir("/etc");
  File("/etc/hosts", "127.0.0.1 localhost\n");
  Dir("/home", 0755);
  Dir("/home/it's", 02775, 1000, 1001);
  File("/home/it's/a,b 'c", "", 0600, 1000, 1001);
  File("/home/it's/100%+:\\ \xc3\xa9'", "nasty\n", 0640, 1000, 1001);
  File("/home/it's/x','y", "comma quote\n", 0644, 1000, 1001);
  Symlink("/home/it's/dangling", "/nonexistent/abs'olute", 1000, 1001);
  Symlink("/home/it's/rel','link'", "../it's/x','y", 0, 1001);
  File("/home/hl1", "hard", 0644, 1000, 1001);
  HardLink("/home/hl1", "/home/hl2");
  Dir("/var", 0755);
  Dir("/var/tmp", 01777);

  BuildOptions options = Options();
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  ASSERT_TRUE(summary.ok()) << summary.status();

  EXPECT_EQ(ReadOrDie(out_ / "dirs.txt"),
            "0755,0,0,'/bin-real'\n"
            "0755,0,0,'/etc'\n"
            "0755,0,0,'/home'\n"
            "2775,1000,1001,'/home/it'\\''s'\n"
            "0755,0,0,'/var'\n"
            "1777,0,0,'/var/tmp'");
  EXPECT_EQ(ReadOrDie(out_ / "symlinks.txt"),
            "0777,0,0,'/bin','bin-real'\n"
            "0777,1000,1001,'/home/it'\\''s/dangling','/nonexistent/abs'\\''olute'\n"
            "0777,0,1001,'/home/it'\\''s/rel'\\'','\\''link'\\''','../it'\\''s/x'\\'','\\''y'");
  const std::string hl_inode = std::to_string(Inode("/home/hl1"));
  EXPECT_EQ(ReadOrDie(out_ / "regulars.txt"),
            "2755,0,50,1," + Hex("sg binary") + ",'/bin-real/sg',9,,\n" +     //
                "4755,0,0,1," + Hex("su binary") + ",'/bin-real/su',9,,\n" +  //
                "0644,0,0,1," + Hex("127.0.0.1 localhost\n") + ",'/etc/hosts',20,,\n" +
                "0644,1000,1001,2," + Hex("hard") + ",'/home/hl1',4," + hl_inode + ",\n" +
                "0644,1000,1001,2," + Hex("hard") + ",'/home/hl2',4," + hl_inode + ",\n" +
                "0640,1000,1001,1," + Hex("nasty\n") +
                ",'/home/it'\\''s/100%+:\\ \xc3\xa9'\\''',6,,\n" + "0600,1000,1001,1," +
                std::string(crypto::kEmptySha256Hex) + ",'/home/it'\\''s/a,b '\\''c',0,,\n" +
                "0644,1000,1001,1," + Hex("comma quote\n") +
                ",'/home/it'\\''s/x'\\'','\\''y',12,,");
  EXPECT_EQ(ReadOrDie(out_ / "persistents.txt"),
            "'/etc/hosts'\n'/etc/hostname'\n'/etc/resolv.conf'\n'/etc/netplan'");
  const uint64_t total = 9 + 9 + 20 + 4 + 4 + 6 + 0 + 12;
  EXPECT_EQ(ReadOrDie(out_ / "total_regular_size.txt"), std::to_string(total));

  EXPECT_EQ(summary->dirs, 6u);
  EXPECT_EQ(summary->symlinks, 3u);
  EXPECT_EQ(summary->regulars, 8u);
  EXPECT_EQ(summary->persistents, 4u);
  EXPECT_EQ(summary->total_regular_size, total);
  EXPECT_EQ(summary->compressed_files, 0u);
  EXPECT_FALSE(stdfs::exists(out_ / "data.zst"));

  // Parses back into exactly what was walked.
  Manifest m = ParseBack();
  EXPECT_EQ(m.dirs.size(), 6u);
  EXPECT_EQ(m.symlinks.size(), 3u);
  EXPECT_EQ(m.regulars.size(), 8u);
  EXPECT_EQ(m.persistents.size(), 4u);
  EXPECT_EQ(m.Str(m.symlinks[2].path), "/home/it's/rel','link'");
  EXPECT_EQ(m.Str(m.symlinks[2].target), "../it's/x','y");
  EXPECT_EQ(m.regulars[3].inode, m.regulars[4].inode);
  EXPECT_TRUE(m.regulars[3].has_inode);
  EXPECT_FALSE(m.regulars[0].has_inode);
  EXPECT_EQ(m.regulars[1].mode, 04755u);

  // data/ holds each regular file's content at its path, the hard links share one inode, and
  // symlinks are not copied (a web server must never follow them out of the image).
  for (const RegularEntry& e : m.regulars) {
    stdfs::path blob = out_.string() + "/data" + std::string(m.Str(e.path));
    absl::StatusOr<crypto::Sha256Digest> digest = crypto::Sha256File(blob);
    ASSERT_TRUE(digest.ok()) << digest.status();
    EXPECT_EQ(*digest, e.sha256) << blob;
  }
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((out_ / "data/home/hl1").c_str(), &a), 0);
  ASSERT_EQ(::stat((out_ / "data/home/hl2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(out_ / "data/bin")));
  EXPECT_TRUE(stdfs::is_directory(out_ / "data/var/tmp"));

  // The certificate and a metadata.jwt that names every file by its hash and verifies.
  EXPECT_EQ(ReadOrDie(out_ / "sign.pem"), ReadOrDie(cert_));
  absl::StatusOr<Metadata> md = ParseMetadataJwt(ReadOrDie(out_ / "metadata.jwt"));
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_TRUE(crypto::VerifySignature(ReadOrDie(cert_), md->signed_part, md->signature).ok());
  for (const SignedFileRef* ref :
       {&md->directory, &md->symboliclink, &md->regular, &md->persistent, &md->certificate}) {
    EXPECT_EQ(ref->sha256, crypto::Sha256Of(ReadOrDie(out_ / ref->file))) << ref->file;
  }
  EXPECT_EQ(md->directory.file, "dirs.txt");
  EXPECT_EQ(md->symboliclink.file, "symlinks.txt");
  EXPECT_EQ(md->regular.file, "regulars.txt");
  EXPECT_EQ(md->persistent.file, "persistents.txt");
  EXPECT_EQ(md->certificate.file, "sign.pem");
  EXPECT_EQ(md->rootfs_directory, "data");
  EXPECT_FALSE(md->compressed_rootfs_directory.has_value());
  EXPECT_EQ(md->total_regular_size, total);
}

TEST_F(ImageWriterTest, IgnoreListAndSpecialFiles) {
  Dir("/boot");
  Dir("/boot/grub");
  File("/boot/grub/grub.cfg", "menu");
  Dir("/boot/ota");
  File("/boot/vmlinuz-5.4.0-1-generic", "kernel");
  Symlink("/boot/vmlinuz", "vmlinuz-5.4.0-1-generic");
  Symlink("/boot/vmlinuz.old", "vmlinuz-5.4.0-1-generic");
  Symlink("/boot/initrd.img", "initrd.img-5.4.0-1-generic");
  Symlink("/boot/initrd.img.old", "initrd.img-5.4.0-1-generic");
  File("/boot/initrd.img-5.4.0-1-generic", "initrd");
  File("/boot/initrd.img-5.4.0-1-generic.old-dkms", "old");
  Dir("/tmp", 01777);
  File("/tmp/scratch", "x");
  Dir("/src");
  Dir("/src/.git");
  File("/src/.git/config", "git");
  File("/src/.gitignore", "keep me");
  File("/src/.ssh", "a file named .ssh is not the .ssh/ directory");
  Dir("/src/__pycache__");
  File("/src/__pycache__/m.pyc", "pyc");
  Dir("/src/sub");
  Dir("/src/sub/__pycache__");
  Dir("/root");
  Dir("/root/.ssh", 0700);
  File("/root/.ssh/id_rsa", "secret");
  Dir("/nested");
  Dir("/nested/boot");
  Dir("/nested/boot/grub");  // only /boot/grub at the root is ignored
  Dir("/nested/tmp");
  ASSERT_EQ(::mkfifo(Root("/src/fifo").c_str(), 0644), 0);

  absl::StatusOr<BuildSummary> summary = BuildImage(Options());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(ReadOrDie(out_ / "dirs.txt"),
            "0755,0,0,'/boot'\n"
            "0755,0,0,'/nested'\n"
            "0755,0,0,'/nested/boot'\n"
            "0755,0,0,'/nested/boot/grub'\n"
            "0755,0,0,'/nested/tmp'\n"
            "0755,0,0,'/root'\n"
            "0755,0,0,'/src'\n"
            "0755,0,0,'/src/sub'");
  EXPECT_EQ(ReadOrDie(out_ / "symlinks.txt"), "");
  Manifest m = ParseBack();
  std::vector<std::string> regulars;
  for (const RegularEntry& e : m.regulars) regulars.emplace_back(m.Str(e.path));
  EXPECT_THAT(regulars, ::testing::ElementsAre("/boot/initrd.img-5.4.0-1-generic",
                                               "/boot/vmlinuz-5.4.0-1-generic", "/src/.gitignore",
                                               "/src/.ssh"));
  EXPECT_FALSE(stdfs::exists(out_ / "data/tmp"));
  EXPECT_FALSE(stdfs::exists(out_ / "data/root/.ssh"));
  EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(out_ / "data/src/fifo")));
}

std::string Decompress(const std::string& blob) {
  unsigned long long size = ZSTD_getFrameContentSize(blob.data(), blob.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  EXPECT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  std::string out(static_cast<size_t>(size), '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), blob.data(), blob.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(n);
  return out;
}

TEST_F(ImageWriterTest, CompressionFollowsSizeAndRatioRule) {
  const std::string zeros_64k(64 * 1024, '\0');
  const std::string text_16k = [] {
    std::string s;
    while (s.size() < 16 * 1024) s += "compressible text line\n";
    return s.substr(0, 16 * 1024);
  }();
  // Half random, half zeros: ratio about 2, so compressed.
  const std::string half_random = RandomBytes(32 * 1024, 1) + std::string(32 * 1024, '\0');
  // 90% random: ratio about 1.1, below 1.25, so not compressed.
  const std::string mostly_random = RandomBytes(58 * 1024, 2) + std::string(6 * 1024, 'a');
  File("/zeros", zeros_64k);
  File("/zeros-copy", zeros_64k);  // same content, another inode: one blob
  File("/exactly-16k", text_16k);
  File("/just-below-16k", text_16k.substr(0, 16 * 1024 - 1));
  File("/random", RandomBytes(100 * 1024, 3));
  File("/half-random", half_random);
  File("/mostly-random", mostly_random);
  File("/empty", "");

  BuildOptions options = Options();
  options.compress = true;
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  ASSERT_TRUE(summary.ok()) << summary.status();

  Manifest m = ParseBack();
  std::map<std::string, const RegularEntry*> by_path;
  for (const RegularEntry& e : m.regulars) by_path[std::string(m.Str(e.path))] = &e;
  std::map<std::string, bool> expected = {{"/zeros", true},          {"/zeros-copy", true},
                                          {"/exactly-16k", true},    {"/just-below-16k", false},
                                          {"/random", false},        {"/half-random", true},
                                          {"/mostly-random", false}, {"/empty", false}};
  ASSERT_EQ(by_path.size(), expected.size());
  std::set<std::string> expected_blobs;
  for (const auto& [path, compressed] : expected) {
    const RegularEntry& e = *by_path.at(path);
    EXPECT_EQ(e.compression == Compression::kZstd, compressed) << path;
    std::string content = ReadOrDie(Root(path));
    stdfs::path blob = out_ / "data.zst" / (crypto::ToHex(e.sha256) + ".zst");
    if (compressed) {
      expected_blobs.insert(blob.filename().string());
      std::string zst = ReadOrDie(blob);
      // The rule: at least 16 KiB and uncompressed / compressed >= 1.25.
      EXPECT_GE(content.size(), 16u * 1024) << path;
      EXPECT_GE(content.size() * 4, zst.size() * 5) << path;
      EXPECT_EQ(Decompress(zst), content) << path;
    }
    // data/ always has the plain copy, compressed or not.
    EXPECT_EQ(ReadOrDie(out_.string() + "/data" + path), content) << path;
  }
  std::set<std::string> blobs;
  for (const auto& entry : stdfs::directory_iterator(out_ / "data.zst")) {
    blobs.insert(entry.path().filename().string());
  }
  EXPECT_EQ(blobs, expected_blobs);  // no temp files or rejected blobs left behind
  EXPECT_EQ(summary->compressed_files, expected_blobs.size());

  absl::StatusOr<Metadata> md = ParseMetadataJwt(ReadOrDie(out_ / "metadata.jwt"));
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->compressed_rootfs_directory, "data.zst");
}

TEST_F(ImageWriterTest, PersistentsFileRawAndQuoted) {
  File("/a", "a");
  stdfs::path persistents = tmp_->path() / "persist.list";
  ASSERT_TRUE(
      fs::WriteFileAtomic(persistents, "/etc/hosts\n\n'/etc/net'\\''plan'\r\n  \n/home/it's here\n")
          .ok());
  BuildOptions options = Options();
  options.persistents_file = persistents;
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(ReadOrDie(out_ / "persistents.txt"),
            "'/etc/hosts'\n'/etc/net'\\''plan'\n'/home/it'\\''s here'");
  EXPECT_EQ(summary->persistents, 3u);
}

TEST_F(ImageWriterTest, BadPersistentsFileNamesFileAndLine) {
  File("/a", "a");
  stdfs::path persistents = tmp_->path() / "persist.list";
  ASSERT_TRUE(fs::WriteFileAtomic(persistents, "/etc/hosts\netc/relative\n").ok());
  BuildOptions options = Options();
  options.persistents_file = persistents;
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr(persistents.string() + ":2: "));
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("not absolute"));
}

TEST_F(ImageWriterTest, RefusesNonEmptyOutput) {
  File("/a", "a");
  ASSERT_EQ(::mkdir(out_.c_str(), 0755), 0);
  ASSERT_TRUE(fs::WriteFileAtomic(out_ / "old", "x").ok());
  absl::StatusOr<BuildSummary> summary = BuildImage(Options());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("not empty"));
}

TEST_F(ImageWriterTest, RefusesOutputInsideRootfs) {
  File("/a", "a");
  BuildOptions options = Options();
  options.out_dir = rootfs_ / "image";
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("inside the rootfs"));
  EXPECT_FALSE(stdfs::exists(options.out_dir));
}

TEST_F(ImageWriterTest, RefusesNewlineInName) {
  Dir("/etc");
  File("/etc/bad\nname", "x");
  absl::StatusOr<BuildSummary> summary = BuildImage(Options());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("newline"));
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("/etc/bad\nname"));
  // The partial output is cleared, so no half-built image can be served.
  EXPECT_TRUE(stdfs::is_empty(out_));
}

TEST_F(ImageWriterTest, RefusesKeyThatDoesNotMatchCertificate) {
  File("/a", "a");
  stdfs::path other_key = tmp_->path() / "other.key";
  stdfs::path other_cert = tmp_->path() / "other.pem";
  MakeKeyAndCert(other_key, other_cert);
  BuildOptions options = Options();
  options.key_pem = other_key;
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  EXPECT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("do not match"));
  EXPECT_TRUE(stdfs::is_empty(out_));
}

TEST_F(ImageWriterTest, MissingKeyFailsBeforeWalking) {
  File("/a", "a");
  BuildOptions options = Options();
  options.key_pem = tmp_->path() / "no-such.key";
  absl::StatusOr<BuildSummary> summary = BuildImage(options);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("no-such.key"));
  EXPECT_FALSE(stdfs::exists(out_));
}

TEST_F(ImageWriterTest, DeterministicOutput) {
  Dir("/d");
  for (int i = 30; i >= 0; --i) File(StrCat("/d/f", i), StrCat("content ", i));
  Symlink("/d/link", "f1");
  ASSERT_TRUE(BuildImage(Options()).ok());
  std::string first = ReadOrDie(out_ / "regulars.txt");
  stdfs::path second_out = tmp_->path() / "out2";
  BuildOptions options = Options();
  options.out_dir = second_out;
  ASSERT_TRUE(BuildImage(options).ok());
  EXPECT_EQ(ReadOrDie(second_out / "regulars.txt"), first);
  EXPECT_EQ(ReadOrDie(second_out / "dirs.txt"), ReadOrDie(out_ / "dirs.txt"));
  // Sorted bytewise within each directory.
  EXPECT_THAT(first, HasSubstr("'/d/f0',9,,\n"));
  EXPECT_LT(first.find("'/d/f0'"), first.find("'/d/f1'"));
  EXPECT_LT(first.find("'/d/f1'"), first.find("'/d/f10'"));
  EXPECT_LT(first.find("'/d/f19'"), first.find("'/d/f2'"));
}

}  // namespace
}  // namespace ota::image
