// The test-port registry (test/lib/ports/port_registry.h): candidates outside the ephemeral range,
// ascending; live owners keep their claims, gone ones (exited, zombie, PID reused) lose them;
// release touches only the owner's claims; busy ports are skipped; concurrent claimers never get
// the same port; the ota-test-ports tool and ports.sh speak the same protocol.
#include "test/lib/ports/port_registry.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "test/lib/ports/port_file.h"
#include "test/unit/service/test_support.h"

namespace ota::testing {
namespace {

using service::testing::ProcessResult;
using service::testing::RunProcess;

// A child process that lives until Kill(); its PID names a live owner other than this process.
class Sleeper {
 public:
  Sleeper() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~Sleeper() {
    Kill();
    Reap();
  }
  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  // Waits for it to be a zombie, without reaping it.
  void WaitExited() {
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  }
  void Reap() {
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

class PortRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("port-registry-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    ASSERT_TRUE(fs::WriteFileAtomic(temp_->path() / "ephemeral", "103\t108\n").ok());
    options_.dir = temp_->path() / "registry";
    options_.window = {100, 110};
    options_.ephemeral_range_file = temp_->path() / "ephemeral";
    options_.port_unused = [this](int port) { return !busy_.contains(port); };
    auto self = OwnerOf(::getpid());
    ASSERT_TRUE(self.ok()) << self.status();
    self_ = *self;
  }

  std::vector<int> Claim(const PortOwner& owner, int count = 1) {
    auto ports = ClaimPortsFor(options_, owner, count);
    EXPECT_TRUE(ports.ok()) << ports.status();
    return ports.ok() ? *ports : std::vector<int>{};
  }

  std::unique_ptr<fs::TempDir> temp_;
  PortRegistryOptions options_;
  std::set<int> busy_;
  PortOwner self_;
};

TEST_F(PortRegistryTest, HandsOutTheWindowMinusTheEphemeralRangeInOrder) {
  EXPECT_EQ(Claim(self_, 3), (std::vector<int>{100, 101, 102}));
  EXPECT_EQ(Claim(self_, 2), (std::vector<int>{109, 110}));
  auto more = ClaimPortsFor(options_, self_, 1);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(more.status().message().find("0 of 1 test ports free in 100-110 outside the "
                                         "ephemeral range 103-108"),
            std::string::npos)
      << more.status();
}

TEST_F(PortRegistryTest, AllOrNothing) {
  EXPECT_EQ(Claim(self_, 4), (std::vector<int>{100, 101, 102, 109}));
  auto two = ClaimPortsFor(options_, self_, 2);
  EXPECT_EQ(two.status().code(), absl::StatusCode::kResourceExhausted) << two.status();
  // The one port that was free is not kept by the failed request.
  EXPECT_EQ(Claim(self_, 1), (std::vector<int>{110}));
}

TEST_F(PortRegistryTest, LiveOwnersKeepTheirPortsGoneOnesAreReclaimed) {
  Sleeper other;
  ASSERT_GT(other.pid(), 0);
  auto other_owner = OwnerOf(other.pid());
  ASSERT_TRUE(other_owner.ok()) << other_owner.status();
  // This PID, but another start time: the process that claimed is gone and the PID was reused.
  const PortOwner reused{self_.pid, self_.start_time + 1};

  EXPECT_EQ(Claim(self_), (std::vector<int>{100}));
  EXPECT_EQ(Claim(*other_owner), (std::vector<int>{101}));
  EXPECT_EQ(Claim(reused), (std::vector<int>{102}));
  auto listed = ListClaims(options_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_TRUE((*listed)[0].owner_alive);
  EXPECT_EQ((*listed)[1].owner, *other_owner);
  EXPECT_TRUE((*listed)[1].owner_alive);
  EXPECT_FALSE((*listed)[2].owner_alive);

  // 102's owner is gone: the next claimer takes it; 100 and 101 stay taken.
  EXPECT_EQ(Claim(self_), (std::vector<int>{102}));
  // A dead owner not yet reaped (a zombie) is gone too.
  other.Kill();
  other.WaitExited();
  EXPECT_EQ(Claim(self_), (std::vector<int>{101}));
  other.Reap();
  EXPECT_EQ(Claim(self_), (std::vector<int>{109}));
}

TEST_F(PortRegistryTest, ReleaseTouchesOnlyTheOwnersClaims) {
  auto init = OwnerOf(1);  // alive as long as the machine runs
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_EQ(Claim(self_, 2), (std::vector<int>{100, 101}));
  EXPECT_EQ(Claim(*init), (std::vector<int>{102}));

  auto released = ReleasePortsOf(options_, self_, std::vector<int>{102, 109});
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->empty());
  released = ReleasePortsOf(options_, self_, std::nullopt);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, (std::vector<int>{100, 101}));
  auto listed = ListClaims(options_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].port, 102);
  // Released ports are handed out again.
  EXPECT_EQ(Claim(self_, 2), (std::vector<int>{100, 101}));
}

TEST_F(PortRegistryTest, BusyPortsAreSkipped) {
  busy_ = {100, 102};
  EXPECT_EQ(Claim(self_, 2), (std::vector<int>{101, 109}));
}

TEST_F(PortRegistryTest, TheRealProbeSkipsABoundPort) {
  // A port of the machine's registry, so no other test binds it meanwhile.
  auto claim = ClaimPort();
  ASSERT_TRUE(claim.ok()) << claim.status();
  const int port = claim->port();
  options_.window = {port, port};
  options_.ephemeral_range_file = "/proc/sys/net/ipv4/ip_local_port_range";
  options_.port_unused = nullptr;
  {
    fs::UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ASSERT_EQ(::bind(socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(ClaimPortsFor(options_, self_, 1).status().code(),
              absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(Claim(self_), (std::vector<int>{port}));
}

TEST_F(PortRegistryTest, ConcurrentClaimersNeverShareAPort) {
  options_.window = {100, 199};
  std::vector<std::vector<int>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        auto ports = ClaimPortsFor(options_, self_, 2);
        if (ports.ok()) got[t].insert(got[t].end(), ports->begin(), ports->end());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::vector<int> all;
  for (const auto& ports : got) all.insert(all.end(), ports.begin(), ports.end());
  EXPECT_EQ(all.size(), 80u);
  EXPECT_EQ(std::set<int>(all.begin(), all.end()).size(), all.size());
}

TEST_F(PortRegistryTest, TheMachineRegistryGivesPortsOutsideTheEphemeralRange) {
  auto ephemeral = fs::ReadFile("/proc/sys/net/ipv4/ip_local_port_range");
  ASSERT_TRUE(ephemeral.ok()) << ephemeral.status();
  int lo = 0, hi = 0;
  std::istringstream(*ephemeral) >> lo >> hi;
  auto claims = ClaimPorts(3);
  ASSERT_TRUE(claims.ok()) << claims.status();
  for (const PortClaim& claim : *claims) {
    EXPECT_TRUE(claim.port() < lo || claim.port() > hi) << claim.port();
  }
  // Released with the objects: claimable again by this process.
  const int first = (*claims)[0].port();
  claims->clear();
  auto options = PortRegistryOptionsFromEnv();
  ASSERT_TRUE(options.ok()) << options.status();
  auto listed = ListClaims(*options);
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const ClaimInfo& info : *listed) EXPECT_FALSE(info.port == first && info.owner == self_);
}

TEST(PortFileTest, ParsesAPortAndWaitsForIt) {
  EXPECT_EQ(ParsePortFile("8080\n").value_or(0), 8080);
  EXPECT_EQ(ParsePortFile("1").value_or(0), 1);
  for (const char* bad : {"", "\n", "0\n", "65536\n", "80 \n", "x\n", "80\n\n"}) {
    EXPECT_FALSE(ParsePortFile(bad).ok()) << bad;
  }
  auto dir = fs::TempDir::Create("port-file-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const auto file = dir->path() / "port";
  // Nobody writes it: the deadline; a child that exits first: said at once.
  EXPECT_EQ(WaitForPortFile(file, 0, std::chrono::milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  Sleeper child;
  child.Kill();
  EXPECT_EQ(WaitForPortFile(file, child.pid(), std::chrono::seconds(20)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fs::WriteFileAtomic(file, "4242\n").ok());
  EXPECT_EQ(WaitForPortFile(file, 0, std::chrono::seconds(1)).value_or(0), 4242);
}

TEST(PortRangeTest, ParsesLoDashHi) {
  auto range = ParsePortRange("15000-19999");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->lo, 15000);
  EXPECT_EQ(range->hi, 19999);
  for (const char* bad : {"", "15000", "0-10", "10-70000", "20-10", "a-b", "1-2-3"}) {
    EXPECT_FALSE(ParsePortRange(bad).ok()) << bad;
  }
}

// The tool and ports.sh against a private registry whose window holds only ports this process
// claimed from the machine's registry (so nothing else is bound there).
class PortToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("port-tool-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    auto claims = ClaimPorts(2);
    ASSERT_TRUE(claims.ok()) << claims.status();
    claims_ = std::move(*claims);
    lo_ = claims_[0].port();
    hi_ = claims_[1].port();
    ::setenv("OTA_TEST_PORTS_DIR", (temp_->path() / "registry").c_str(), 1);
    ::setenv("OTA_TEST_PORTS_RANGE", StrCat(lo_, "-", hi_).c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("OTA_TEST_PORTS_DIR");
    ::unsetenv("OTA_TEST_PORTS_RANGE");
  }

  std::unique_ptr<fs::TempDir> temp_;
  std::vector<PortClaim> claims_;
  int lo_ = 0, hi_ = 0;
};

TEST_F(PortToolTest, ClaimListRelease) {
  const std::string self = std::to_string(::getpid());
  ProcessResult claim = RunProcess({OTA_TEST_PORTS_TOOL, "claim", "--owner", self});
  ASSERT_EQ(claim.exit_code, 0) << claim.err;
  EXPECT_EQ(claim.out, StrCat(lo_, "\n"));
  ProcessResult list = RunProcess({OTA_TEST_PORTS_TOOL, "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto self_owner = OwnerOf(::getpid());
  ASSERT_TRUE(self_owner.ok());
  EXPECT_EQ(list.out, StrCat(lo_, " ", self, ":", self_owner->start_time, " alive\n"));
  // The library sees the tool's claim: the same protocol.
  PortRegistryOptions options;
  options.dir = temp_->path() / "registry";
  options.window = {lo_, hi_};
  auto listed = ListClaims(options);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].owner, *self_owner);

  ProcessResult release = RunProcess({OTA_TEST_PORTS_TOOL, "release", "--owner", self, "--all"});
  ASSERT_EQ(release.exit_code, 0) << release.err;
  EXPECT_EQ(release.out, StrCat(lo_, "\n"));
  list = RunProcess({OTA_TEST_PORTS_TOOL, "list"});
  EXPECT_EQ(list.out, "");
}

TEST_F(PortToolTest, Errors) {
  const std::string self = std::to_string(::getpid());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"claim"},
                                             {"claim", "--owner", "x"},
                                             {"claim", "--owner", self, "--count", "0"},
                                             {"release", "--owner", self},
                                             {"release", "--owner", self, "--all", "1234"},
                                             {"frobnicate"}}) {
    std::vector<std::string> argv = {OTA_TEST_PORTS_TOOL};
    argv.insert(argv.end(), args.begin(), args.end());
    const ProcessResult result = RunProcess(argv);
    EXPECT_EQ(result.exit_code, 2) << args[0] << ": " << result.err;
    EXPECT_NE(result.err.find("ota-test-ports: "), std::string::npos) << result.err;
  }
  // An owner that does not exist, a window with no port left: exit 1 with the reason.
  ProcessResult no_owner = RunProcess({OTA_TEST_PORTS_TOOL, "claim", "--owner", "999999999"});
  EXPECT_EQ(no_owner.exit_code, 1);
  EXPECT_NE(no_owner.err.find("no process 999999999"), std::string::npos) << no_owner.err;
  ProcessResult too_many =
      RunProcess({OTA_TEST_PORTS_TOOL, "claim", "--owner", self, "--count", "1000"});
  EXPECT_EQ(too_many.exit_code, 1);
  EXPECT_NE(too_many.err.find("test ports free in"), std::string::npos) << too_many.err;
}

TEST_F(PortToolTest, PortsShClaimsForTheScriptAndReleasesInItsTrap) {
  // A script that claims two ports, prints them and the registry, and exits (trap releases).
  const std::string script = StrCat(
      "set -eu; OTA_TEST_PORTS_TOOL=", OTA_TEST_PORTS_TOOL, "; source ", OTA_SOURCE_DIR,
      "/test/lib/ports/ports.sh; trap ports_release_all EXIT; port_claim a b; echo \"$a $b $$\"; "
      "\"$OTA_TEST_PORTS_TOOL\" list");
  const ProcessResult result = RunProcess({"/bin/bash", "-c", script});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream out(result.out);
  int a = 0, b = 0;
  pid_t pid = 0;
  out >> a >> b >> pid;
  EXPECT_EQ(a, lo_);
  EXPECT_GT(b, a);
  EXPECT_LE(b, hi_);
  EXPECT_NE(result.out.find(StrCat(a, " ", pid, ":")), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(StrCat(b, " ", pid, ":")), std::string::npos) << result.out;
  // The EXIT trap released both.
  ProcessResult list = RunProcess({OTA_TEST_PORTS_TOOL, "list"});
  EXPECT_EQ(list.out, "");
}

}  // namespace
}  // namespace ota::testing
