// The otaclient release package of an OTA image v1 (common/image/v1/release_package.h): the
// package manifest parser with nasty vectors, the layer lookup that ties a layer to its
// manifest.json entry, and the builder's artifact read back through OpenImage and the parsers
// (a real image signed with the test PKI, served over file:// by the real CurlFetcher).
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
#include "common/image/image_reader.h"
#include "common/image/url.h"
#include "common/image/v1/reader.h"
#include "common/image/v1/release_package.h"
#include "common/image/v1/writer.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::image::v1 {
namespace {

namespace stdfs = std::filesystem;
using ::testing::HasSubstr;

const std::string kA = std::string(64, 'a');
const std::string kB = std::string(64, 'b');
const std::string kC = std::string(64, 'c');

std::string Layer(const std::string& hex, const std::string& arch = "x86_64",
                  const std::string& type = "otaclient-cpp", const std::string& version = "2.0.0",
                  const std::string& size = "123", const std::string& media = "") {
  const std::string mt =
      media.empty() ? std::string(LayerMediaTypeOf(type).empty() ? "x" : LayerMediaTypeOf(type))
                    : media;
  return R"({"size":123,"digest":"sha256:)" + hex + R"(","mediaType":")" + mt +
         R"(","annotations":{"version":")" + version + R"(","type":")" + type +
         R"(","architecture":")" + arch + R"(","size":)" + size + R"(,"checksum":"sha256:)" + hex +
         R"("}})";
}

std::string Doc(const std::string& layers, const std::string& extra = "",
                const std::string& config_media = std::string(kMediaOtaclientPackage)) {
  return R"({"config":{"size":300,"digest":"sha256:)" + kC + R"(","mediaType":")" + config_media +
         R"("},"layers":[)" + layers + R"(],"annotations":{"date":"2026-12-06T00:00:00Z"},)" +
         extra + R"("schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
}

TEST(V1ReleasePackageTest, ParsesTier4sShapeAndOurs) {
  const std::string squashfs = Layer(kA, "arm64", "squashfs", "3.9.1.squashfs");
  auto m = ParseReleasePackageManifest(
      Doc(squashfs + "," + Layer(kB),
          R"("artifactType":")" + std::string(kArtifactOtaclientPackage) + R"(",)"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->date, "2026-12-06T00:00:00Z");
  EXPECT_EQ(m->config.size, 300u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].type, "squashfs");
  EXPECT_EQ(m->layers[0].blob.media_type, kMediaOtaclientSquashfs);
  EXPECT_EQ(m->layers[1].type, "otaclient-cpp");
  EXPECT_EQ(m->layers[1].blob.media_type, kMediaOtaclientCpp);
  EXPECT_EQ(m->layers[1].blob.hex(), kB);
  // tier4's builder omits artifactType in the blob: accepted.
  EXPECT_TRUE(ParseReleasePackageManifest(Doc(Layer(kB))).ok());
}

