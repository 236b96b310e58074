// The process side of ClientUpdate (otaclient/service/client_handover.h) with real child
// processes: the new client's command line, and the refusals when it does not come up.
#include "otaclient/service/client_handover.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
                                         "--dynamic-client"};
  EXPECT_EQ(NewClientArgv(own, "/run/otaclient/client/otaclient-2", 50051), want);
}

TEST(ClientHandoverTest, RestartArgvKeepsAllButThePort) {
  const std::vector<std::string> own = {
      "/usr/bin/otaclient", "--listen-port=0", "--port-file", "/run/p", "--ready-fd", "3",
      "--no-reboot"};
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

}  // namespace
}  // namespace ota::service
