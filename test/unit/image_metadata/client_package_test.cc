// The otaclient release manifest (common/image/client_package.h): parsing with nasty vectors,
// the package choice and its refusals, and the writer's output read back.
#include "common/image/client_package.h"

#include <gtest/gtest.h>

#include <string>

namespace ota::image {
namespace {

const std::string kHex(64, 'a');

std::string Package(const std::string& fields) { return "{" + fields + "}"; }

std::string Manifest(const std::string& packages) {
  return R"({"schema_version":"1","date":"2026-12-06T00:00:00","packages":[)" + packages + "]}";
}

std::string Cpp(const std::string& arch, const std::string& version = "2.0.0") {
  return Package(R"("filename":"otaclient-)" + arch + R"(","version":")" + version +
                 R"(","type":"otaclient-cpp","architecture":")" + arch +
                 R"(","size":123,"checksum":"sha256:)" + kHex + R"(")");
}

std::string Squashfs(const std::string& arch) {
  return Package(R"("filename":"otaclient-)" + arch +
                 R"(.squashfs","version":"3.9.0","type":"squashfs","architecture":")" + arch +
                 R"(","size":5,"checksum":"sha256:)" + kHex + R"(")");
}

TEST(ClientPackageTest, ParsesThePythonClientsManifestAndOurs) {
  auto m = ParseClientReleaseManifest(Manifest(Squashfs("x86_64") + "," + Cpp("x86_64")));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->packages.size(), 2u);
  EXPECT_EQ(m->date, "2026-12-06T00:00:00");
  EXPECT_EQ(m->packages[1].type, "otaclient-cpp");
  EXPECT_EQ(m->packages[1].size, 123u);
  EXPECT_EQ(m->packages[1].checksum_algorithm, "sha256");
  EXPECT_EQ(m->packages[1].checksum_hex, kHex);
}

TEST(ClientPackageTest, UnknownKeysAndPatchMetadataAreIgnored) {
  const std::string patch = Package(
      R"("filename":"p.patch","version":"3.9.1","type":"patch","architecture":"arm64","size":1,)"
      R"("checksum":"sha256:)" +
      kHex + R"(","metadata":{"patch_base_version":"3.9.0"},"future":[1,2])");
  auto m = ParseClientReleaseManifest(Manifest(patch));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->packages[0].type, "patch");
}

TEST(ClientPackageTest, UppercaseChecksumIsNormalised) {
  std::string p = Cpp("x86_64");
  p.replace(p.find(kHex), 64, std::string(64, 'A'));
  auto m = ParseClientReleaseManifest(Manifest(p));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->packages[0].checksum_hex, kHex);
}

struct BadCase {
  const char* name;
  std::string json;
  std::string expect_in_message;
};

TEST(ClientPackageTest, RefusesMalformedManifests) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string p = Cpp("x86_64");
    p.replace(p.find(from), from.size(), to);
    return Manifest(p);
  };
  const BadCase cases[] = {
      {"empty", "", "not valid JSON"},
      {"truncated", Manifest(Cpp("x86_64")).substr(0, 40), "not valid JSON"},
      {"array", "[]", "not a JSON object"},
      {"nul byte", std::string("{\"schema_version\":\"1\"\0}", 24), "not valid JSON"},
      {"no schema", R"({"packages":[]})", "schema_version"},
      {"schema 2", R"({"schema_version":"2","packages":[]})", "unknown"},
      {"schema int", R"({"schema_version":1,"packages":[]})", "not a string"},
      {"no packages", R"({"schema_version":"1"})", "packages"},
      {"packages object", R"({"schema_version":"1","packages":{}})", "packages"},
      {"package string", Manifest("\"x\""), "packages[0]: not an object"},
      {"slash in filename", with("otaclient-x86_64\"", "../../bin/sh\""), "filename"},
      {"dotdot filename", with("otaclient-x86_64\"", "..\""), "filename"},
      {"empty filename", with("otaclient-x86_64\"", "\""), "filename"},
      {"control in filename", with("otaclient-x86_64\"", "a\\nb\""), "filename"},
      {"utf8 filename", with("otaclient-x86_64\"", "\xc3\xa9\""), "filename"},
      {"slash in version", with("\"2.0.0\"", "\"../2\""), "version"},
      {"empty version", with("\"2.0.0\"", "\"\""), "version"},
      {"control in version", with("\"2.0.0\"", "\"2\\u0000\""), "version"},
      {"version number", with("\"2.0.0\"", "2"), "not a string"},
      {"negative size", with("123", "-1"), "size"},
      {"float size", with("123", "1.5"), "size"},
      {"string size", with("123", "\"123\""), "size"},
      {"huge size", with("123", "1e400"), ""},
      {"no colon checksum", with("sha256:", "sha256"), "checksum"},
      {"empty alg", with("sha256:", ":"), "checksum"},
      {"non-hex checksum", with(kHex, "zz"), "checksum"},
      {"empty hex", with(":" + kHex, ":"), "checksum"},
      {"missing type", with("\"type\":\"otaclient-cpp\",", ""), "type"},
      {"null architecture", with("\"architecture\":\"x86_64\"", "\"architecture\":null"),
       "not a string"},
  };
  for (const BadCase& c : cases) {
    auto m = ParseClientReleaseManifest(c.json);
    EXPECT_FALSE(m.ok()) << c.name;
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
      EXPECT_NE(m.status().message().find(c.expect_in_message), std::string::npos)
          << c.name << ": " << m.status().message();
    }
  }
}

