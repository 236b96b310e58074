// The Jetson firmware package (firmware_package.h): YAML tables, selection, compat, payload
// paths, and verified copies out of a real directory tree with symlinks.
#include "otaclient/boot/firmware_package.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* kManifest = R"(format_version: 1
hardware_type: nvidia_jetson
hardware_series: ORIN
hardware_model: ORIN_AGX
firmware_spec:
  bsp_version: r35.4.1
  firmware_compat:
    board_id: "3701"
    board_sku: "0005"
    board_rev: A.0
    fab_id: "500"
    board_conf: cti-orin-agx-agx201-00
firmware_packages:
  - payload_name: bl_only_payload
    file_location: file:///opt/ota/firmware/bl_only_payload.Cap
    type: UEFI-CAPSULE
    digest: sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2
  - payload_name: BOOTAA64.efi
    file_location: file:///opt/ota/firmware/BOOTAA64.efi
    type: UEFI-BOOT-APP
    digest: SHA256:C3AB8FF13720E8AD9047DD39466B3C8974E592C2FA383D4A3960714CAEF0C4F2
  - payload_name: xusb_only_payload
    file_location: sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2
    type: BUP
    digest: sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2
unknown_key: ignored
)";

TEST(FirmwareManifest, ParsesTheUpstreamSample) {
  auto manifest = ParseFirmwareManifest(kManifest, "firmware_manifest.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->hardware_series, "ORIN");
  EXPECT_EQ(manifest->bsp_version, (BspVersion{35, 4, 1}));
  EXPECT_EQ(manifest->compat.board_id, "3701");
  EXPECT_EQ(manifest->compat.board_rev, "A.0");
  ASSERT_EQ(manifest->packages.size(), 3u);
  EXPECT_EQ(manifest->packages[0].type, PayloadType::kUefiCapsule);
  EXPECT_EQ(manifest->packages[1].type, PayloadType::kUefiBootApp);
  EXPECT_EQ(manifest->packages[1].digest_algorithm, "SHA256");
  EXPECT_EQ(manifest->packages[1].digest_hex,
            "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2");
  EXPECT_EQ(manifest->packages[2].type, PayloadType::kBup);
}

TEST(FirmwareManifest, RejectionTable) {
  struct Case {
    std::string yaml;
    std::string expect_in_message;
  };
  const std::string base = kManifest;
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string out = base;
    out.replace(out.find(from), from.size(), to);
    return out;
  };
  const Case cases[] = {
      {replace("nvidia_jetson", "raspberry"), "unsupported hardware type"},
      {replace("r35.4.1", "35.4"), "bsp_version"},
      {replace("type: UEFI-CAPSULE", "type: UEFI_CAPSULE"), "unknown payload type"},
      {replace("digest: sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2\n"
               "  - payload_name: BOOTAA64.efi",
               "digest: c3ab\n  - payload_name: BOOTAA64.efi"),
       "digest"},
      {replace("    board_conf: cti-orin-agx-agx201-00\n", ""), "firmware_compat"},
      {replace("firmware_packages:", "firmware_packagez:"), "firmware_packages"},
      {replace("format_version: 1", "format_version: 2"), "format_version"},
      {"[]", ""},
      {"", "empty"},
      {"a: [", "YAML"},
  };
  for (const Case& c : cases) {
    auto manifest = ParseFirmwareManifest(c.yaml, "m.yaml");
    ASSERT_FALSE(manifest.ok()) << c.yaml;
    EXPECT_EQ(manifest.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(manifest.status().message().find(c.expect_in_message), absl::string_view::npos)
        << manifest.status();
    EXPECT_NE(manifest.status().message().find("m.yaml"), absl::string_view::npos)
        << manifest.status();
  }
}

// A repeated key is not an error: the later value counts (as PyYAML, which the Python client's
// manifest reader uses, and as every config file of this project: common/config).
TEST(FirmwareManifest, RepeatedKeyTakesTheLaterValue) {
  std::string yaml = kManifest;
  const std::string from = "hardware_series: ORIN";
  yaml.replace(yaml.find(from), from.size(), "hardware_series: X\nhardware_series: ORIN");
  auto manifest = ParseFirmwareManifest(yaml, "m.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->hardware_series, "ORIN");
}

TEST(FirmwareUpdateRequest, Table) {
  auto request = ParseFirmwareUpdateRequest(
      "format_version: 1\nfirmware_list: [bl_only_payload, BOOTAA64.efi]\n", "u.yaml");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->firmware_list, (std::vector<std::string>{"bl_only_payload", "BOOTAA64.efi"}));
  EXPECT_TRUE(ParseFirmwareUpdateRequest("firmware_list: []\n", "u.yaml").ok());
  EXPECT_FALSE(ParseFirmwareUpdateRequest("format_version: 1\n", "u.yaml").ok());
  EXPECT_FALSE(ParseFirmwareUpdateRequest("firmware_list: bl\n", "u.yaml").ok());
  EXPECT_FALSE(ParseFirmwareUpdateRequest("firmware_list: [[a]]\n", "u.yaml").ok());
  EXPECT_FALSE(ParseFirmwareUpdateRequest(std::string("firmware_list: [a\0]\n", 19), "u").ok());
}

TEST(FirmwarePackage, SelectionAndCompat) {
  auto manifest = ParseFirmwareManifest(kManifest, "m");
  ASSERT_TRUE(manifest.ok());
  FirmwarePackageSet set{{{"bl_only_payload", "xusb_only_payload", "missing"}}, *manifest};
  auto capsules = set.Requested(PayloadType::kUefiCapsule);
  ASSERT_EQ(capsules.size(), 1u);
  EXPECT_EQ(capsules[0]->payload_name, "bl_only_payload");
  EXPECT_TRUE(set.Requested(PayloadType::kUefiBootApp).empty());  // not requested
  EXPECT_EQ(set.Requested(PayloadType::kBup).size(), 1u);

  const std::string tnspec = "3701-500-0005-A.0-1-0-cti-orin-agx-agx201-00-";
  EXPECT_TRUE(FirmwareCompatible(manifest->compat, tnspec));
  FirmwareCompat other = manifest->compat;
  other.board_rev = "L.0";
  EXPECT_FALSE(FirmwareCompatible(other, tnspec));
  EXPECT_FALSE(FirmwareCompatible(manifest->compat, ""));
}

TEST(FirmwarePackage, PayloadPaths) {
  FirmwarePackage p;
  p.payload_name = "x";
  p.file_location = "file:///opt/ota/firmware/x.Cap";
  EXPECT_EQ(*PayloadPathInImage(p), "opt/ota/firmware/x.Cap");
  p.file_location = "sha256:abcd";
  EXPECT_EQ(PayloadPathInImage(p).status().code(), absl::StatusCode::kUnimplemented);
  p.file_location = "http://server/x.Cap";
  EXPECT_EQ(PayloadPathInImage(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.file_location = "file://relative/x";
  EXPECT_EQ(PayloadPathInImage(p).status().code(), absl::StatusCode::kInvalidArgument);
}

class PayloadCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("fw-pkg-test");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    image_ = tmp_->path() / "image";
    stdfs::create_directories(image_ / "opt/ota/firmware");
    std::ofstream(image_ / "opt/ota/firmware/x.Cap") << "foobar\n";
    // sha256("foobar\n")
    package_.payload_name = "x";
    package_.file_location = "file:///opt/ota/firmware/x.Cap";
    package_.digest_algorithm = "sha256";
    package_.digest_hex = "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f";
  }
  std::unique_ptr<fs::TempDir> tmp_;
  stdfs::path image_;
  FirmwarePackage package_;
};

TEST_F(PayloadCopyTest, CopiesOnlyWhatMatchesItsDigest) {
  auto image = fs::RootedDir::Open(image_);
  ASSERT_TRUE(image.ok());
  const stdfs::path dest = tmp_->path() / "out.Cap";
  ASSERT_TRUE(CopyVerifiedPayload(*image, package_, dest).ok());
  EXPECT_EQ(*fs::ReadFile(dest), "foobar\n");

  package_.digest_hex[0] = 'b';
  stdfs::remove(dest);
  absl::Status mismatch = CopyVerifiedPayload(*image, package_, dest);
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kDataLoss) << mismatch;
  EXPECT_FALSE(stdfs::exists(dest));
  EXPECT_FALSE(stdfs::exists(dest.string() + ".ota-new"));

  package_.digest_algorithm = "sha512";
  package_.digest_hex =
      "e79b8ad22b34a54be999f4eadde2ee895c208d4b3d83f1954b61255d2556a8b73773c0dc0210aa044ffcca68"
      "34839460959cbc9f73d3079262fc8bc935d46262";  // sha512 of "foobar\n"
  absl::Status sha512 = CopyVerifiedPayload(*image, package_, dest);
  EXPECT_TRUE(sha512.ok()) << sha512;
  package_.digest_algorithm = "nosuchhash";
  EXPECT_EQ(CopyVerifiedPayload(*image, package_, dest).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PayloadCopyTest, SymlinksStayInsideTheImage) {
  // An absolute symlink in the image resolves inside the image, never on the host.
  const stdfs::path outside = tmp_->path() / "host-secret";
  std::ofstream(outside) << "foobar\n";
  stdfs::remove(image_ / "opt/ota/firmware/x.Cap");
  stdfs::create_symlink(outside, image_ / "opt/ota/firmware/x.Cap");
  auto image = fs::RootedDir::Open(image_);
  ASSERT_TRUE(image.ok());
  absl::Status copied = CopyVerifiedPayload(*image, package_, tmp_->path() / "out");
  EXPECT_FALSE(copied.ok());
  EXPECT_FALSE(stdfs::exists(tmp_->path() / "out"));
}

TEST_F(PayloadCopyTest, LoadFirmwarePackage) {
  auto image = fs::RootedDir::Open(image_);
  ASSERT_TRUE(image.ok());
  auto none = LoadFirmwarePackage(*image);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  std::ofstream(image_ / "opt/ota/firmware/firmware_manifest.yaml") << kManifest;
  none = LoadFirmwarePackage(*image);  // no request: no firmware update
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  std::ofstream(image_ / "opt/ota/firmware/firmware_update.yaml") << "firmware_list: bad\n";
  none = LoadFirmwarePackage(*image);  // invalid: no firmware update, not an error
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  std::ofstream(image_ / "opt/ota/firmware/firmware_update.yaml") << "firmware_list: [x]\n";
  auto set = LoadFirmwarePackage(*image);
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->has_value());
  EXPECT_EQ((*set)->request.firmware_list.size(), 1u);
}

}  // namespace
}  // namespace ota::boot