TEST(V1ReleasePackageTest, RefusesMalformedManifests) {
  auto with = [](std::string doc, const std::string& from, const std::string& to) {
    doc.replace(doc.find(from), from.size(), to);
    return doc;
  };
  const std::string ok = Doc(Layer(kA));
  const struct {
    const char* name;
    std::string json;
    const char* message;
  } cases[] = {
      {"empty", "", "not valid JSON"},
      {"array", "[]", "not a JSON object"},
      {"index media type", with(ok, "image.manifest.v1+json", "image.index.v1+json"), "mediaType"},
      {"schema 1", with(ok, R"("schemaVersion":2)", R"("schemaVersion":1)"), "schemaVersion"},
      {"foreign artifactType",
       Doc(Layer(kA), R"("artifactType":"application/vnd.tier4.ota.file-based-ota-image.v1",)"),
       "artifactType"},
      {"config media type", Doc(Layer(kA), "", std::string(kMediaImageConfig)), "mediaType"},
      {"no config", with(ok, R"("config":)", R"("configx":)"), "missing \"config\""},
      {"huge config", with(ok, R"("size":300)", R"("size":2000000)"), "a release manifest"},
      {"no layers", with(ok, R"("layers":)", R"("layerz":)"), "\"layers\""},
      {"layers not a list", with(ok, R"("layers":[)", R"("layers":7,"x":[)"), "\"layers\" array"},
      {"no annotations", with(ok, R"("annotations":{"date")", R"("annotationz":{"date")"),
       "annotations"},
      {"no date", with(ok, R"("date":)", R"("datum":)"), "date"},
      {"layer media type", Doc(Layer(kA, "x86_64", "otaclient-cpp", "2", "123", "text/plain")),
       "mediaType"},
      {"type vs media type",
       Doc(Layer(kA, "x86_64", "otaclient-cpp", "2", "123", std::string(kMediaOtaclientSquashfs))),
       "does not go with"},
      {"patch layer",
       Doc(Layer(kA, "x86_64", "patch", "2", "123", std::string(kMediaOtaclientCpp))),
       "does not go with"},
      {"unknown architecture", Doc(Layer(kA, "riscv64")), "architecture \"riscv64\""},
      {"amd64 not written so", Doc(Layer(kA, "amd64")), "only x86_64 and arm64"},
      {"size disagrees", Doc(Layer(kA, "x86_64", "otaclient-cpp", "2", "124")), "size"},
      {"huge size", Doc(Layer(kA, "x86_64", "otaclient-cpp", "2", "99999999999999999999")), "size"},
      {"negative size", Doc(Layer(kA, "x86_64", "otaclient-cpp", "2", "-123")), "size"},
      {"checksum disagrees",
       with(Doc(Layer(kA)), R"("checksum":"sha256:)" + kA, R"("checksum":"sha256:)" + kB),
       "not the descriptor's digest"},
      {"checksum md5", with(Doc(Layer(kA)), R"("checksum":"sha256:)", R"("checksum":"md5:)"),
       "checksum"},
      {"uppercase digest", with(Doc(Layer(kA)), "sha256:" + kA, "sha256:" + std::string(64, 'A')),
       "lowercase"},
      {"no version", with(Doc(Layer(kA)), R"("version":)", R"("versio":)"), "\"version\""},
      {"empty version", Doc(Layer(kA, "x86_64", "otaclient-cpp", "")), "version"},
      {"control char version", Doc(Layer(kA, "x86_64", "otaclient-cpp", "2\\n")), "printable"},
      {"version number", with(Doc(Layer(kA)), R"("version":"2.0.0")", R"("version":[2])"),
       "\"version\""},
      {"duplicate blob", Doc(Layer(kA) + "," + Layer(kA, "arm64")), "the same blob"},
      {"duplicate package", Doc(Layer(kA) + "," + Layer(kB)), "a second otaclient-cpp"},
  };
  for (const auto& c : cases) {
    auto m = ParseReleasePackageManifest(c.json);
    ASSERT_FALSE(m.ok()) << c.name;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(m.status().message()), HasSubstr(c.message)) << c.name;
  }
  std::string many;
  for (size_t i = 0; i <= kMaxPackages; ++i) {
    char hex[65];
    std::snprintf(hex, sizeof(hex), "%064zx", i);
    many += (i ? "," : "") + Layer(hex, "x86_64", "otaclient-cpp", std::to_string(i));
  }
  auto m = ParseReleasePackageManifest(Doc(many));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("more than the"));
}

ClientPackage Entry(const std::string& hex, const std::string& version = "2.0.0",
                    const std::string& arch = "x86_64", uint64_t size = 123) {
  return ClientPackage{
      "otaclient-" + version, version, std::string(kCppPackageType), arch, size, "sha256", hex};
}

