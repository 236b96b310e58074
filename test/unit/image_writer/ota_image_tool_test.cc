// The ota-image binary as a real process: build an image, verify it from a directory and over
// real nginx (HTTP and HTTPS), and catch every kind of damage.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "test/lib/nginx/nginx_fixture.h"

extern char** environ;

namespace ota::image {
namespace {

namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the tool with `args`, stdout/stderr captured into files under `scratch`.
RunResult RunTool(const stdfs::path& scratch, const std::vector<std::string>& args) {
  RunResult result;
  const stdfs::path out_file = scratch / "stdout";
  const stdfs::path err_file = scratch / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_storage = {OTA_IMAGE_BIN};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, OTA_IMAGE_BIN, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "spawn " << OTA_IMAGE_BIN;
  if (rc != 0) return result;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = fs::ReadFile(out_file).value_or("");
  result.err = fs::ReadFile(err_file).value_or("");
  return result;
}

std::string Describe(const RunResult& r) {
  return StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

class OtaImageToolTest : public ::testing::Test {
 protected:
  // One PKI and one built image for the whole suite; each test damages only its own copy.
  static void SetUpTestSuite() {
    absl::StatusOr<fs::TempDir> dir = fs::TempDir::Create("ota_image_tool_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    suite_dir_.emplace(std::move(*dir));
    const stdfs::path pki = suite_dir_->path() / "pki";
    std::string cmd = StrCat(OTA_SOURCE_DIR, "/deploy/gen-certs.sh ", pki.string(), " >/dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    // An unrelated CA group: a valid CA that did not sign the image's certificate.
    const stdfs::path other = suite_dir_->path() / "other-pki";
    cmd = StrCat(OTA_SOURCE_DIR, "/deploy/gen-certs.sh ", other.string(), " >/dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() { suite_dir_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(suite_dir_.has_value());
    absl::StatusOr<fs::TempDir> dir = fs::TempDir::Create("ota_image_tool_case");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_.emplace(std::move(*dir));
    www_ = tmp_->path() / "www";
    image_ = www_ / "img";
    rootfs_ = tmp_->path() / "rootfs";
    ASSERT_EQ(::mkdir(www_.c_str(), 0755), 0);
    MakeRootfs();
  }

  stdfs::path Pki(const std::string& name) const { return suite_dir_->path() / "pki" / name; }
  stdfs::path Certs() const { return Pki("certs"); }

  void Write(const std::string& path, const std::string& content) {
    ASSERT_TRUE(fs::WriteFileAtomic(rootfs_.string() + path, content, 0644).ok()) << path;
  }

  void MakeRootfs() {
    for (const char* dir : {"", "/etc", "/usr", "/usr/bin", "/home", "/home/it's here"}) {
      ASSERT_EQ(::mkdir((rootfs_.string() + dir).c_str(), 0755), 0) << dir;
    }
    Write("/etc/hosts", "127.0.0.1 localhost\n");
    Write("/a:b:c", "colons\n");
    Write("/home/it's here/100% a+b,c'", "nasty name\n");
    Write("/usr/bin/big", std::string(200 * 1024, 'z'));
    Write("/usr/bin/big-copy", std::string(200 * 1024, 'z'));
    Write("/empty", "");
    ASSERT_EQ(::symlink("usr/bin", (rootfs_ / "bin").c_str()), 0);
    ASSERT_EQ(::symlink("/nowhere", (rootfs_ / "dangling").c_str()), 0);
  }

  RunResult Build(bool compress = true) {
    std::vector<std::string> args = {"build",
                                     "--rootfs",
                                     rootfs_.string(),
                                     "--out",
                                     image_.string(),
                                     "--key",
                                     Pki("sign.key").string(),
                                     "--cert",
                                     Pki("sign.pem").string()};
    if (compress) args.push_back("--compress");
    return RunTool(tmp_->path(), args);
  }

  RunResult Verify(const std::string& image, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"verify", "--image", image, "--certs", Certs().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTool(tmp_->path(), args);
  }

  static std::optional<fs::TempDir> suite_dir_;
  std::optional<fs::TempDir> tmp_;
  stdfs::path www_, image_, rootfs_;
};

std::optional<fs::TempDir> OtaImageToolTest::suite_dir_;

TEST_F(OtaImageToolTest, BuildThenVerifyDirectory) {
  RunResult build = Build();
  ASSERT_EQ(build.exit_code, 0) << Describe(build);
  EXPECT_THAT(build.out, HasSubstr("6 regular files"));
  EXPECT_THAT(build.out, HasSubstr("1 compressed blobs"));
  for (const char* name : {"metadata.jwt", "sign.pem", "dirs.txt", "symlinks.txt", "regulars.txt",
                           "persistents.txt", "total_regular_size.txt"}) {
    EXPECT_TRUE(stdfs::is_regular_file(image_ / name)) << name;
  }

  RunResult verify = Verify(image_.string());
  ASSERT_EQ(verify.exit_code, 0) << Describe(verify);
  EXPECT_THAT(verify.out, HasSubstr("verified OTA image file://"));
  EXPECT_THAT(verify.out, HasSubstr("6 regular files"));
  EXPECT_THAT(verify.out, HasSubstr("2 from compressed blobs"));
  // Five plain files plus one blob shared by the two identical big files.
  EXPECT_THAT(verify.out, HasSubstr("5 blobs present and matching"));
}

TEST_F(OtaImageToolTest, VerifyOverNginxHttpAndHttps) {
  ASSERT_EQ(Build().exit_code, 0);
  absl::StatusOr<std::unique_ptr<testing::NginxServer>> nginx = testing::NginxServer::Start(www_);
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  RunResult http = Verify((*nginx)->HttpUrl("/img"));
  EXPECT_EQ(http.exit_code, 0) << Describe(http);
  // A trailing slash on the base URL is harmless.
  RunResult http_slash = Verify((*nginx)->HttpUrl("/img/"));
  EXPECT_EQ(http_slash.exit_code, 0) << Describe(http_slash);
  RunResult https =
      Verify((*nginx)->HttpsUrl("/img"), {"--ca-bundle", (*nginx)->ca_pem().string()});
  EXPECT_EQ(https.exit_code, 0) << Describe(https);

  // The percent-encoded names really went over the wire.
  absl::StatusOr<std::vector<testing::AccessLogEntry>> log = (*nginx)->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  bool saw_colons = false, saw_nasty = false;
  for (const testing::AccessLogEntry& entry : *log) {
    if (entry.target == "/img/data/a%3Ab%3Ac" && entry.status == 200) saw_colons = true;
    if (entry.target == "/img/data/home/it%27s%20here/100%25%20a%2Bb%2Cc%27" &&
        entry.status == 200) {
      saw_nasty = true;
    }
  }
  EXPECT_TRUE(saw_colons);
  EXPECT_TRUE(saw_nasty);

  // HTTPS against a CA that did not sign the server: refused.
  RunResult wrong_ca =
      Verify((*nginx)->HttpsUrl("/img"), {"--ca-bundle", (*nginx)->wrong_ca_pem().string()});
  EXPECT_EQ(wrong_ca.exit_code, 1) << Describe(wrong_ca);
  ASSERT_TRUE((*nginx)->Stop().ok());
}

TEST_F(OtaImageToolTest, DetectsCorruptMissingAndTruncatedBlobs) {
  ASSERT_EQ(Build().exit_code, 0);
  ASSERT_TRUE(fs::WriteFileAtomic(image_ / "data/a:b:c", "COLONS\n").ok());       // same size
  ASSERT_TRUE(fs::WriteFileAtomic(image_ / "data/etc/hosts", "127.0.0.1").ok());  // truncated
  ASSERT_EQ(::unlink((image_ / "data/empty").c_str()), 0);
  for (const auto& entry : stdfs::directory_iterator(image_ / "data.zst")) {
    ASSERT_TRUE(stdfs::remove(entry.path()));
  }
  RunResult verify = Verify(image_.string());
  EXPECT_EQ(verify.exit_code, 1) << Describe(verify);
  EXPECT_THAT(verify.err, HasSubstr("blob of /a:b:c"));
  EXPECT_THAT(verify.err, HasSubstr("blob of /etc/hosts"));
  EXPECT_THAT(verify.err, HasSubstr("blob of /empty"));
  EXPECT_THAT(verify.err, HasSubstr(".zst"));
  EXPECT_THAT(verify.err, HasSubstr("FAILED: 4 of 5 blobs"));
  EXPECT_THAT(verify.out, Not(HasSubstr("verified")));

  // An empty file that is not empty on the server.
  ASSERT_TRUE(fs::WriteFileAtomic(image_ / "data/empty", "x").ok());
  RunResult not_empty = Verify(image_.string());
  EXPECT_EQ(not_empty.exit_code, 1) << Describe(not_empty);
  EXPECT_THAT(not_empty.err, HasSubstr("blob of /empty"));
}

TEST_F(OtaImageToolTest, DetectsTamperedListFile) {
  ASSERT_EQ(Build(false).exit_code, 0);
  std::string regulars = fs::ReadFile(image_ / "regulars.txt").value();
  regulars.replace(0, 4, "4755");  // someone makes a file setuid
  ASSERT_TRUE(fs::WriteFileAtomic(image_ / "regulars.txt", regulars).ok());
  RunResult verify = Verify(image_.string());
  EXPECT_EQ(verify.exit_code, 1) << Describe(verify);
  EXPECT_THAT(verify.err, HasSubstr("regulars.txt"));
  EXPECT_THAT(verify.err, HasSubstr("sha256"));
}

TEST_F(OtaImageToolTest, RefusesUntrustedCertificate) {
  ASSERT_EQ(Build(false).exit_code, 0);
  RunResult verify = RunTool(tmp_->path(), {"verify", "--image", image_.string(), "--certs",
                                            (suite_dir_->path() / "other-pki" / "certs").string()});
  EXPECT_EQ(verify.exit_code, 1) << Describe(verify);
  EXPECT_THAT(verify.err, HasSubstr("sign.pem"));

  const stdfs::path no_certs = tmp_->path() / "no-certs";
  ASSERT_EQ(::mkdir(no_certs.c_str(), 0755), 0);
  RunResult empty =
      RunTool(tmp_->path(), {"verify", "--image", image_.string(), "--certs", no_certs.string()});
  EXPECT_EQ(empty.exit_code, 1) << Describe(empty);
  EXPECT_THAT(empty.err, HasSubstr("no CA groups"));
}

// OTA image v1 through the tool: build --format v1 (ECU ids, an x5c chain), verify detects the
// format and rebuilds every content, damage and a foreign root are caught, and convert turns the
// legacy image into a v1 image that verifies.
TEST_F(OtaImageToolTest, V1BuildVerifyAndConvert) {
  // A content stored as a plain blob (random: no compression, too big for a bundle).
  std::string random(100 * 1024, '\0');
  uint32_t x = 12345;
  for (char& c : random) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  Write("/usr/bin/random", random);
  const std::string chain = (tmp_->path() / "chain.pem").string();
  ASSERT_TRUE(fs::WriteFileAtomic(chain, fs::ReadFile(Pki("sign.pem")).value() +
                                             fs::ReadFile(Pki("interm.pem")).value())
                  .ok());
  const stdfs::path v1 = www_ / "v1";
  RunResult build = RunTool(
      tmp_->path(), {"build", "--format", "v1", "--rootfs", rootfs_.string(), "--out", v1.string(),
                     "--key", Pki("sign.key").string(), "--cert", chain, "--ecu-ids", "main,sub"});
  ASSERT_EQ(build.exit_code, 0) << Describe(build);
  EXPECT_THAT(build.out, HasSubstr("built OTA image v1"));
  EXPECT_THAT(build.out, HasSubstr("7 regular files"));
  for (const char* name : {"oci-layout", "index.json", "index.jwt", "blobs/sha256"}) {
    EXPECT_TRUE(stdfs::exists(v1 / name)) << name;
  }

  RunResult verify = Verify(v1.string(), {"--ecu-id", "sub"});
  ASSERT_EQ(verify.exit_code, 0) << Describe(verify);
  EXPECT_THAT(verify.out, HasSubstr("verified OTA image v1"));
  EXPECT_THAT(verify.out, HasSubstr("for ECU sub (dev)"));
  EXPECT_THAT(verify.out, HasSubstr("7 regular files"));
  // No payload for this ECU / release key.
  RunResult nobody = Verify(v1.string(), {"--ecu-id", "nobody"});
  EXPECT_EQ(nobody.exit_code, 1) << Describe(nobody);
  EXPECT_THAT(nobody.err, HasSubstr("nobody"));
  RunResult prd = Verify(v1.string(), {"--ecu-id", "main", "--release-key", "prd"});
  EXPECT_EQ(prd.exit_code, 1) << Describe(prd);
  // Another root: refused, naming the chain problem.
  RunResult foreign = RunTool(
      tmp_->path(), {"verify", "--image", v1.string(), "--certs",
                     (suite_dir_->path() / "other-pki" / "certs").string(), "--ecu-id", "main"});
  EXPECT_EQ(foreign.exit_code, 1) << Describe(foreign);
  EXPECT_THAT(foreign.err, HasSubstr("not trusted by any root"));

  // A damaged resource blob (same size, one byte changed) fails verify, naming it.
  std::string blob_name;
  for (const auto& entry : stdfs::directory_iterator(v1 / "blobs/sha256")) {
    if (entry.file_size() == random.size()) blob_name = entry.path().filename();
  }
  ASSERT_FALSE(blob_name.empty()) << "/usr/bin/random is not a plain blob";
  std::string damaged = random;
  damaged[500] ^= 1;
  ASSERT_TRUE(fs::WriteFileAtomic(v1 / "blobs/sha256" / blob_name, damaged).ok());
  RunResult bad = Verify(v1.string(), {"--ecu-id", "main"});
  EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr(blob_name));
  EXPECT_THAT(bad.out, Not(HasSubstr("verified")));

  // convert: the legacy image of the same tree becomes a v1 image that verifies.
  ASSERT_EQ(Build().exit_code, 0);
  const stdfs::path converted = www_ / "converted";
  RunResult convert = RunTool(
      tmp_->path(), {"convert", "--image", image_.string(), "--certs", Certs().string(), "--out",
                     converted.string(), "--key", Pki("sign.key").string(), "--cert", chain});
  ASSERT_EQ(convert.exit_code, 0) << Describe(convert);
  EXPECT_THAT(convert.out, HasSubstr("built OTA image v1"));
  RunResult converted_ok = Verify(converted.string());
  ASSERT_EQ(converted_ok.exit_code, 0) << Describe(converted_ok);
  EXPECT_THAT(converted_ok.out, HasSubstr("7 regular files"));
  // A v1 image is not converted again.
  RunResult again = RunTool(tmp_->path(), {"convert", "--image", v1.string(), "--certs",
                                           Certs().string(), "--out", (www_ / "again").string(),
                                           "--key", Pki("sign.key").string(), "--cert", chain});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("already an OTA image v1"));
}

TEST_F(OtaImageToolTest, V1OtaclientReleasePackageArtifact) {
  const std::string chain = (tmp_->path() / "chain.pem").string();
  ASSERT_TRUE(fs::WriteFileAtomic(chain, fs::ReadFile(Pki("sign.pem")).value() +
                                             fs::ReadFile(Pki("interm.pem")).value())
                  .ok());
  const stdfs::path release = tmp_->path() / "release";
  for (const std::string arch : {"x86_64", "arm64"}) {
    const stdfs::path binary = tmp_->path() / ("otaclient-" + arch);
    ASSERT_TRUE(fs::WriteFileAtomic(binary, "#!/bin/sh\n# " + arch + "\necho 7.0\n", 0755).ok());
    RunResult add = RunTool(tmp_->path(),
                            {"add-otaclient-package", "--release-dir", release.string(), "--binary",
                             binary.string(), "--version", "7.0", "--architecture", arch});
    ASSERT_EQ(add.exit_code, 0) << Describe(add);
  }
  EXPECT_FALSE(stdfs::exists(rootfs_ / "opt"));
  const stdfs::path v1 = www_ / "v1";
  RunResult build =
      RunTool(tmp_->path(), {"build", "--format", "v1", "--rootfs", rootfs_.string(), "--out",
                             v1.string(), "--key", Pki("sign.key").string(), "--cert", chain,
                             "--otaclient-release", release.string()});
  ASSERT_EQ(build.exit_code, 0) << Describe(build);
  // The index entry has exactly tier4's media and artifact types.
  const std::string index = fs::ReadFile(v1 / "index.json").value_or("");
  EXPECT_THAT(index, HasSubstr(R"("mediaType":"application/vnd.tier4.otaclient.release-package.)"
                               R"(manifest.v1+json","artifactType":"application/vnd.tier4.)"
                               R"(otaclient.release-package.v1")"));
  EXPECT_EQ(index.find("release-package.manifest.v1+json"),
            index.rfind("release-package.manifest.v1+json"));  // one entry
  RunResult verify = Verify(v1.string());
  ASSERT_EQ(verify.exit_code, 0) << Describe(verify);
  EXPECT_THAT(verify.out, HasSubstr("otaclient release package: 2 packages matching"));
  // A damaged layer blob fails verify, naming it.
  const std::string arm_hex =
      crypto::ToHex(crypto::Sha256Of(fs::ReadFile(tmp_->path() / "otaclient-arm64").value()));
  const stdfs::path arm_blob = v1 / "blobs/sha256" / arm_hex;
  std::string damaged = fs::ReadFile(arm_blob).value();
  damaged[3] ^= 1;
  ASSERT_TRUE(fs::WriteFileAtomic(arm_blob, damaged).ok());
  RunResult bad_layer = Verify(v1.string());
  EXPECT_EQ(bad_layer.exit_code, 1) << Describe(bad_layer);
  EXPECT_THAT(bad_layer.err, HasSubstr(arm_hex));

  // A release whose file is not what its manifest.json says: refused, naming both.
  ASSERT_TRUE(fs::WriteFileAtomic(release / "otaclient-7.0-x86_64", "#!/bin/sh\necho 6\n").ok());
  RunResult bad =
      RunTool(tmp_->path(), {"build", "--format", "v1", "--rootfs", rootfs_.string(), "--out",
                             (www_ / "bad").string(), "--key", Pki("sign.key").string(), "--cert",
                             chain, "--otaclient-release", release.string()});
  EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("manifest.json says"));
}

TEST_F(OtaImageToolTest, VerifyOfMissingImageFails) {
  RunResult verify = Verify((tmp_->path() / "nothing-here").string());
  EXPECT_EQ(verify.exit_code, 1) << Describe(verify);
  EXPECT_THAT(verify.err, HasSubstr("nothing-here"));
  ASSERT_EQ(::mkdir(image_.c_str(), 0755), 0);
  RunResult empty_dir = Verify(image_.string());
  EXPECT_EQ(empty_dir.exit_code, 1) << Describe(empty_dir);
  EXPECT_THAT(empty_dir.err, HasSubstr("metadata.jwt"));
}

TEST_F(OtaImageToolTest, BuildErrorsAreClear) {
  ASSERT_EQ(::mkdir(image_.c_str(), 0755), 0);
  ASSERT_TRUE(fs::WriteFileAtomic(image_ / "leftover", "x").ok());
  RunResult not_empty = Build();
  EXPECT_EQ(not_empty.exit_code, 1) << Describe(not_empty);
  EXPECT_THAT(not_empty.err, HasSubstr("not empty"));

  RunResult bad_rootfs =
      RunTool(tmp_->path(), {"build", "--rootfs", (tmp_->path() / "no-rootfs").string(), "--out",
                             (tmp_->path() / "out2").string(), "--key", Pki("sign.key").string(),
                             "--cert", Pki("sign.pem").string()});
  EXPECT_EQ(bad_rootfs.exit_code, 1) << Describe(bad_rootfs);
  EXPECT_THAT(bad_rootfs.err, HasSubstr("no-rootfs"));
}

TEST_F(OtaImageToolTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "missing command"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"build"}, "missing --rootfs"},
      {{"build", "--rootfs", "r", "--out", "o", "--key", "k"}, "missing --cert"},
      {{"build", "--rootfs"}, "--rootfs needs a value"},
      {{"build", "--rootfs="}, "--rootfs needs a non-empty value"},
      {{"build", "--bogus", "x"}, "unknown flag '--bogus'"},
      {{"build", "--compress=yes"}, "--compress takes no value"},
      {{"build", "--rootfs", "a", "--rootfs", "b"}, "--rootfs given twice"},
      {{"build", "stray"}, "unexpected argument 'stray'"},
      {{"verify", "--image", "x"}, "missing --certs"},
      {{"verify", "--compress"}, "unknown flag '--compress'"},
      {{"build", "--rootfs", "r", "--out", "o", "--key", "k", "--cert", "c", "--otaclient-release",
        "d"},
       "--otaclient-release needs --format v1"},
      {{"add-otaclient-package", "--binary", "b", "--version", "1"},
       "give one of --rootfs and --release-dir"},
      {{"add-otaclient-package", "--rootfs", "r", "--release-dir", "d", "--binary", "b",
        "--version", "1"},
       "give one of --rootfs and --release-dir"},
  };
  for (const Case& c : cases) {
    RunResult r = RunTool(tmp_->path(), c.args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(c.message)) << ::testing::PrintToString(c.args);
    EXPECT_THAT(r.err, HasSubstr("usage:"));
  }
  for (const std::vector<std::string>& help :
       {std::vector<std::string>{"--help"}, {"build", "--help"}, {"verify", "-h"}}) {
    RunResult r = RunTool(tmp_->path(), help);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("ota-image verify --image DIR|URL --certs DIR"));
    EXPECT_THAT(r.out, HasSubstr("--compress"));
  }
}

}  // namespace
}  // namespace ota::image
