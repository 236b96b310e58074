// otactl's pure parts: rows from a StatusResponse, exit codes, formatting, request building.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "tools/otactl/status_view.h"
#include "tools/otactl/update_request.h"

namespace ota::otactl {
namespace {

TEST(OtactlHumanBytesTest, Table) {
  const std::pair<uint64_t, std::string> cases[] = {
      {0, "0 B"},
      {1, "1 B"},
      {1023, "1023 B"},
      {1024, "1.0 KiB"},
      {1536, "1.5 KiB"},
      {1024 * 1024 - 1, "1024.0 KiB"},
      {1024 * 1024, "1.0 MiB"},
      {uint64_t{3} << 30, "3.0 GiB"},
      {UINT64_MAX, "16.0 EiB"},
  };
  for (const auto& [bytes, text] : cases) EXPECT_EQ(HumanBytes(bytes), text) << bytes;
}

TEST(OtactlHumanDurationTest, Table) {
  const std::pair<uint64_t, std::string> cases[] = {
      {0, "0s"},        {59, "59s"},     {60, "1m00s"},   {182, "3m02s"},
      {3599, "59m59s"}, {3600, "1h00m"}, {3900, "1h05m"}, {360000, "100h00m"},
  };
  for (const auto& [seconds, text] : cases) EXPECT_EQ(HumanDuration(seconds), text) << seconds;
}

TEST(OtactlProgressBarTest, ClampsAndFills) {
  EXPECT_EQ(ProgressBar(0, 4), "[....]");
  EXPECT_EQ(ProgressBar(50, 4), "[##..]");
  EXPECT_EQ(ProgressBar(100, 4), "[####]");
  EXPECT_EQ(ProgressBar(250, 4), "[####]");
  EXPECT_EQ(ProgressBar(-3, 4), "[....]");
}

OtaClientV2::StatusResponseEcuV2 V2(const std::string& id, OtaClientV2::StatusOta status) {
  OtaClientV2::StatusResponseEcuV2 ecu;
  ecu.set_ecu_id(id);
  ecu.set_ota_status(status);
  ecu.set_firmware_version("1.0");
  return ecu;
}

TEST(OtactlRowsTest, V2UpdatingRowHasProgressAndDownloadFigures) {
  OtaClientV2::StatusResponse response;
  auto* ecu = response.add_ecu_v2();
  *ecu = V2("main", OtaClientV2::UPDATING);
  auto* u = ecu->mutable_update_status();
  u->set_update_firmware_version("2.0");
  u->set_phase(OtaClientV2::DOWNLOADING_OTA_FILES);
  u->set_total_files_size_uncompressed(1000);
  u->set_processed_files_size(100);
  u->set_total_download_files_size(800);
  u->set_downloaded_files_size(200);
  u->set_downloaded_bytes(150);
  u->mutable_downloading_elapsed_time()->set_seconds(2);
  const auto rows = RowsFromResponse(response);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].ecu_id, "main");
  EXPECT_EQ(rows[0].phase, "DOWNLOADING_OTA_FILES");
  EXPECT_EQ(rows[0].update_version, "2.0");
  ASSERT_TRUE(rows[0].percent.has_value());
  // While downloading: downloaded 200 of 800 bytes, not the 250 of 1000 bytes in place.
  EXPECT_DOUBLE_EQ(*rows[0].percent, 25.0);
  EXPECT_TRUE(rows[0].downloading);
  EXPECT_EQ(rows[0].download_elapsed_ms, 2000u);