TEST(V1ReleasePackageTest, FindsTheLayerOfAnEntryOnlyWhenEverythingAgrees) {
  auto m = ParseReleasePackageManifest(Doc(Layer(kA, "arm64", "squashfs", "3.9.1") + "," +
                                           Layer(kB, "x86_64") + "," +
                                           Layer(kC, "arm64", "otaclient-cpp", "2.0.0")));
  ASSERT_TRUE(m.ok()) << m.status();
  auto found = FindPackageLayer(*m, Entry(kB));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ((*found)->blob.hex(), kB);
  // amd64 in manifest.json is x86_64.
  EXPECT_TRUE(FindPackageLayer(*m, Entry(kB, "2.0.0", "amd64")).ok());
  EXPECT_TRUE(FindPackageLayer(*m, Entry(kC, "2.0.0", "aarch64")).ok());

  const struct {
    const char* name;
    ClientPackage entry;
    absl::StatusCode code;
    const char* message;
  } cases[] = {
      {"no such blob", Entry(std::string(64, 'd')), absl::StatusCode::kNotFound, "in no layer"},
      {"version", Entry(kB, "2.0.1"), absl::StatusCode::kInvalidArgument, "version 2.0.0"},
      {"architecture", Entry(kB, "2.0.0", "arm64"), absl::StatusCode::kInvalidArgument,
       "architecture x86_64"},
      {"size", Entry(kB, "2.0.0", "x86_64", 124), absl::StatusCode::kInvalidArgument, "size 123"},
      {"type", ClientPackage{"f", "3.9.1", "otaclient-cpp", "arm64", 123, "sha256", kA},
       absl::StatusCode::kInvalidArgument, "type squashfs"},
      {"md5", ClientPackage{"f", "2.0.0", "otaclient-cpp", "x86_64", 123, "md5", kB},
       absl::StatusCode::kInvalidArgument, "not sha256"},
  };
  for (const auto& c : cases) {
    auto r = FindPackageLayer(*m, c.entry);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.name;
  }
}

TEST(V1ReleasePackageTest, IndexKeepsThePackageEntry) {
  const std::string index =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"size":10,"digest":"sha256:)" +
      kA + R"(","mediaType":")" + std::string(kMediaResourceTable) +
      R"("},{"size":77,"digest":"sha256:)" + kB + R"(","mediaType":")" +
      std::string(kMediaOtaclientPackage) + R"(","artifactType":")" +
      std::string(kArtifactOtaclientPackage) +
      R"("}],"annotations":{"vnd.tier4.ota.ota-image-builder.version":"t"}})";
  auto parsed = ParseImageIndex(index);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->otaclient_package.has_value());
  EXPECT_EQ(parsed->otaclient_package->hex(), kB);
  EXPECT_EQ(parsed->otaclient_package->size, 77u);
}

// The builder's artifact, read back as the client reads it.
class V1ReleasePackageImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("ota-v1-release-package-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_.emplace(std::move(*tmp));
    stdfs::create_directories(tmp_->path() / "rootfs/etc");
    std::ofstream(tmp_->path() / "rootfs/etc/hostname") << "ecu\n";
    stdfs::create_directories(tmp_->path() / "certs");
    stdfs::copy_file(Pki().path("root.pem"), tmp_->path() / "certs/root.pem");
    std::ofstream(tmp_->path() / "chain.pem") << Pki().sign_pem << Pki().interm_pem;
    release_ = tmp_->path() / "release";
    stdfs::create_directories(release_);
    binary_ = "#!/bin/sh\necho 2.0.0\n";
    std::ofstream(release_ / "otaclient-2.0.0-x86_64") << binary_;
    ClientPackage p =
        Entry(crypto::ToHex(crypto::Sha256Of(binary_)), "2.0.0", "x86_64", binary_.size());
    p.filename = "otaclient-2.0.0-x86_64";
    ClientPackage patch = p;
    patch.type = "patch";
    patch.filename = "p.patch";
    patch.architecture = "arm64";
    auto text = AddToClientReleaseManifest(ClientReleaseManifestJson(patch, "2026-12-06"), p);
    ASSERT_TRUE(text.ok()) << text.status();
    manifest_json_ = *text;
    std::ofstream(release_ / "manifest.json") << manifest_json_;
  }

  static const testing::TestPki& Pki() {
    static const testing::TestPki pki = *testing::CachedTestPki("main");
    return pki;
  }

  absl::Status Build(const stdfs::path& out) {
    V1BuildOptions o;
    o.rootfs = tmp_->path() / "rootfs";
    o.out_dir = out;
    o.key_pem = Pki().path("sign.key");
    o.cert_pem = tmp_->path() / "chain.pem";
    o.otaclient_release = release_;
    return BuildV1Image(o).status();
  }

  std::optional<fs::TempDir> tmp_;
  stdfs::path release_;
  std::string binary_, manifest_json_;
};

