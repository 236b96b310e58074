// The process side of ClientUpdate (otaclient/service/client_handover.h) with real child
// processes: the new client's command line, and the refusals when it does not come up.
#include "otaclient/service/client_handover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/fs/fs.h"

namespace ota::service {
namespace {

TEST(ClientHandoverTest, NewClientArgvReplacesPortAndMarkers) {
  const std::vector<std::string> own = {
      "/usr/bin/otaclient", "--config-dir", "/boot/ota",  "--listen-port",    "0",
      "--port-file=/run/p", "--ready-fd",   "7",          "--dynamic-client", "--listen-port=5",
      "--port-file",        "/run/p2",      "--no-reboot"};
  const std::vector<std::string> want = {"/run/otaclient/client/otaclient-2",
                                         "--config-dir",
                                         "/boot/ota",
                                         "--no-reboot",
                                         "--listen-port",
                                         "50051",
                                         "--ready-fd",
                                         "3",
                                         "--listen-lock-fd",
                                         "4",
                                         "--dynamic-client"};
  EXPECT_EQ(NewClientArgv(own, "/run/otaclient/client/otaclient-2", 50051), want);
}

TEST(ClientHandoverTest, RestartArgvKeepsAllButThePort) {
  const std::vector<std::string> own = {
      "/usr/bin/otaclient", "--listen-port=0", "--port-file", "/run/p", "--ready-fd", "3",
      "--listen-lock-fd=4", "--no-reboot"};
  const std::vector<std::string> want = {"/usr/bin/otaclient", "--port-file",   "/run/p",
                                         "--no-reboot",        "--listen-port", "15001"};
  EXPECT_EQ(RestartArgv(own, 15001), want);
}

HandOverOptions Options(std::vector<std::string> argv) {
  HandOverOptions o;
  o.argv = std::move(argv);
  o.status_target = "127.0.0.1:1";  // never reached in these cases
  o.ecu_id = "autoware";
  o.expected_version = "2";
  o.ready_timeout = std::chrono::seconds(20);
  return o;
}

TEST(ClientHandoverTest, AClientThatExitsIsReportedWithItsExit) {
  auto child = StartNewClient(Options({"/bin/sh", "-c", "exit 3"}));
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("ended before serving (exit 3)"), std::string::npos)
      << child.status();
}

TEST(ClientHandoverTest, AMissingBinaryIsReported) {
  auto child = StartNewClient(Options({"/nonexistent/otaclient"}));
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("exit 127"), std::string::npos) << child.status();
}

TEST(ClientHandoverTest, AClientThatNeverListensIsStoppedAtTheDeadline) {
  HandOverOptions o = Options({"/bin/sh", "-c", "exec sleep 600"});
  o.ready_timeout = std::chrono::milliseconds(300);  // the outcome does not depend on it
  auto child = StartNewClient(o);
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("did not report listening in time"), std::string::npos)
      << child.status();
  EXPECT_NE(child.status().message().find("killed by signal 15"), std::string::npos)
      << child.status();
}

TEST(ClientHandoverTest, GarbageOnTheReadyPipeIsRefused) {
  auto child = StartNewClient(
      Options({"/bin/sh", "-c", "head -c 100 /dev/zero | tr '\\0' x >&3; exec sleep 600"}));
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("garbage"), std::string::npos) << child.status();
}

// A child as StartNewClient leaves it (own process group, a pidfd), running `script`.
std::unique_ptr<ChildClient> SpawnChild(const char* script) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sh", "sh", "-c", script, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  EXPECT_GE(pidfd, 0);
  return std::make_unique<ChildClient>(pid, fs::UniqueFd(pidfd));
}

// The daemon's self-pipe, as main() has it.
struct WakePipe {
  fs::UniqueFd read_end, write_end;
  WakePipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end = fs::UniqueFd(fds[0]);
    write_end = fs::UniqueFd(fds[1]);
  }
  void Send(char byte) { ASSERT_EQ(::write(write_end.get(), &byte, 1), 1); }
  WakeSource Source() {
    return WakeSource{read_end.get(), [fd = read_end.get()] {
                        char byte = 0;
                        return ::read(fd, &byte, 1) == 1 ? static_cast<int>(byte) : SIGTERM;
                      }};
  }
};

TEST(ClientHandoverTest, SupervisionEndsWhenTheNewClientEnds) {
  WakePipe wake;
  auto child = SpawnChild("exit 4");
  const HandOverEnd end = SuperviseNewClient(*child, wake.Source());
  EXPECT_EQ(end.kind, HandOverEnd::Kind::kClientEnded);
  EXPECT_EQ(end.ended, "exit 4");
  EXPECT_EQ(child->pid(), -1);  // reaped
}

TEST(ClientHandoverTest, SupervisionIgnoresHandOverWakesAndStopsTheClientOnASignal) {
  WakePipe wake;
  auto child = SpawnChild("exec sleep 600");
  wake.Send(WakeSource::kHandOverWake);  // a second staged client update: ignored
  wake.Send(SIGINT);
  const HandOverEnd end = SuperviseNewClient(*child, wake.Source());
  EXPECT_EQ(end.kind, HandOverEnd::Kind::kStopRequested);
  EXPECT_EQ(end.signal_number, SIGINT);
  EXPECT_EQ(end.ended, "killed by signal 15");
  EXPECT_EQ(child->pid(), -1);
}

TEST(ClientHandoverTest, AHandOverThatFailsReportsWhyAndSupervisesNothing) {
  WakePipe wake;
  wake.Send(SIGTERM);  // would end a supervision at once: it must not be read
  std::vector<absl::Status> reported;
  const HandOverEnd end =
      HandOverToNewClient(Options({"/bin/sh", "-c", "exit 3"}), wake.Source(),
                          [&reported](const absl::Status& s) { reported.push_back(s); });
  EXPECT_EQ(end.kind, HandOverEnd::Kind::kNotTakenOver);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], end.failure);
  EXPECT_NE(end.failure.message().find("ended before serving (exit 3)"), std::string::npos)
      << end.failure;
  char byte = 0;
  EXPECT_EQ(::read(wake.read_end.get(), &byte, 1), 1);  // still pending
}

TEST(ClientHandoverTest, ExecSelfWithoutACommandLineFails) { EXPECT_FALSE(ExecSelf({}).ok()); }

}  // namespace
}  // namespace ota::service