  SpeedTracker speeds;
  // First sample: the average over the download phase, 150 B in 2 s.
  EXPECT_DOUBLE_EQ(*speeds.Update(rows[0], 10'000), 75.0);
  // Next poll one second later with 1150 B: live rate.
  EcuRow later = rows[0];
  later.downloaded_bytes = 1150;
  EXPECT_DOUBLE_EQ(*speeds.Update(later, 11'000), 1000.0);

  const std::string table = RenderTable(rows, {{"main", 75.0}}, RenderOptions{});
  EXPECT_NE(table.find("UPDATING"), std::string::npos) << table;
  EXPECT_NE(table.find("1.0 -> 2.0"), std::string::npos) << table;
  EXPECT_NE(table.find("25.0%"), std::string::npos) << table;
  EXPECT_NE(table.find("200 B / 800 B"), std::string::npos) << table;
  EXPECT_NE(table.find("75 B/s"), std::string::npos) << table;
  // 600 B left at 100 B/s (uncompressed rate) → 6 s.
  EXPECT_NE(table.find(" 6s"), std::string::npos) << table;
  const std::string with_bars = RenderTable(rows, {}, RenderOptions{.progress_bars = true});
  EXPECT_NE(with_bars.find("[#####...............] 25.0%"), std::string::npos) << with_bars;

  // After the download, progress is the share of bytes in place on the standby.
  u->set_phase(OtaClientV2::APPLYING_UPDATE);
  const auto applying = RowsFromResponse(response);
  EXPECT_DOUBLE_EQ(*applying[0].percent, 10.0);
  EXPECT_FALSE(applying[0].downloading);
  const std::string applying_table = RenderTable(applying, {{"main", 75.0}}, RenderOptions{});
  EXPECT_EQ(applying_table.find("B/s"), std::string::npos) << applying_table;
}

TEST(OtactlRowsTest, FailureReasonIsShownOnOneLine) {
  OtaClientV2::StatusResponse response;
  auto* ecu = response.add_ecu_v2();
  *ecu = V2("sub", OtaClientV2::FAILURE);
  ecu->set_failure_type(OtaClientV2::RECOVERABLE);
  ecu->set_failure_reason("line one\nline two");
  const auto rows = RowsFromResponse(response);
  const std::string table = RenderTable(rows, {}, RenderOptions{});
  EXPECT_NE(table.find("line one line two"), std::string::npos) << table;
  EXPECT_EQ(ExitCodeForRows(rows), kExitFailed);
}

TEST(OtactlRowsTest, FallsBackToV1ViewForOldDaemons) {
  OtaClientV2::StatusResponse response;
  auto* ecu = response.add_ecu();
  ecu->set_ecu_id("old");
  ecu->mutable_status()->set_status(OtaClientV2::UPDATING);
  ecu->mutable_status()->set_version("0.9");
  auto* p = ecu->mutable_status()->mutable_progress();
  p->set_phase(OtaClientV2::REGULAR);
  p->set_total_regular_file_size(400);
  p->set_file_size_processed_copy(100);
  p->set_file_size_processed_download(100);
  const auto rows = RowsFromResponse(response);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, OtaClientV2::UPDATING);
  EXPECT_EQ(rows[0].version, "0.9");
  EXPECT_EQ(rows[0].phase, "REGULAR");
  EXPECT_DOUBLE_EQ(*rows[0].percent, 50.0);
}

TEST(OtactlExitCodeTest, InProgressWinsThenFailureThenOk) {
  struct Case {
    std::vector<OtaClientV2::StatusOta> statuses;
    int code;
  };
  const Case cases[] = {
      {{}, kExitOk},
      {{OtaClientV2::SUCCESS, OtaClientV2::INITIALIZED}, kExitOk},
      {{OtaClientV2::SUCCESS, OtaClientV2::FAILURE}, kExitFailed},
      {{OtaClientV2::ROLLBACK_FAILURE}, kExitFailed},
      {{OtaClientV2::ABORTED}, kExitFailed},
      {{OtaClientV2::FAILURE, OtaClientV2::UPDATING}, kExitInProgress},
      {{OtaClientV2::ROLLBACKING}, kExitInProgress},
      {{OtaClientV2::CLIENT_UPDATING}, kExitInProgress},
      {{OtaClientV2::ABORTING}, kExitInProgress},
  };
  for (const Case& c : cases) {
    std::vector<EcuRow> rows;
    for (auto status : c.statuses) {
      EcuRow row;
      row.status = status;
      rows.push_back(row);
    }
    EXPECT_EQ(ExitCodeForRows(rows), c.code) << c.statuses.size();
  }
}

TEST(OtactlUpdateArgsTest, EachEcuStartsAnEntry) {
  auto request = UpdateRequestFromArgs(
      {"--ecu", "main", "--version", "2.0", "--url", "https://s/img", "--cookies", "{\"a\":\"b\"}",
       "--release-name=r1", "--ecu", "sub", "--url=http://s/img2", "--version", "2.1", "--image-id",
       "i2", "--release-id", "rid"});
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->ecu_size(), 2);
  EXPECT_EQ(request->ecu(0).ecu_id(), "main");
  EXPECT_EQ(request->ecu(0).version(), "2.0");
  EXPECT_EQ(request->ecu(0).url(), "https://s/img");
  EXPECT_EQ(request->ecu(0).cookies(), "{\"a\":\"b\"}");
  EXPECT_EQ(request->ecu(0).release_name(), "r1");
  EXPECT_EQ(request->ecu(1).ecu_id(), "sub");
  EXPECT_EQ(request->ecu(1).version(), "2.1");
  EXPECT_EQ(request->ecu(1).url(), "http://s/img2");
  EXPECT_EQ(request->ecu(1).cookies(), "");
  EXPECT_EQ(request->ecu(1).image_id(), "i2");
  EXPECT_EQ(request->ecu(1).release_id(), "rid");
}

TEST(OtactlUpdateArgsTest, CookiesFromFile) {
  auto dir = fs::TempDir::Create("otactl-test");
  ASSERT_TRUE(dir.ok());
  const auto file = dir->path() / "cookies.json";
  ASSERT_TRUE(fs::WriteFileAtomic(file, "{\"CloudFront-Policy\": \"p=1\"}\n").ok());
  auto request = UpdateRequestFromArgs(
      {"--ecu", "e", "--version", "1", "--url", "http://h/", "--cookies", "@" + file.string()});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->ecu(0).cookies(), "{\"CloudFront-Policy\": \"p=1\"}");
  auto missing = UpdateRequestFromArgs({"--ecu", "e", "--version", "1", "--url", "http://h/",
                                        "--cookies", "@" + (dir->path() / "nope").string()});
  EXPECT_FALSE(missing.ok());
}

TEST(OtactlUpdateArgsTest, RejectsBadCommandLines) {
  struct Case {
    std::vector<std::string> args;
    std::string message_part;
  };
  const Case cases[] = {
      {{}, "no ECU given"},
      {{"--version", "1"}, "before any --ecu"},
      {{"--ecu"}, "needs a value"},
      {{"--ecu", "e", "--url", "http://h/"}, "missing version"},
      {{"--ecu", "e", "--version", "1"}, "missing url"},
      {{"--ecu", "e", "--version", "1", "--url", "ftp://h/"}, "http:// or https://"},
      {{"--ecu", "e", "--version", "1", "--url", "h/"}, "http:// or https://"},
      {{"--ecu", "e", "--version", "1", "--url", "http://h/", "--cookies", "{"}, "not valid JSON"},
      {{"--ecu", "e", "--version", "1", "--url", "http://h/", "--cookies", "[]"}, "JSON object"},
      {{"--ecu", "e", "--version", "1", "--url", "http://h/", "--cookies", "{\"a\":1}"},
       "string value"},
      {{"--ecu", "e", "--version", "1", "--version", "2", "--url", "http://h/"}, "given twice"},
      {{"--ecu", "e", "--version", "1", "--url", "http://h/", "--ecu", "e", "--version", "1",
        "--url", "http://h/"},
       "listed twice"},
      {{"--ecu", "e", "--bogus", "x"}, "unknown update option"},
      {{"--ecu", "", "--version", "1", "--url", "http://h/"}, "ecu_id is empty"},
  };
  for (const Case& c : cases) {
    auto request = UpdateRequestFromArgs(c.args);
    ASSERT_FALSE(request.ok()) << c.message_part;
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(request.status().message().find(c.message_part), absl::string_view::npos)
        << request.status();
  }
}

TEST(OtactlUpdateYamlTest, ReadsEntriesWithJsonOrMappingCookies) {
  const char* yaml = R"(- ecu_id: main
  version: "2.0"
  url: https://s/img
  cookies: {CloudFront-Policy: "x=y", CloudFront-Signature: sig}
  release_name: rel
- ecu_id: sub
  version: '2.1'
  url: http://s/img
  cookies: '{"k": "v"}'
- ecu_id: third
  version: 3
  url: http://s/img
  cookies: ~
)";
  auto request = UpdateRequestFromYaml(yaml, "req.yaml");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->ecu_size(), 3);
  EXPECT_EQ(request->ecu(0).cookies(),
            R"({"CloudFront-Policy":"x=y","CloudFront-Signature":"sig"})");
  EXPECT_EQ(request->ecu(0).release_name(), "rel");
  EXPECT_EQ(request->ecu(1).version(), "2.1");
  EXPECT_EQ(request->ecu(1).cookies(), R"({"k": "v"})");
  EXPECT_EQ(request->ecu(2).version(), "3");
  EXPECT_EQ(request->ecu(2).cookies(), "");
}

