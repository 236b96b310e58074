// otactl abort / rollback as an operator runs them: the real binary, its exit code and output.
// The daemon side of abort and rollback is covered by test/e2e/update_e2e.sh (abort, rollback)
// against a real otaclient; here: parsing, help, the default target from ecu_info and the
// "daemon down" path (a loopback port nothing listens on).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/ports/port_registry.h"

namespace ota::otactl {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Outcome RunOtactl(const std::vector<std::string>& args) {
  std::string command = ShellQuote(OTACTL_BIN);
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  command += " 2>&1";
  Outcome outcome;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) outcome.output.append(buffer, n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  return outcome;
}

// A port nothing listens on: claimed in the test-port registry and never bound, so neither
// another test nor an outgoing connection can be on it while the claim lives.
::ota::testing::PortClaim ClosedPort() {
  auto claim = ::ota::testing::ClaimPort();
  EXPECT_TRUE(claim.ok()) << claim.status();
  return claim.ok() ? std::move(*claim) : ::ota::testing::PortClaim();
}

TEST(OtactlAbortRollbackCliTest, BadCommandLinesAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"abort", "--bogus"}, "abort: unknown option \"--bogus\""},
      {{"abort", "--ecu"}, "--ecu needs a value"},
      {{"abort", "--ecu", ""}, "--ecu is empty"},
      {{"abort", "--ecu="}, "--ecu is empty"},
      {{"abort", "main"}, "unknown option \"main\""},
      {{"rollback", "--ecu", "main", "--timeout", "0"}, "--timeout expects seconds"},
      {{"rollback", "--ecu", "main", "--timeout", "1e9"}, "--timeout expects seconds"},
      {{"rollback", "--target", ""}, "--target is empty"},
      {{"rollback", "--target"}, "--target needs a value"},
      {{"rollback", "--version", "v2"}, "rollback: unknown option \"--version\""},
      {{"abortt"}, "unknown command \"abortt\""},
      {{"rollback", "--grpc-tls-cert"}, "--grpc-tls-cert needs a value"},
      {{"abort", "--grpc-tls-ca="}, "--grpc-tls-ca is empty"},
      // Mutual TLS takes all three files (checked before any call).
      {{"abort", "--ecu", "main", "--grpc-tls-cert", "/nonexistent/c.pem"},
       "missing: --grpc-tls-key, --grpc-tls-ca"},
      {{"rollback", "--grpc-tls-cert", "/nonexistent/c.pem", "--grpc-tls-key", "/nonexistent/k.pem",
        "--grpc-tls-ca", "/nonexistent/ca.pem"},
       "--grpc-tls-cert: open /nonexistent/c.pem: "},
  };
  for (const Case& c : cases) {
    Outcome out = RunOtactl(c.args);
    EXPECT_EQ(out.exit_code, 2) << c.args[0] << " " << out.output;
    EXPECT_THAT(out.output, HasSubstr(c.message)) << c.args[0];
  }
}

TEST(OtactlAbortRollbackCliTest, HelpDescribesTheCommand) {
  Outcome abort = RunOtactl({"abort", "--help"});
  EXPECT_EQ(abort.exit_code, 0);
  EXPECT_THAT(abort.output, HasSubstr("Usage: otactl abort [--ecu ID ...]"));
  Outcome rollback = RunOtactl({"rollback", "-h"});
  EXPECT_EQ(rollback.exit_code, 0);
  EXPECT_THAT(rollback.output, HasSubstr("Usage: otactl rollback [--ecu ID ...]"));
}

TEST(OtactlAbortRollbackCliTest, DaemonDownIsExitFourNamingTheTarget) {
  const auto closed = ClosedPort();
  const std::string target = StrCat("127.0.0.1:", closed.port());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"abort", "--target", target, "--ecu", "main"},
        std::vector<std::string>{"rollback", "--target", target, "--ecu", "main", "--ecu", "sub"},
        // Without --ecu the ECU list comes from the daemon's Status: unreachable just the same.
        std::vector<std::string>{"abort", "--target=" + target},
        std::vector<std::string>{"rollback", "--target", target}}) {
    Outcome out = RunOtactl(args);
    EXPECT_EQ(out.exit_code, 4) << args[0] << " " << out.output;
    EXPECT_THAT(out.output, HasSubstr(StrCat("otactl: cannot reach otaclient at ", target, ": ")))
        << args[0];
  }
}

TEST(OtactlAbortRollbackCliTest, DefaultTargetComesFromEcuInfo) {
  auto dir = fs::TempDir::Create("otactl-cli-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE(fs::WriteFileAtomic(dir->path() / "ecu_info.yaml",
                                  "format_version: 1\necu_id: main\nip_addr: 127.0.0.9\n")
                  .ok());
  Outcome out =
      RunOtactl({"abort", "--ecu", "main", "--timeout", "2", "--config-dir", dir->path().string()});
  EXPECT_EQ(out.exit_code, 4) << out.output;
  EXPECT_THAT(out.output, HasSubstr("cannot reach otaclient at 127.0.0.9:50051"));
}

}  // namespace
}  // namespace ota::otactl
