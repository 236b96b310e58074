// LoadImage against real parts: images written to a temp dir, served over file:// by the real
// CurlFetcher, signed with a PKI made by deploy/gen-certs.sh, checked with a real CaStore.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/image/legacy/loader.h"
#include "common/image/legacy/metadata.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::image {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

testing::TestPki MustPki(std::string_view name, bool expired = false) {
  auto made = testing::CachedTestPki(name, expired);
  if (!made.ok()) {
    std::fprintf(stderr, "gen-certs.sh failed: %s\n", made.status().ToString().c_str());
    std::abort();
  }
  return std::move(*made);
}
const testing::TestPki& Pki() {
  static const testing::TestPki pki = MustPki("main");
  return pki;
}
const testing::TestPki& OtherPki() {
  static const testing::TestPki pki = MustPki("other");
  return pki;
}
const testing::TestPki& ExpiredPki() {
  static const testing::TestPki pki = MustPki("expired", /*expired=*/true);
  return pki;
}

fs::TempDir MustTempDir(std::string_view prefix) {
  auto dir = fs::TempDir::Create(prefix);
  if (!dir.ok()) {
    std::fprintf(stderr, "%s\n", dir.status().ToString().c_str());
    std::abort();
  }
  return std::move(*dir);
}

constexpr char kHostsContent[] = "127.0.0.1 localhost\n";  // 20 bytes
constexpr char kToolContent[] = "tool\n";                  // 5 bytes

std::string HexOf(std::string_view content) { return crypto::ToHex(crypto::Sha256Of(content)); }

// The list files of a small image, in tier4's formats (a path with a quote, setuid, a hard-link
// pair with inode and zst compression, a legacy 7-field line).
struct ImageFiles {
  std::string dirs = "0755,0,0,'/etc'\n1777,0,0,'/tmp'\n0755,0,0,'/usr/bin'";
  std::string symlinks = "0777,0,0,'/bin','usr/bin'";
  std::string regulars = "0644,0,0,1," + HexOf(kHostsContent) + ",'/etc/hosts',20\n" +
                         "4755,0,0,2," + HexOf(kToolContent) + ",'/usr/bin/it'\\''s',5,1234,zst\n" +
                         "4755,0,0,2," + HexOf(kToolContent) + ",'/usr/bin/tool',5,1234,zst";
  std::string persistents = "'/etc/hosts'\n'/etc/hostname'";
};

class ImageLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::FetcherConfig config;
    config.max_attempts = 2;
    config.backoff_initial_ms = 1;
    config.backoff_max_ms = 2;
    fetcher_ = http::CreateCurlFetcher(config);
    ASSERT_NE(fetcher_, nullptr);
    auto store = crypto::CaStore::LoadDir(Pki().certs_dir());
    ASSERT_TRUE(store.ok()) << store.status();
    ca_ = std::make_unique<crypto::CaStore>(std::move(*store));
    options_.ca_store = ca_.get();
  }

  // Plain writes: test files need no fsync (WriteFileAtomic's durability costs ~50 ms a file).
  void Put(std::string_view name, std::string_view content) {
    std::ofstream out(image_.path() / name, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    ASSERT_TRUE(out.good()) << name;
  }

  MetadataPayload PayloadFor(const ImageFiles& files, std::string_view cert_pem) const {
    MetadataPayload p;
    p.directory = {dirs_name_, crypto::Sha256Of(files.dirs)};
    p.symboliclink = {"symlinks.txt", crypto::Sha256Of(files.symlinks)};
    p.regular = {regulars_name_, crypto::Sha256Of(files.regulars)};
    p.persistent = {"persistents.txt", crypto::Sha256Of(files.persistents)};
    p.certificate = {cert_name_, crypto::Sha256Of(cert_pem)};
    p.rootfs_directory = "data";
    p.compressed_rootfs_directory = "data.zst";
    p.total_regular_size = 30;
    return p;
  }

  // Writes every file of the image and a metadata.jwt signed with `key_pem`.
  void WriteImage(const ImageFiles& files, std::string_view cert_pem, std::string_view key_pem) {
    Put(dirs_name_, files.dirs);
    Put("symlinks.txt", files.symlinks);
    Put(regulars_name_, files.regulars);
    Put("persistents.txt", files.persistents);
    Put(cert_name_, cert_pem);
    auto jwt = SignMetadataJwt(PayloadFor(files, cert_pem), key_pem);
    ASSERT_TRUE(jwt.ok()) << jwt.status();
    Put("metadata.jwt", *jwt);
  }
  void WriteGoodImage() { WriteImage(ImageFiles{}, Pki().sign_pem, Pki().sign_key); }

  std::string BaseUrl() const { return "file://" + image_.path().string(); }
  absl::StatusOr<LoadedImage> Load() { return LoadImage(*fetcher_, BaseUrl(), options_); }

  fs::TempDir image_ = MustTempDir("ota-loader-image");
  fs::TempDir empty_certs_ = MustTempDir("ota-loader-certs");
  std::unique_ptr<http::Fetcher> fetcher_;
  std::unique_ptr<crypto::CaStore> ca_;
  LoadOptions options_;
  std::string dirs_name_ = "dirs.txt";
  std::string regulars_name_ = "regulars.txt";
  std::string cert_name_ = "sign.pem";
};

