// The log uploader's queue, thread and retry policy over an in-process transport (no gRPC, so
// this runs under ThreadSanitizer): arrival order, types, never blocking the logger, the bounds
// (count, bytes, the metrics' own queue), drop-oldest with its report, retries of busy and
// unreachable servers, no resending of unconfirmed or refused records, Flush and Stop deadlines.
// The real transports against a real server process: network_upload_test.cc.
#include "common/telemetry/log_uploader.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ota::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The server the fake transport talks to; the test scripts it.
class FakeServer {
 public:
  void SetUp(bool up) {
    std::lock_guard<std::mutex> lock(mu_);
    up_ = up;
    cv_.notify_all();
  }
  void SetBlocked(bool blocked) {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = blocked;
    cv_.notify_all();
  }
  // Results for the next records sent (after that: delivered while up, else unreachable).
  void Script(std::vector<SendResult> results) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.insert(script_.end(), results.begin(), results.end());
  }

  bool Answers() {
    std::lock_guard<std::mutex> lock(mu_);
    ++probes_;
    return up_;
  }
  void CountConnect() {
    std::lock_guard<std::mutex> lock(mu_);
    ++connects_;
  }

  SendResult Take(const UploadRecord& record, const std::atomic<bool>& cancel) {
    std::unique_lock<std::mutex> lock(mu_);
    ++attempts_;
    sending_ = true;
    cv_.notify_all();
    // A blocked (slow) server holds the call until unblocked or the uploader cancels it.
    while (blocked_ && !cancel.load()) cv_.wait_for(lock, milliseconds(5));
    sending_ = false;
    if (cancel.load()) return SendResult::kUnreachable;
    SendResult result = up_ ? SendResult::kDelivered : SendResult::kUnreachable;
    if (!script_.empty()) {
      result = script_.front();
      script_.pop_front();
    }
    if (result == SendResult::kDelivered || result == SendResult::kUnconfirmed) {
      received_.push_back(record);
    }
    cv_.notify_all();
    return result;
  }

  // Waits (bounded: a safety net) until `n` records were received.
  bool WaitReceived(size_t n, milliseconds limit = milliseconds(20000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return received_.size() >= n; });
  }
  bool WaitSending(milliseconds limit = milliseconds(20000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return sending_; });
  }
  std::vector<UploadRecord> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  int connects() {
    std::lock_guard<std::mutex> lock(mu_);
    return connects_;
  }
  int probes() {
    std::lock_guard<std::mutex> lock(mu_);
    return probes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = true;
  bool blocked_ = false;
  bool sending_ = false;
  std::deque<SendResult> script_;
  std::vector<UploadRecord> received_;
  int attempts_ = 0;
  int connects_ = 0;
  int probes_ = 0;
};

class FakeTransport final : public UploadTransport {
 public:
  FakeTransport(FakeServer* server, const std::atomic<bool>& cancel)
      : server_(server), cancel_(cancel) {}
  std::string_view name() const override { return "fake"; }
  std::vector<SendResult> Send(std::span<const UploadRecord> records) override {
    std::vector<SendResult> results;
    for (const UploadRecord& r : records) results.push_back(server_->Take(r, cancel_));
    return results;
  }

 private:
  FakeServer* server_;
  const std::atomic<bool>& cancel_;
};

class FakeConnector final : public UploadConnector {
 public:
  explicit FakeConnector(FakeServer* server) : server_(server) {}
  bool ServerAnswers(const std::atomic<bool>&) override { return server_->Answers(); }
  std::unique_ptr<UploadTransport> Connect(const std::atomic<bool>& cancel) override {
    server_->CountConnect();
    return std::make_unique<FakeTransport>(server_, cancel);
  }
  std::string Describe() const override { return "fake"; }

 private:
  FakeServer* server_;
};

LogUploaderOptions FastOptions() {
  LogUploaderOptions options;
  options.probe_interval = milliseconds(10);
  options.min_backoff = milliseconds(5);
  options.max_backoff = milliseconds(20);
  return options;
}

log::Record LogRecord(std::string_view text, log::Level level = log::Level::kInfo) {
  return log::Record{.type = log::RecordType::kLog,
                     .level = level,
                     .time = std::chrono::system_clock::now(),
                     .text = text,
                     .where = log::Where("/src/otaclient/update/x.cc", "Fn", 7)};
}

log::Record MetricsRecord(std::string_view json) {
  return log::Record{.type = log::RecordType::kMetrics,
                     .level = log::Level::kInfo,
                     .time = std::chrono::system_clock::now(),
                     .text = json,
                     .where = {}};
}