TEST(ClientPackageTest, RefusesOversizedManifests) {
  std::string many;
  for (size_t i = 0; i <= kMaxPackages; ++i) many += (i ? "," : "") + Cpp("x86_64");
  auto m = ParseClientReleaseManifest(Manifest(many));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("more than"), std::string::npos);
  auto big = ParseClientReleaseManifest(std::string(kMaxClientManifestBytes + 1, ' '));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("bytes"), std::string::npos);
}

TEST(ClientPackageTest, ArchitectureNames) {
  EXPECT_EQ(PackageArchitectureOf("x86_64"), "x86_64");
  EXPECT_EQ(PackageArchitectureOf("amd64"), "x86_64");
  EXPECT_EQ(PackageArchitectureOf("aarch64"), "arm64");
  EXPECT_EQ(PackageArchitectureOf("arm64"), "arm64");
  EXPECT_EQ(PackageArchitectureOf("riscv64"), "");
  EXPECT_EQ(PackageArchitectureOf(""), "");
}

TEST(ClientPackageTest, SelectsOurPackageForThisCpu) {
  auto m = ParseClientReleaseManifest(
      Manifest(Squashfs("x86_64") + "," + Cpp("arm64", "2.0.1") + "," + Cpp("x86_64", "2.0.2")));
  ASSERT_TRUE(m.ok()) << m.status();
  auto x86 = SelectClientPackage(*m, "x86_64");
  ASSERT_TRUE(x86.ok()) << x86.status();
  EXPECT_EQ(x86->version, "2.0.2");
  auto arm = SelectClientPackage(*m, "aarch64");
  ASSERT_TRUE(arm.ok()) << arm.status();
  EXPECT_EQ(arm->version, "2.0.1");
  EXPECT_EQ(PackageDigest(*arm)[0], 0xaa);
}

TEST(ClientPackageTest, RefusalsNameTheReason) {
  struct Case {
    const char* name;
    std::string manifest;
    std::string machine;
    std::string expect;
  };
  const Case cases[] = {
      {"empty", Manifest(""), "x86_64", "lists no package"},
      {"python only", Manifest(Squashfs("x86_64")), "x86_64",
       "cannot run the packages it lists: squashfs x86_64"},
      {"wrong cpu", Manifest(Cpp("arm64")), "x86_64", "for this CPU (x86_64), only for: arm64"},
      {"unknown cpu", Manifest(Cpp("x86_64")), "riscv64", "riscv64"},
  };
  for (const Case& c : cases) {
    auto m = ParseClientReleaseManifest(c.manifest);
    ASSERT_TRUE(m.ok()) << c.name << ": " << m.status();
    auto chosen = SelectClientPackage(*m, c.machine);
    ASSERT_FALSE(chosen.ok()) << c.name;
    EXPECT_EQ(chosen.status().code(), absl::StatusCode::kFailedPrecondition) << c.name;
    EXPECT_NE(chosen.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << chosen.status().message();
  }
  std::string md5 = Cpp("x86_64");
  md5.replace(md5.find("sha256:" + kHex), 7 + 64, "md5:" + std::string(32, 'b'));
  auto m = ParseClientReleaseManifest(Manifest(md5));
  ASSERT_TRUE(m.ok()) << m.status();
  auto chosen = SelectClientPackage(*m, "x86_64");
  ASSERT_FALSE(chosen.ok());
  EXPECT_NE(chosen.status().message().find("only sha256"), std::string::npos);
}

TEST(ClientPackageTest, WrittenManifestReadsBack) {
  ClientPackage p{"otaclient", "2.0.0+e2e", std::string(kCppPackageType), "x86_64", 42,
                  "sha256",    kHex};
  auto m = ParseClientReleaseManifest(ClientReleaseManifestJson(p, "2026-12-06T10:00:00Z"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->packages.size(), 1u);
  EXPECT_EQ(m->packages[0].filename, p.filename);
  EXPECT_EQ(m->packages[0].version, p.version);
  EXPECT_EQ(m->packages[0].size, 42u);
  auto chosen = SelectClientPackage(*m, "amd64");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
}

TEST(ClientPackageTest, AddingKeepsOtherPackagesAndReplacesOursForTheCpu) {
  const std::string patch = Package(
      R"("filename":"p.patch","version":"3.9.1","type":"patch","architecture":"x86_64","size":1,)"
      R"("checksum":"sha256:)" +
      kHex + R"(","metadata":{"patch_base_version":"3.9.0"})");
  const std::string existing = Manifest(Squashfs("x86_64") + "," + patch + "," +
                                        Cpp("x86_64", "1.0.0") + "," + Cpp("arm64", "1.0.0"));
  ClientPackage p{
      "otaclient-2-x86_64", "2.0.0", std::string(kCppPackageType), "amd64", 42, "sha256",
      std::string(64, 'b')};
  auto merged = AddToClientReleaseManifest(existing, p);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_NE(merged->find("patch_base_version"), std::string::npos);  // kept as written
  auto m = ParseClientReleaseManifest(*merged);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->packages.size(), 4u);
  EXPECT_EQ(m->packages[0].type, "squashfs");
  EXPECT_EQ(m->packages[1].type, "patch");
  EXPECT_EQ(m->packages[2].architecture, "arm64");
  EXPECT_EQ(m->packages[2].version, "1.0.0");
  EXPECT_EQ(m->packages[3].version, "2.0.0");
  auto chosen = SelectClientPackage(*m, "x86_64");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->version, "2.0.0");

  EXPECT_FALSE(AddToClientReleaseManifest("{", p).ok());
  EXPECT_FALSE(AddToClientReleaseManifest(Manifest("\"x\""), p).ok());
}

}  // namespace
}  // namespace ota::image
