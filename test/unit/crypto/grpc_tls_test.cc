// The --grpc-tls-cert/--grpc-tls-key/--grpc-tls-ca checks of otaclient and otactl
// (common/crypto/grpc_tls.h) over a real throw-away PKI made with openssl by
// test/lib/make-grpc-tls-pki.sh: all three or none, unreadable and non-PEM files, a key of another
// certificate, a certificate of another CA, a client-only certificate used as a server.
// The handshakes themselves are tested end to end by test/e2e/mtls_e2e.sh.
#include "common/crypto/grpc_tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::crypto {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path& PkiDir() { return testing::GrpcTlsPkiDir("grpc-tls-test"); }

std::string Path(const std::string& name) { return (PkiDir() / name).string(); }

// A file with `content` in the PKI dir.
std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = Path(name);
  EXPECT_TRUE(fs::WriteFileAtomic(path, content).ok()) << path;
  return path;
}

GrpcTlsFiles Ecu() { return {Path("ecu.pem"), Path("ecu.key"), Path("ca.pem")}; }

TEST(GrpcTlsTest, NoFilesMeansPlainGrpc) {
  const auto loaded = LoadGrpcTls({}, TlsUse::kClientAndServer);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
}

TEST(GrpcTlsTest, AMatchingSetIsLoadedAsIs) {
  const auto loaded = LoadGrpcTls(Ecu(), TlsUse::kClientAndServer);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->cert_pem, *fs::ReadFile(Path("ecu.pem")));
  EXPECT_EQ((*loaded)->key_pem, *fs::ReadFile(Path("ecu.key")));
  EXPECT_EQ((*loaded)->ca_pem, *fs::ReadFile(Path("ca.pem")));
  // An operator's client-only certificate is enough for otactl.
  const auto client =
      LoadGrpcTls({Path("operator.pem"), Path("operator.key"), Path("ca.pem")}, TlsUse::kClient);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(client->has_value());
}

TEST(GrpcTlsTest, OnlySomeOfTheThreeNameWhatIsMissing) {
  struct Case {
    GrpcTlsFiles files;
    std::string missing;
  };
  const Case cases[] = {
      {{Path("ecu.pem"), "", ""}, "missing: --grpc-tls-key, --grpc-tls-ca"},
      {{Path("ecu.pem"), Path("ecu.key"), ""}, "missing: --grpc-tls-ca"},
      {{"", Path("ecu.key"), Path("ca.pem")}, "missing: --grpc-tls-cert"},
      {{"", "", Path("ca.pem")}, "missing: --grpc-tls-cert, --grpc-tls-key"},
      {{"", Path("ecu.key"), ""}, "missing: --grpc-tls-cert, --grpc-tls-ca"},
  };
  for (const Case& c : cases) {
    const auto loaded = LoadGrpcTls(c.files, TlsUse::kClientAndServer);
    ASSERT_FALSE(loaded.ok()) << c.missing;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(loaded.status().message(), HasSubstr(c.missing));
    EXPECT_THAT(loaded.status().message(), HasSubstr("or none for plain gRPC"));
  }
}

TEST(GrpcTlsTest, UnreadableFilesNameTheOptionAndPath) {
  const std::string missing = Path("no-such.pem");
  struct Case {
    GrpcTlsFiles files;
    std::string message;
  };
  const Case cases[] = {
      {{missing, Path("ecu.key"), Path("ca.pem")}, StrCat("--grpc-tls-cert: open ", missing, ": ")},
      {{Path("ecu.pem"), missing, Path("ca.pem")}, StrCat("--grpc-tls-key: open ", missing, ": ")},
      {{Path("ecu.pem"), Path("ecu.key"), missing}, StrCat("--grpc-tls-ca: open ", missing, ": ")},
      // A directory opens but does not read.
      {{Path("ecu.pem"), Path("ecu.key"), PkiDir().string()},
       StrCat("--grpc-tls-ca: read ", PkiDir().string(), ": ")},
  };
  for (const Case& c : cases) {
    const auto loaded = LoadGrpcTls(c.files, TlsUse::kClientAndServer);
    ASSERT_FALSE(loaded.ok()) << c.message;
    EXPECT_THAT(loaded.status().message(), HasSubstr(c.message));
  }
}

TEST(GrpcTlsTest, ContentsThatDoNotFitAreRefusedWithTheReason) {
  const std::string garbage = WriteFile("garbage.pem", "not a certificate\n");
  const std::string empty = WriteFile("empty.pem", "");
  const std::string broken =
      WriteFile("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  struct Case {
    std::string name;
    GrpcTlsFiles files;
    TlsUse use;
    std::string message;
  };
  const Case cases[] = {
      {"key of another certificate",
       {Path("ecu.pem"), Path("ecu2.key"), Path("ca.pem")},
       TlsUse::kClientAndServer,
       "key: does not belong to the certificate CN=ecu,O=OTA Test"},
      {"certificate of another CA",
       {Path("intruder.pem"), Path("intruder.key"), Path("ca.pem")},
       TlsUse::kClientAndServer,
       "certificate: CN=intruder,O=Someone Else does not chain to the CA"},
      {"CA that did not sign it",
       {Path("ecu.pem"), Path("ecu.key"), Path("other-ca.pem")},
       TlsUse::kClient,
       "does not chain to the CA: unable to get local issuer certificate"},
      {"client-only certificate as a server",
       {Path("operator.pem"), Path("operator.key"), Path("ca.pem")},
       TlsUse::kClientAndServer,
       "CN=operator,O=OTA Test may not be used as a TLS server"},
      {"encrypted key",
       {Path("operator.pem"), Path("encrypted.key"), Path("ca.pem")},
       TlsUse::kClient,
       "key: not an unencrypted PEM private key"},
      {"key and certificate swapped",
       {Path("ecu.key"), Path("ecu.pem"), Path("ca.pem")},
       TlsUse::kClientAndServer,
       "certificate: no PEM certificate found"},
      {"text that is no PEM",
       {garbage, Path("ecu.key"), Path("ca.pem")},
       TlsUse::kClient,
       "certificate: no PEM certificate found"},
      {"empty CA",
       {Path("ecu.pem"), Path("ecu.key"), empty},
       TlsUse::kClient,
       "CA: no PEM certificate found"},
      {"empty key",
       {Path("ecu.pem"), empty, Path("ca.pem")},
       TlsUse::kClient,
       "key: not an unencrypted PEM private key"},
      {"broken certificate block",
       {broken, Path("ecu.key"), Path("ca.pem")},
       TlsUse::kClient,
       "certificate: malformed PEM certificate"},
  };
  for (const Case& c : cases) {
    const auto loaded = LoadGrpcTls(c.files, c.use);
    ASSERT_FALSE(loaded.ok()) << c.name;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(loaded.status().message(), HasSubstr(c.message)) << c.name;
    // Every message names the three files.
    EXPECT_THAT(loaded.status().message(),
                HasSubstr(StrCat("(--grpc-tls-cert ", c.files.cert, ", --grpc-tls-key ",
                                 c.files.key, ", --grpc-tls-ca ", c.files.ca, "): ")))
        << c.name;
  }
}

}  // namespace
}  // namespace ota::crypto