// The message of an uploaded log line.
std::string MessageOf(const UploadRecord& r) {
  const nlohmann::json line = nlohmann::json::parse(r.message, nullptr, false);
  if (!line.is_object() || !line.contains("message")) return "<not a log line: " + r.message + ">";
  return line["message"].get<std::string>();
}

std::vector<std::string> Messages(const std::vector<UploadRecord>& records) {
  std::vector<std::string> out;
  for (const UploadRecord& r : records) {
    out.push_back(r.type == log::RecordType::kMetrics ? "METRICS " + r.message : MessageOf(r));
  }
  return out;
}

// Polls `condition` until it holds (bounded: a safety net, not a wait).
template <typename Condition>
bool PollUntil(Condition condition, milliseconds limit = milliseconds(20000)) {
  const auto deadline = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

TEST(LogUploader, SendsEveryRecordInArrivalOrderWithItsType) {
  FakeServer server;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  for (int i = 0; i < 40; ++i) {
    uploader.Consume(LogRecord(StrCat("line ", i)));
    if (i == 19) uploader.Consume(MetricsRecord(R"({"ecu_id":"e"})"));
  }
  ASSERT_TRUE(server.WaitReceived(41));
  const std::vector<UploadRecord> got = server.received();
  std::vector<std::string> want;
  for (int i = 0; i < 40; ++i) {
    want.push_back(StrCat("line ", i));
    if (i == 19) want.push_back(R"(METRICS {"ecu_id":"e"})");
  }
  EXPECT_EQ(Messages(got), want);
  EXPECT_EQ(got[20].type, log::RecordType::kMetrics);
  EXPECT_EQ(got[20].message, R"({"ecu_id":"e"})");  // as is, not wrapped in a log line
  const nlohmann::json line = nlohmann::json::parse(got[0].message);
  EXPECT_EQ(line["level"], "INFO");
  EXPECT_EQ(line["function"], "Fn");
  EXPECT_EQ(line["line"], 7);
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().delivered == 41; }));
  const LogUploader::Stats stats = uploader.GetStats();
  EXPECT_EQ(stats.accepted, 41u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.transport, "fake");
}

// Through the logger itself: every line that passes the level reaches the sink with the place it
// was logged from, and a removed sink is not called again.
TEST(LogUploader, TheLoggerFeedsItThroughAScopedSink) {
  FakeServer server;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  // Its own "connected" line is logged before it reports connected: not seen by the sink.
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().connected; }));
  {
    log::ScopedSink sink(&uploader);
    ASSERT_TRUE(sink.installed());
    log::ScopedSink second(&uploader);
    EXPECT_FALSE(second.installed());  // one sink at a time
    log::Info("uploaded line", {{"key", "a value"}});
    log::Debug("below the level: not uploaded");
    log::Metrics(R"({"k":1})");
  }
  log::Info("after the sink was removed");
  ASSERT_TRUE(server.WaitReceived(2));
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().queued == 0; }));
  const std::vector<UploadRecord> got = server.received();
  ASSERT_EQ(got.size(), 2u);
  const nlohmann::json line = nlohmann::json::parse(got[0].message);
  EXPECT_EQ(line["message"], "uploaded line key=\"a value\"");
  EXPECT_EQ(line["logger"], "test.unit.telemetry.log_uploader_test");
  EXPECT_EQ(line["function"], "TestBody");
  EXPECT_GT(line["line"].get<int>(), 0);
  EXPECT_EQ(got[1].type, log::RecordType::kMetrics);
  EXPECT_EQ(got[1].message, R"({"k":1})");
}

// A server that never answers a call must not slow down anything that logs: Consume only queues.
TEST(LogUploader, LoggingNeverWaitsForABlockedServer) {
  FakeServer server;
  server.SetBlocked(true);
  LogUploaderOptions options = FastOptions();
  options.max_records = 100;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  uploader.Consume(LogRecord("first"));
  ASSERT_TRUE(server.WaitSending());  // the uploader thread is now stuck in a call
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&uploader, t] {
      for (int i = 0; i < 5000; ++i) uploader.Consume(LogRecord(StrCat("t", t, " line ", i)));
    });
  }
  for (std::thread& t : threads) t.join();
  const auto took = Clock::now() - start;
  // 20,000 lines queued (or dropped) while the one call never returned.
  EXPECT_LT(took, std::chrono::seconds(10));
  const LogUploader::Stats stats = uploader.GetStats();
  EXPECT_EQ(stats.accepted, 20001u);
  EXPECT_EQ(stats.queued, 100u);
  EXPECT_EQ(stats.dropped, 20001u - 100u);
  EXPECT_EQ(stats.delivered, 0u);
  server.SetBlocked(false);
  // The in-flight "first" was dropped from the queue meanwhile, but it is still delivered.
  ASSERT_TRUE(server.WaitReceived(101));
}

