// The download proxy rule and the TCP probe behind its local-otaproxy fallback.
#include "otaclient/service/download_proxy.h"

#include <gtest/gtest.h>

#include "test/lib/loopback.h"

namespace ota::service {
namespace {

// A socket bound by the kernel to a free 127.0.0.1 port, listening (backlog 4) or not.
::ota::testing::LoopbackSocket Bound(int backlog) {
  auto s = ::ota::testing::BindLoopback(backlog);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : ::ota::testing::LoopbackSocket{};
}

TEST(ServiceDownloadProxyTest, TcpProbeSeesListenersOnly) {
  ::ota::testing::LoopbackSocket listening = Bound(4);
  // Bound but not listening: the port is ours, so nobody else can answer on it.
  ::ota::testing::LoopbackSocket closed = Bound(0);
  EXPECT_TRUE(TcpPortAccepts("127.0.0.1", listening.port, std::chrono::milliseconds(500)));
  EXPECT_FALSE(TcpPortAccepts("127.0.0.1", closed.port, std::chrono::milliseconds(500)));
  EXPECT_FALSE(
      TcpPortAccepts("no such host name.invalid", listening.port, std::chrono::milliseconds(500)));
}

TEST(ServiceDownloadProxyTest, ChoiceTable) {
  struct Case {
    bool local_enabled;
    std::string listen_addr;
    std::string upper;
    bool local_listening;
    std::string want_proxy;
    std::string want_probe_host;  // "" = must not probe
  };
  const Case cases[] = {
      {true, "0.0.0.0", "", true, "http://127.0.0.1:8082", "127.0.0.1"},
      {true, "0.0.0.0", "http://10.0.0.1:8082", true, "http://127.0.0.1:8082", "127.0.0.1"},
      {true, "0.0.0.0", "http://10.0.0.1:8082", false, "http://10.0.0.1:8082", "127.0.0.1"},
      {true, "0.0.0.0", "", false, "", "127.0.0.1"},
      {true, "::", "", false, "", "::1"},
      {true, "192.168.1.5", "", false, "", "192.168.1.5"},
      {false, "0.0.0.0", "http://10.0.0.1:8082", true, "http://10.0.0.1:8082", ""},
      {false, "0.0.0.0", "", true, "", ""},
  };
  for (const Case& c : cases) {
    config::ProxyInfo info;
    info.enable_local_ota_proxy = c.local_enabled;
    info.local_ota_proxy_listen_addr = c.listen_addr;
    info.upper_ota_proxy = c.upper;
    std::string probed_host;
    int probed_port = 0;
    const DownloadProxyChoice choice =
        ChooseDownloadProxy(info, [&](const std::string& host, int port) {
          probed_host = host;
          probed_port = port;
          return c.local_listening;
        });
    EXPECT_EQ(choice.proxy, c.want_proxy) << c.listen_addr << " " << c.upper;
    EXPECT_EQ(probed_host, c.want_probe_host);
    if (!c.want_probe_host.empty()) {
      EXPECT_EQ(probed_port, 8082);
    }
    EXPECT_FALSE(choice.reason.empty());
  }
}

OtaClientV2::StatusResponse Children(
    std::initializer_list<std::pair<std::string, OtaClientV2::StatusOta>> entries) {
  OtaClientV2::StatusResponse response;
  for (const auto& [id, status] : entries) {
    auto* entry = response.add_ecu_v2();
    entry->set_ecu_id(id);
    entry->set_ota_status(status);
  }
  return response;
}

TEST(ServiceDownloadProxyTest, FleetSucceededTable) {
  using OtaClientV2::FAILURE;
  using OtaClientV2::INITIALIZED;
  using OtaClientV2::SUCCESS;
  using OtaClientV2::UPDATING;
  const std::vector<std::string> ids = {"sub1", "sub2"};
  EXPECT_TRUE(FleetSucceeded(Children({{"sub1", SUCCESS}, {"sub2", SUCCESS}}), ids));
  // Not part of this update and never updated: fine.
  EXPECT_TRUE(FleetSucceeded(Children({{"sub1", SUCCESS}, {"sub2", INITIALIZED}}), ids));
  EXPECT_FALSE(FleetSucceeded(Children({{"sub1", SUCCESS}, {"sub2", FAILURE}}), ids));
  EXPECT_FALSE(FleetSucceeded(Children({{"sub1", UPDATING}, {"sub2", SUCCESS}}), ids));
  EXPECT_FALSE(FleetSucceeded(Children({{"sub1", SUCCESS}, {"sub2", OtaClientV2::ABORTED}}), ids));
  // A dropped (unreachable) ECU has no entry: not a success.
  EXPECT_FALSE(FleetSucceeded(Children({{"sub1", SUCCESS}}), ids));
  // An entry below the tree that is not in available_ecu_ids still has to be fine.
  EXPECT_FALSE(
      FleetSucceeded(Children({{"sub1", SUCCESS}, {"sub2", SUCCESS}, {"sub1a", FAILURE}}), ids));
  EXPECT_TRUE(FleetSucceeded(Children({}), {}));
}

TEST(ServiceDownloadProxyTest, FleetNotSucceededReasonNamesEachEcu) {
  using OtaClientV2::FAILURE;
  using OtaClientV2::SUCCESS;
  const std::vector<std::string> ids = {"sub1", "sub2", "sub1a"};
  EXPECT_EQ(FleetNotSucceededReason(
                Children({{"sub1", SUCCESS}, {"sub2", SUCCESS}, {"sub1a", SUCCESS}}), ids),
            "");
  EXPECT_EQ(FleetNotSucceededReason(Children({{"sub1", SUCCESS}, {"sub2", FAILURE}}), ids),
            "sub2 FAILURE, sub1a not reported");
}

TEST(ServiceDownloadProxyTest, PurgeOfAProxyThatIsNotThereIsUnavailableNamingTheUrl) {
  ::ota::testing::LoopbackSocket closed = Bound(0);  // ours, so nobody answers on it
  config::ProxyInfo info;
  info.enable_local_ota_proxy = true;
  info.local_ota_proxy_listen_addr = "0.0.0.0";
  info.local_ota_proxy_listen_port = closed.port;
  const absl::Status status = PurgeLocalOtaProxy(info, std::chrono::milliseconds(2000));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(
      status.message().find("http://127.0.0.1:" + std::to_string(closed.port) + "/_otaproxy/purge"),
      std::string::npos)
      << status;
  // Disabled: nothing is attempted (and nothing fails).
  info.enable_local_ota_proxy = false;
  PurgeLocalOtaProxyAfterFleetUpdate(info, Children({}), {});
}

}  // namespace
}  // namespace ota::service