TEST_F(ImageLoaderTest, LoadsAVerifiedImageIntoTheManifest) {
  WriteGoodImage();
  auto image = Load();
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->base_url, BaseUrl());
  const Metadata& md = image->metadata;
  EXPECT_EQ(md.version, 1);
  EXPECT_EQ(md.rootfs_directory, "data");
  EXPECT_EQ(md.compressed_rootfs_directory, "data.zst");
  EXPECT_EQ(md.total_regular_size, 30u);
  EXPECT_EQ(md.certificate.file, "sign.pem");

  const Manifest& m = image->manifest;
  ASSERT_EQ(m.dirs.size(), 3u);
  EXPECT_EQ(m.Str(m.dirs[1].path), "/tmp");
  EXPECT_EQ(m.dirs[1].mode, 01777u);
  ASSERT_EQ(m.symlinks.size(), 1u);
  EXPECT_EQ(m.Str(m.symlinks[0].path), "/bin");
  EXPECT_EQ(m.Str(m.symlinks[0].target), "usr/bin");
  ASSERT_EQ(m.regulars.size(), 3u);
  EXPECT_EQ(m.Str(m.regulars[0].path), "/etc/hosts");
  EXPECT_EQ(m.regulars[0].mode, 0644u);
  EXPECT_EQ(crypto::ToHex(m.regulars[0].sha256), HexOf(kHostsContent));
  EXPECT_TRUE(m.regulars[0].has_size);
  EXPECT_EQ(m.regulars[0].size, 20u);
  EXPECT_EQ(m.Str(m.regulars[1].path), "/usr/bin/it's");
  EXPECT_EQ(m.regulars[1].mode, 04755u);
  EXPECT_EQ(m.regulars[1].nlink, 2u);
  EXPECT_TRUE(m.regulars[1].has_inode);
  EXPECT_EQ(m.regulars[1].inode, 1234u);
  EXPECT_EQ(m.regulars[1].compression, Compression::kZstd);
  ASSERT_EQ(m.persistents.size(), 2u);
  EXPECT_EQ(m.Str(m.persistents[1]), "/etc/hostname");
}

TEST_F(ImageLoaderTest, BaseUrlWithTrailingSlashWorks) {
  WriteGoodImage();
  auto image = LoadImage(*fetcher_, BaseUrl() + "/", options_);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->manifest.regulars.size(), 3u);
}

TEST_F(ImageLoaderTest, FileNamesArePercentEncodedInUrls) {
  // "regulars list+1.txt" must be requested as regulars%20list%2B1.txt (curl decodes file://).
  dirs_name_ = "dirs:v2.txt";
  regulars_name_ = "regulars list+1.txt";
  cert_name_ = "sign%cert.pem";
  WriteGoodImage();
  auto image = Load();
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->metadata.regular.file, "regulars list+1.txt");
  EXPECT_EQ(image->manifest.regulars.size(), 3u);
}

TEST_F(ImageLoaderTest, NoCaInstalledIsRefused) {
  WriteGoodImage();
  auto empty = crypto::CaStore::LoadDir(empty_certs_.path());
  ASSERT_TRUE(empty.ok());
  options_.ca_store = &*empty;
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_EQ(st.message(), "no CA certificates installed in " + empty_certs_.path().string() +
                              "; refusing unverified image");

  options_.ca_store = nullptr;
  st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("refusing unverified image"));
}

TEST_F(ImageLoaderTest, DevModeSkipsTheChainButStillChecksTheSignature) {
  options_.ca_store = nullptr;
  options_.allow_unverified_dev = true;
  // A self-consistent image from a PKI nobody installed: accepted, loudly, in dev mode only.
  WriteImage(ImageFiles{}, OtherPki().sign_pem, OtherPki().sign_key);
  auto image = Load();
  ASSERT_TRUE(image.ok()) << image.status();
  // A signature that does not match the image's own certificate is still refused.
  WriteImage(ImageFiles{}, Pki().sign_pem, OtherPki().sign_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("metadata.jwt"), HasSubstr("signature does not verify")));
}