// During an outage the queue keeps the newest records within both bounds; once the server
// answers they go out, followed by a warning that says how many were dropped.
TEST(LogUploader, AFullQueueDropsTheOldestAndReportsHowMany) {
  FakeServer server;
  server.SetUp(false);
  LogUploaderOptions options = FastOptions();
  options.max_records = 10;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  // The second probe comes after the "does not answer" line of the first: that line is logged
  // before the sink is installed below.
  ASSERT_TRUE(PollUntil([&] { return server.probes() >= 2; }));
  for (int i = 0; i < 25; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  LogUploader::Stats stats = uploader.GetStats();
  EXPECT_EQ(stats.queued, 10u);
  EXPECT_EQ(stats.dropped, 15u);
  EXPECT_FALSE(stats.connected);
  EXPECT_FALSE(uploader.Flush(milliseconds(5000)));  // not connected: returns at once

  // The uploader's own lines go through the logger like any other: its "connected" line is
  // queued behind the ten, into the full queue, and pushes out one more ("line 15").
  log::ScopedSink sink(&uploader);
  server.SetUp(true);
  ASSERT_TRUE(server.WaitReceived(10));
  std::vector<std::string> want;
  for (int i = 16; i < 25; ++i) want.push_back(StrCat("line ", i));
  want.push_back("log upload: connected transport=fake server=fake");
  std::vector<std::string> got = Messages(server.received());
  got.resize(10);
  EXPECT_EQ(got, want);
  // Then the report of what was dropped, once records flow again.
  ASSERT_TRUE(server.WaitReceived(11));
  EXPECT_THAT(Messages(server.received())[10],
              ::testing::AllOf(::testing::StartsWith("log upload: records dropped"),
                               ::testing::EndsWith(" dropped=16")));
}

TEST(LogUploader, TheByteBoundHoldsForLongLinesWhichAreCut) {
  FakeServer server;
  server.SetUp(false);
  LogUploaderOptions options = FastOptions();
  options.max_bytes = 64 << 10;
  options.max_text_bytes = 4 << 10;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  const std::string long_text(100 << 10, 'x');
  for (int i = 0; i < 100; ++i) uploader.Consume(LogRecord(long_text));
  const LogUploader::Stats stats = uploader.GetStats();
  EXPECT_LE(stats.queued_bytes, options.max_bytes);
  EXPECT_GT(stats.queued, 10u);  // each line was cut to ~4 KiB first
  EXPECT_EQ(stats.queued + stats.dropped, 100u);
  server.SetUp(true);
  ASSERT_TRUE(server.WaitReceived(1));
  const std::string message = MessageOf(server.received()[0]);
  EXPECT_EQ(message,
            StrCat(std::string(4 << 10, 'x'), "…[", (100 << 10) - (4 << 10), " bytes cut]"));
}

// Metrics records have their own queue: a flood of log lines during an outage cannot push a
// session's record out.
TEST(LogUploader, MetricsSurviveALogFlood) {
  FakeServer server;
  server.SetUp(false);
  LogUploaderOptions options = FastOptions();
  options.max_records = 5;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  uploader.Consume(MetricsRecord(R"({"session":1})"));
  for (int i = 0; i < 1000; ++i) uploader.Consume(LogRecord(StrCat("flood ", i)));
  EXPECT_EQ(uploader.GetStats().queued, 6u);
  server.SetUp(true);
  ASSERT_TRUE(server.WaitReceived(6));
  const std::vector<UploadRecord> got = server.received();
  ASSERT_EQ(got[0].type, log::RecordType::kMetrics);  // the oldest of what was kept
  EXPECT_EQ(got[0].message, R"({"session":1})");
}

TEST(LogUploader, BusyRecordsAreRetriedInOrderAndNotDuplicated) {
  FakeServer server;
  server.Script({SendResult::kBusy, SendResult::kBusy, SendResult::kBusy});
  LogUploaderOptions options = FastOptions();
  options.batch = 1;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  uploader.Consume(LogRecord("a"));
  uploader.Consume(LogRecord("b"));
  ASSERT_TRUE(server.WaitReceived(2));
  EXPECT_EQ(Messages(server.received()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(server.attempts(), 5);  // "a" three times busy, then both
  EXPECT_EQ(server.connects(), 1);  // busy is no reason to reconnect
}

// No answer within the deadline: the record may have arrived, so it is not sent again (a slow
// server would otherwise get every record many times and the queue would never drain). A
// refusal is final too.
TEST(LogUploader, UnconfirmedAndRejectedRecordsAreNotSentAgain) {
  FakeServer server;
  server.Script({SendResult::kUnconfirmed, SendResult::kRejected});
  LogUploaderOptions options = FastOptions();
  options.batch = 1;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), options);
  uploader.Consume(LogRecord("slow"));
  uploader.Consume(LogRecord("refused"));
  uploader.Consume(LogRecord("fine"));
  ASSERT_TRUE(server.WaitReceived(2));  // "slow" (unconfirmed) and "fine"
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().queued == 0; }));
  EXPECT_EQ(Messages(server.received()), (std::vector<std::string>{"slow", "fine"}));
  EXPECT_EQ(server.attempts(), 3);
  const LogUploader::Stats stats = uploader.GetStats();
  EXPECT_EQ(stats.unconfirmed, 1u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.delivered, 1u);
}