TEST(OtactlUpdateYamlTest, NastyInputsGiveFileAndLine) {
  struct Case {
    std::string yaml;
    std::string message_part;
  };
  const Case cases[] = {
      {"", "non-empty list"},
      {"ecu_id: main\n", "non-empty list"},
      {"- [a, b]\n", "req.yaml:1: entry 1: expected a mapping"},
      {"- ecu_id: a\n  version: 1\n  url: http://h/\n- ecu_id: b\n  url: http://h/\n",
       "req.yaml:4: entry 2: ECU b: missing version"},
      {"- ecu_id: a\n  version: 1\n  url: http://h/\n  colour: red\n",
       "req.yaml:4: unknown field \"colour\""},
      {"- ecu_id: a\n  version: 1\n  version: 2\n  url: http://h/\n",
       "req.yaml:3: field \"version\" given twice"},
      {"- ecu_id: a\n  version: [1]\n  url: http://h/\n",
       "req.yaml:2: field \"version\" must be a string"},
      {"- ecu_id: a\n  version: 1\n  url: http://h/\n  cookies: {a: [1]}\n",
       "req.yaml:4: cookie \"a\" must be a string"},
      {"- ecu_id: a\n  version: 1\n  url: http://h/\n  cookies: 'not json'\n", "not valid JSON"},
      {"- ecu_id: a\n  version: 1\n  url: http://h/\n  cookies: {a: \"\\xff\"}\n",
       "req.yaml:4: cookie names and values must be printable ASCII"},
      {"- ecu_id: a\n  version: \"1\n", "req.yaml:"},
      {"- {ecu_id: a, version: 1, url: http://h/}\n- {ecu_id: a, version: 1, url: http://h/}\n",
       "listed twice"},
      {std::string("- ecu_id: a\x00\n", 14), "req.yaml"},
  };
  for (const Case& c : cases) {
    auto request = UpdateRequestFromYaml(c.yaml, "req.yaml");
    ASSERT_FALSE(request.ok()) << c.yaml;
    EXPECT_NE(request.status().message().find(c.message_part), absl::string_view::npos)
        << "yaml: " << c.yaml << "\nstatus: " << request.status();
  }
}

}  // namespace
}  // namespace ota::otactl