TEST_F(ImageLoaderTest, DevModeDoesNotOverrideAnInstalledCa) {
  options_.allow_unverified_dev = true;  // CA installed: the chain is checked regardless
  WriteImage(ImageFiles{}, OtherPki().sign_pem, OtherPki().sign_key);
  EXPECT_EQ(Load().status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ImageLoaderTest, CertificateThatDoesNotChainIsRefused) {
  WriteImage(ImageFiles{}, OtherPki().sign_pem, OtherPki().sign_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("sign.pem"), HasSubstr("group '1'"),
                    HasSubstr("unable to get local issuer certificate")));
}

TEST_F(ImageLoaderTest, ExpiredCertificateIsRefused) {
  auto store = crypto::CaStore::LoadDir(ExpiredPki().certs_dir());
  ASSERT_TRUE(store.ok());
  options_.ca_store = &*store;
  WriteImage(ImageFiles{}, ExpiredPki().sign_pem, ExpiredPki().sign_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("certificate has expired"));
}

TEST_F(ImageLoaderTest, ValidityIsCheckedAtOptionsNow) {
  WriteGoodImage();
  options_.now = std::time(nullptr) + 20L * 365 * 24 * 3600;  // past the 10-year validity
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("expired"));
}

TEST_F(ImageLoaderTest, SignatureByAnotherKeyIsRefused) {
  WriteImage(ImageFiles{}, Pki().sign_pem, Pki().interm_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("metadata.jwt"), HasSubstr("signature does not verify")));
}

TEST_F(ImageLoaderTest, ForgedPayloadWithOldSignatureIsRefused) {
  // The attack: swap regulars.txt and the hash in the payload, keep the original signature.
  WriteGoodImage();
  auto original = fs::ReadFile(image_.path() / "metadata.jwt");
  ASSERT_TRUE(original.ok());
  auto md = ParseMetadataJwt(*original);
  ASSERT_TRUE(md.ok());
  ImageFiles evil;
  evil.regulars = "4755,0,0,1," + HexOf("evil") + ",'/usr/bin/sudo',4";
  Put("regulars.txt", evil.regulars);
  const std::string forged =
      Base64UrlEncode(R"({"alg": "ES256"})") + "." +
      Base64UrlEncode(SerializePayloadJson(PayloadFor(evil, Pki().sign_pem))) + "." +
      Base64UrlEncode(md->signature);
  Put("metadata.jwt", forged);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("signature does not verify"));
}

TEST_F(ImageLoaderTest, ListFileChangedAfterSigningIsDataLoss) {
  WriteGoodImage();
  ImageFiles files;
  Put("regulars.txt", files.regulars + "\n0644,0,0,1," + HexOf("x") + ",'/etc/extra',1");
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("regulars.txt"));
}

TEST_F(ImageLoaderTest, CertificateSwappedAfterSigningIsDataLoss) {
  WriteGoodImage();
  Put("sign.pem", OtherPki().sign_pem);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("sign.pem"));
}

TEST_F(ImageLoaderTest, MalformedMetadataIsInvalidArgument) {
  WriteGoodImage();
  Put("metadata.jwt", "this is not a jwt");
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), AllOf(HasSubstr("metadata.jwt"), HasSubstr("three")));
}

TEST_F(ImageLoaderTest, MissingFilesAreNotFoundNamingTheFile) {
  WriteGoodImage();
  ASSERT_TRUE(std::filesystem::remove(image_.path() / "persistents.txt"));
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("persistents.txt"));

  ASSERT_TRUE(std::filesystem::remove(image_.path() / "metadata.jwt"));
  st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("metadata.jwt"));
}

TEST_F(ImageLoaderTest, MalformedSignedListLineNamesFileAndLine) {
  ImageFiles files;
  files.regulars = "0644,0,0,1," + HexOf(kHostsContent) + ",'/etc/hosts',20\n" +
                   "0644,0,0,1,nothex,'/etc/bad',1";
  WriteImage(files, Pki().sign_pem, Pki().sign_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("regulars.txt:2"));
}

TEST_F(ImageLoaderTest, PathEscapingTheRootIsRejected) {
  ImageFiles files;
  files.dirs = "0755,0,0,'/etc/../../escape'";
  WriteImage(files, Pki().sign_pem, Pki().sign_key);
  absl::Status st = Load().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("dirs.txt:1"));
}

}  // namespace
}  // namespace ota::image