// A lost server: records are kept, the uploader waits for the server to answer, connects again
// and sends them.
TEST(LogUploader, ALostServerIsWaitedForAndUploadResumes) {
  FakeServer server;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  uploader.Consume(LogRecord("before"));
  ASSERT_TRUE(server.WaitReceived(1));
  server.SetUp(false);
  uploader.Consume(LogRecord("during 1"));
  uploader.Consume(LogRecord("during 2"));
  ASSERT_TRUE(PollUntil([&] { return !uploader.GetStats().connected; }));
  const int probes = server.probes();
  ASSERT_TRUE(PollUntil([&] { return server.probes() > probes + 2; }));  // it keeps asking
  EXPECT_EQ(uploader.GetStats().queued, 2u);
  server.SetUp(true);
  ASSERT_TRUE(server.WaitReceived(3));
  EXPECT_EQ(Messages(server.received()),
            (std::vector<std::string>{"before", "during 1", "during 2"}));
  EXPECT_EQ(server.connects(), 2);
}

TEST(LogUploader, FlushWaitsForWhatWasQueuedBeforeIt) {
  FakeServer server;
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().connected; }));
  for (int i = 0; i < 50; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  EXPECT_TRUE(uploader.Flush(milliseconds(20000)));
  EXPECT_GE(server.received().size(), 50u);
  // A server that takes nothing now: Flush gives up after its timeout.
  server.SetBlocked(true);
  uploader.Consume(LogRecord("stuck"));
  const auto start = Clock::now();
  EXPECT_FALSE(uploader.Flush(milliseconds(200)));
  EXPECT_GE(Clock::now() - start, milliseconds(200));
  server.SetBlocked(false);
}

// Stop ends a call in flight once the drain time is over: a hung server cannot hold up the
// shutdown of otaclient.
TEST(LogUploader, StopInterruptsAHungServerAfterTheDrainTime) {
  FakeServer server;
  server.SetBlocked(true);
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  for (int i = 0; i < 10; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  ASSERT_TRUE(server.WaitSending());
  const auto start = Clock::now();
  uploader.Stop(milliseconds(300));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(uploader.GetStats().dropped, 10u);
  uploader.Consume(LogRecord("after stop"));  // ignored, no crash
  EXPECT_EQ(uploader.GetStats().queued, 0u);
}

TEST(LogUploader, StopSendsWhatIsQueuedWithinTheDrainTime) {
  FakeServer server;
  server.SetBlocked(true);
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  for (int i = 0; i < 30; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  ASSERT_TRUE(server.WaitSending());
  std::thread stopper([&] { uploader.Stop(std::chrono::seconds(20)); });
  // Stopping has begun once the uploader takes no more records.
  ASSERT_TRUE(PollUntil([&] {
    const uint64_t accepted = uploader.GetStats().accepted;
    uploader.Consume(LogRecord("probe"));
    return uploader.GetStats().accepted == accepted;
  }));
  server.SetBlocked(false);  // the server answers again while Stop drains
  stopper.join();
  const LogUploader::Stats stats = uploader.GetStats();
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.delivered, stats.accepted);
  EXPECT_EQ(server.received().size(), stats.accepted);
  EXPECT_GE(stats.accepted, 30u);
}

TEST(LogUploader, StopWithoutAServerReturnsAtOnce) {
  FakeServer server;
  server.SetUp(false);
  LogUploader uploader(std::make_unique<FakeConnector>(&server), FastOptions());
  uploader.Consume(LogRecord("never sent"));
  ASSERT_TRUE(PollUntil([&] { return server.probes() >= 1; }));
  const auto start = Clock::now();
  uploader.Stop(std::chrono::seconds(10));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(uploader.GetStats().dropped, 1u);
}

}  // namespace
}  // namespace ota::telemetry
