// The seam between the log uploader (log_uploader.h: queue, thread, retry policy) and the
// network (network_transport.h: the logging server's gRPC and HTTP APIs). Unit tests put an
// in-process fake here (test/unit/telemetry/).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/log/log.h"

namespace ota::telemetry {

// One queued record: a log line (the deployed JSON line format, upload_line.h) or a metrics
// record (the JSON object as is).
struct UploadRecord {
  uint64_t seq = 0;  // order of arrival
  log::RecordType type = log::RecordType::kLog;
  log::Level level = log::Level::kInfo;
  std::string message;
};

// What became of one record.
enum class SendResult {
  kDelivered,    // the server took it
  kRejected,     // refused for good (ecu_id not allowed, empty, too large): dropped
  kUnconfirmed,  // no answer within the call's deadline: dropped, it may have arrived (sending it
                 // again would feed a slow server duplicates instead of draining the queue)
  kBusy,         // not taken, try later: the server's queue is full (SERVER_QUEUE_FULL, HTTP 503)
  kUnreachable,  // not delivered: no connection (refused, reset, cancelled); the uploader goes
                 // back to waiting for the server
};
std::string_view SendResultName(SendResult result);

// Deadlines of the deployed client.
inline constexpr std::chrono::milliseconds kCallTimeout{3000};   // one PutLog or POST
inline constexpr std::chrono::milliseconds kProbeTimeout{1000};  // the "server up" POST
inline constexpr std::chrono::milliseconds kCheckTimeout{3000};  // gRPC Check at connect

class UploadTransport {
 public:
  virtual ~UploadTransport() = default;
  // "grpc" or "http", for the log.
  virtual std::string_view name() const = 0;
  // Sends the records one after the other and returns their results, in order. It may stop
  // early and answer short: the records without a result were not tried and stay queued. It
  // stops after a kUnreachable (the rest would fail the same way), after a kUnconfirmed (a
  // stalled server: each further call would wait out its deadline too; the uploader's next turn
  // tries again) and once the cancel flag given to Connect is set (an interrupted call is
  // kUnreachable).
  virtual std::vector<SendResult> Send(std::span<const UploadRecord> records) = 0;
};

// How the uploader (re)connects, as the deployed client starts up: wait until the HTTP endpoint
// answers, then take gRPC if its Check answers, else HTTP.
class UploadConnector {
 public:
  virtual ~UploadConnector() = default;
  // True when the server's HTTP endpoint gives any HTTP answer to a POST with an empty body
  // within kProbeTimeout (the deployed server answers 400 to it).
  // Both return early (false / an HTTP transport) once `cancel` is set.
  virtual bool ServerAnswers(const std::atomic<bool>& cancel) = 0;
  // The transport to use now: gRPC when Check answers within kCheckTimeout, else HTTP. The
  // transport keeps a reference to `cancel`, which must outlive it.
  virtual std::unique_ptr<UploadTransport> Connect(const std::atomic<bool>& cancel) = 0;
  // Where it sends to, for the log ("grpc 127.0.0.1:8084, http http://127.0.0.1:8083/ecu").
  virtual std::string Describe() const = 0;
};

}  // namespace ota::telemetry