TEST_F(V1ReleasePackageImageTest, BuilderWritesAnArtifactTheReaderFollows) {
  const stdfs::path out = tmp_->path() / "img";
  ASSERT_TRUE(Build(out).ok());
  auto store = crypto::CaStore::LoadDir(tmp_->path() / "certs");
  ASSERT_TRUE(store.ok()) << store.status();
  http::FetcherConfig fc;
  fc.max_attempts = 1;
  auto fetcher = http::CreateCurlFetcher(fc);
  ReaderOptions ro;
  ro.ca_store = &*store;
  const std::string url = "file://" + PercentEncodePath(out.string());
  auto img = OpenImage(*fetcher, url, ro);
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_TRUE(img->otaclient_package.has_value());

  auto pm_text = FetchPinnedBlob(*fetcher, url, img->otaclient_package->sha256,
                                 img->otaclient_package->size, "package manifest");
  ASSERT_TRUE(pm_text.ok()) << pm_text.status();
  auto pm = ParseReleasePackageManifest(*pm_text);
  ASSERT_TRUE(pm.ok()) << pm.status();
  ASSERT_EQ(pm->layers.size(), 1u);  // the patch package is not stored
  EXPECT_EQ(pm->date, "2026-12-06");
  auto config = FetchPinnedBlob(*fetcher, url, pm->config.digest, pm->config.size, "config");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, manifest_json_);  // byte for byte
  auto release = ParseClientReleaseManifest(*config);
  ASSERT_TRUE(release.ok()) << release.status();
  auto chosen = SelectClientPackage(*release, "x86_64");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  auto layer = FindPackageLayer(*pm, *chosen);
  ASSERT_TRUE(layer.ok()) << layer.status();
  auto blob = fs::ReadFile(out / "blobs/sha256" / (*layer)->blob.hex());
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*blob, binary_);

  // A pinned blob that was changed is refused before parsing.
  const stdfs::path pm_path = out / "blobs/sha256" / crypto::ToHex(img->otaclient_package->sha256);
  std::string tampered = *pm_text;
  tampered[tampered.find("2026-12-06")] = '3';
  ASSERT_TRUE(fs::WriteFileAtomic(pm_path, tampered).ok());
  auto bad = FetchPinnedBlob(*fetcher, url, img->otaclient_package->sha256,
                             img->otaclient_package->size, "package manifest");
  EXPECT_FALSE(bad.ok());
}

TEST_F(V1ReleasePackageImageTest, BuilderRefusesAPackageThatIsNotItsManifestEntry) {
  std::ofstream(release_ / "otaclient-2.0.0-x86_64") << "#!/bin/sh\necho 6.6.6\n";
  absl::Status st = Build(tmp_->path() / "img");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("manifest.json says"));

  std::ofstream(release_ / "manifest.json") << "{}";
  st = Build(tmp_->path() / "img2");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("schema_version"));
}

TEST_F(V1ReleasePackageImageTest, ImageWithoutArtifactHasNone) {
  release_.clear();
  const stdfs::path out = tmp_->path() / "img";
  ASSERT_TRUE(Build(out).ok());
  auto store = crypto::CaStore::LoadDir(tmp_->path() / "certs");
  ASSERT_TRUE(store.ok());
  auto fetcher = http::CreateCurlFetcher(http::FetcherConfig{});
  ReaderOptions ro;
  ro.ca_store = &*store;
  auto img = OpenImage(*fetcher, "file://" + PercentEncodePath(out.string()), ro);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_FALSE(img->otaclient_package.has_value());
}

}  // namespace
}  // namespace ota::image::v1
