// PrepareClientUpdate (otaclient/update/client_update.h) on OTA images v1 built by the real
// builder, signed with the test PKI, served by a real nginx and fetched by the real CurlFetcher:
// the package taken from the otaclient release-package artifact (verified chain, staged, run
// once), the fall-back to the rootfs' release when the artifact has nothing for this client, and
// refusals of tampered blobs with reasons. Packages are small shell scripts that print their
// version, as the self-check asks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/image/client_package.h"
#include "common/image/v1/writer.h"
#include "otaclient/update/client_update.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::update {
namespace {

namespace stdfs = std::filesystem;
using ::testing::HasSubstr;

const testing::TestPki& Pki() {
  static const testing::TestPki pki = *testing::CachedTestPki("main");
  return pki;
}

std::string Script(const std::string& version) { return "#!/bin/sh\necho " + version + "\n"; }

void WriteFile(const stdfs::path& p, const std::string& content) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// A release directory as `ota-image add-otaclient-package` writes it: one otaclient-cpp package.
void AddPackage(const stdfs::path& dir, const std::string& version, const std::string& arch) {
  image::ClientPackage p;
  p.version = version;
  p.type = std::string(image::kCppPackageType);
  p.architecture = arch;
  p.filename = "otaclient-" + version + "-" + arch;
  const std::string binary = Script(version);
  p.size = binary.size();
  p.checksum_algorithm = "sha256";
  p.checksum_hex = crypto::ToHex(crypto::Sha256Of(binary));
  WriteFile(dir / p.filename, binary);
  ::chmod((dir / p.filename).c_str(), 0755);
  WriteFile(dir / "manifest.json", image::ClientReleaseManifestJson(p, "2026-12-06T00:00:00Z"));
}

class ClientUpdatePrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("ota-client-update-prepare-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_.emplace(std::move(*tmp));
    WriteFile(tmp_->path() / "rootfs/etc/hostname", "ecu\n");
    stdfs::create_directories(tmp_->path() / "certs");
    stdfs::copy_file(Pki().path("root.pem"), tmp_->path() / "certs/1.root.pem");
    WriteFile(tmp_->path() / "chain.pem", Pki().sign_pem + Pki().interm_pem);
    stdfs::create_directories(tmp_->path() / "www");
    auto nginx = ota::testing::NginxServer::Start(tmp_->path() / "www");
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = std::move(*nginx);
    options_.certs_dir = tmp_->path() / "certs";
    options_.staging_dir = tmp_->path() / "staging";
    options_.running_version = "1.0.0";
    options_.machine = "x86_64";
    options_.fetcher.max_attempts = 1;
  }

  // Image `name` from rootfs_ (plus `rootfs_release`, copied to its /opt/ota/otaclient_release)
  // with `artifact` (a release dir) as its release-package artifact.
  void Build(const std::string& name, const stdfs::path& artifact,
             const stdfs::path& rootfs_release = {}) {
    const stdfs::path rootfs = tmp_->path() / ("rootfs-" + name);
    stdfs::copy(tmp_->path() / "rootfs", rootfs, stdfs::copy_options::recursive);
    if (!rootfs_release.empty()) {
      stdfs::create_directories(rootfs / "opt/ota");
      stdfs::copy(rootfs_release, rootfs / "opt/ota/otaclient_release",
                  stdfs::copy_options::recursive);
    }
    image::v1::V1BuildOptions o;
    o.rootfs = rootfs;
    o.out_dir = tmp_->path() / "www" / name;
    o.key_pem = Pki().path("sign.key");
    o.cert_pem = tmp_->path() / "chain.pem";
    o.otaclient_release = artifact;
    auto built = image::v1::BuildV1Image(o);
    ASSERT_TRUE(built.ok()) << built.status();
  }

