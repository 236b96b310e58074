// The process side of ClientUpdate (client_update.h stages the new binary): start the new
// otaclient as a child of this one, wait until it serves, supervise it.
//
//   - The caller still serves on its port, with SO_REUSEPORT under a PortLock whose fd the child
//     inherits as fd 4 (`--listen-lock-fd 4`), and with new connections steered to a second
//     listener (port_handover.h): the child listens on the same port and takes the new
//     connections from its listen() on; Status never goes unanswered.
//   - The child is `argv` with a readiness pipe as fd 3 (`--ready-fd 3` must be in argv): once
//     listening, the child writes its port there. Then it must answer Status on
//     `status_target` (through the shared port, so through the steering) with
//     `expected_version` as this ECU's otaclient_version; the caller then stops its own server.
//   - Anything else within `ready_timeout` (the child exits, closes the pipe without a port,
//     answers another version, does not answer) is a failure: the child's process group gets
//     SIGTERM, SIGKILL after a grace, it is reaped, and the error says what happened. The caller
//     never stopped serving.
// No polling with sleeps: the pipe, a pidfd and gRPC deadlines do the waiting.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "grpcpp/security/credentials.h"

namespace ota::service {

struct HandOverOptions {
  std::vector<std::string> argv;  // the new client's command line, binary first
  std::string status_target;      // "host:port" it must answer Status on
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // nullptr: insecure
  std::string ecu_id;
  std::string expected_version;
  std::chrono::milliseconds ready_timeout{30000};
  // The PortLock fd the child inherits as fd 4 (`--listen-lock-fd 4` in argv); -1: none.
  int lock_fd = -1;
};

// A started child otaclient. Destroying it stops the child (SIGTERM to its process group,
// SIGKILL after kStopGrace) and reaps it.
class ChildClient {
 public:
  static constexpr std::chrono::milliseconds kStopGrace{10000};
  ChildClient(pid_t pid, fs::UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  ChildClient(ChildClient&& other) noexcept;
  ChildClient& operator=(ChildClient&&) = delete;
  ChildClient(const ChildClient&) = delete;
  ChildClient& operator=(const ChildClient&) = delete;
  ~ChildClient();

  pid_t pid() const { return pid_; }
  // Readable once the child has exited.
  int exit_fd() const { return pidfd_.get(); }
  // Stops it (see the class comment); returns how it ended ("exit N" or "killed by signal N").
  std::string Stop();
  // Reaps an exited child; returns how it ended.
  std::string Reap();

 private:
  pid_t pid_ = -1;
  fs::UniqueFd pidfd_;
};

absl::StatusOr<std::unique_ptr<ChildClient>> StartNewClient(const HandOverOptions& options);

// The daemon's wake-ups while it supervises: `fd` is readable when one is pending and `read`
// takes it: kHandOverWake (another staged client update; ignored while one is supervised) or
// the number of the stop signal (SIGTERM, SIGINT).
struct WakeSource {
  static constexpr int kHandOverWake = 0;
  int fd = -1;
  std::function<int()> read;
};

// How a hand-over ended.
struct HandOverEnd {
  enum class Kind {
    kNotTakenOver,   // the new client did not come up (stopped again): the caller serves again
    kStopRequested,  // a stop signal came while the new client served: it was stopped
    kClientEnded,    // the new client ended by itself: the caller restarts (RestartArgv)
  };
  Kind kind = Kind::kNotTakenOver;
  absl::Status failure;   // kNotTakenOver: why
  int signal_number = 0;  // kStopRequested
  std::string ended;      // kStopRequested, kClientEnded: how the new client ended
};

// Blocks while `child` serves: until it ends (kClientEnded, reaped) or a stop signal arrives on
// `wake` (kStopRequested, the child stopped and reaped first).
HandOverEnd SuperviseNewClient(ChildClient& child, const WakeSource& wake);

// The whole hand-over, this process still serving (port_handover.h): StartNewClient(options),
// then `taken_over` with its result (OK: the new client serves, the caller stops its own server
// now; else why not, the caller serves on), then, when it serves, SuperviseNewClient.
HandOverEnd HandOverToNewClient(const HandOverOptions& options, const WakeSource& wake,
                                const std::function<void(const absl::Status&)>& taken_over);

// Replaces this process by `argv` (/proc/self/exe, so the installed binary even when its path
// changed); returns only when that fails.
absl::Status ExecSelf(const std::vector<std::string>& argv);

// `argv` of this process turned into the new client's: `binary` first, without the flags
// --listen-port, --port-file, --ready-fd, --listen-lock-fd and --dynamic-client (either form),
// then `--listen-port <port> --ready-fd 3 --listen-lock-fd 4 --dynamic-client`.
std::vector<std::string> NewClientArgv(const std::vector<std::string>& argv,
                                       const std::string& binary, int port);

// `argv` of this process for restarting it in place: without --listen-port, --ready-fd and
// --listen-lock-fd (either form), then `--listen-port <port>` (the port it had bound, also when it
// was 0).
std::vector<std::string> RestartArgv(const std::vector<std::string>& argv, int port);

}  // namespace ota::service