  absl::StatusOr<std::optional<StagedClient>> Prepare(const std::string& name) {
    UpdateRequestParams r;
    r.version = "x";
    r.url = nginx_->HttpUrl("/" + name + "/");
    r.request_id = "test";
    const FetcherFactory factory = [](const http::FetcherConfig& c) {
      return http::CreateCurlFetcher(c);
    };
    return PrepareClientUpdate(r, options_, factory, cancel_);
  }

  stdfs::path Blob(const std::string& name, const std::string& hex) {
    return tmp_->path() / "www" / name / "blobs/sha256" / hex;
  }

  std::optional<fs::TempDir> tmp_;
  std::unique_ptr<ota::testing::NginxServer> nginx_;
  ClientUpdateOptions options_;
  http::CancelFlag cancel_{false};
};

TEST_F(ClientUpdatePrepareTest, PackageFromTheArtifactOnly) {
  const stdfs::path release = tmp_->path() / "release";
  AddPackage(release, "2.0.0", "x86_64");
  Build("img", release);
  auto staged = Prepare("img");
  ASSERT_TRUE(staged.ok()) << staged.status();
  ASSERT_TRUE(staged->has_value());
  EXPECT_EQ((*staged)->version, "2.0.0");
  EXPECT_EQ((*staged)->binary, options_.staging_dir / "otaclient-2.0.0");
  auto content = fs::ReadFile((*staged)->binary);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, Script("2.0.0"));

  // The same version running: nothing to do.
  options_.running_version = "2.0.0";
  auto same = Prepare("img");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(same->has_value());
}

TEST_F(ClientUpdatePrepareTest, ArtifactWithoutOurCpuFallsBackToTheRootfs) {
  const stdfs::path artifact = tmp_->path() / "artifact";
  AddPackage(artifact, "2.0.0", "arm64");
  const stdfs::path in_rootfs = tmp_->path() / "in-rootfs";
  AddPackage(in_rootfs, "3.0.0", "x86_64");
  Build("both", artifact, in_rootfs);
  auto staged = Prepare("both");
  ASSERT_TRUE(staged.ok()) << staged.status();
  ASSERT_TRUE(staged->has_value());
  EXPECT_EQ((*staged)->version, "3.0.0");

  // Nothing in the rootfs either: refused, naming both places.
  Build("arm-only", artifact);
  auto refused = Prepare("arm-only");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("release-package artifact: the image has no otaclient-cpp package for "
                        "this CPU (x86_64), only for: arm64; its rootfs: no "
                        "/opt/ota/otaclient_release/manifest.json"));
}

TEST_F(ClientUpdatePrepareTest, TamperedArtifactBlobsAreRefused) {
  const stdfs::path release = tmp_->path() / "release";
  AddPackage(release, "2.0.0", "x86_64");
  Build("img", release);
  const std::string layer_hex = crypto::ToHex(crypto::Sha256Of(Script("2.0.0")));
  // The package: same size, other bytes.
  WriteFile(Blob("img", layer_hex), Script("6.6.6"));
  auto bad_layer = Prepare("img");
  ASSERT_FALSE(bad_layer.ok());
  EXPECT_THAT(std::string(bad_layer.status().message()), HasSubstr(layer_hex));
  EXPECT_FALSE(stdfs::exists(options_.staging_dir / "otaclient-2.0.0"));
  EXPECT_FALSE(stdfs::exists(options_.staging_dir / "otaclient-6.6.6"));

  // manifest.json (the artifact's config) changed to name the other script: its digest no
  // longer matches the package manifest's config descriptor.
  Build("img2", release);
  auto text = fs::ReadFile(release / "manifest.json");
  ASSERT_TRUE(text.ok());
  const std::string config_hex = crypto::ToHex(crypto::Sha256Of(*text));
  std::string changed = *text;
  changed.replace(changed.find(layer_hex), 64, std::string(64, 'f'));
  WriteFile(Blob("img2", config_hex), changed);
  auto bad_config = Prepare("img2");
  ASSERT_FALSE(bad_config.ok());
  EXPECT_THAT(std::string(bad_config.status().message()), HasSubstr("manifest.json"));
}

}  // namespace
}  // namespace ota::update
