#include "otaclient/service/client_handover.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "grpcpp/create_channel.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::service {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kReadyFd = 3;
constexpr int kLockFd = 4;
constexpr std::chrono::seconds kExitGrace{5};

std::string DescribeWait(int wstatus) {
  if (WIFEXITED(wstatus)) return StrCat("exit ", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return StrCat("killed by signal ", WTERMSIG(wstatus));
  return "ended";
}

// Waits until `fd` is readable or `deadline`; false on timeout.
bool WaitReadable(int fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// The child's ready pipe until EOF or the deadline: what it wrote.
absl::StatusOr<std::string> ReadReady(int fd, Clock::time_point deadline) {
  std::string got;
  char buf[64];
  for (;;) {
    if (!WaitReadable(fd, deadline)) {
      return absl::DeadlineExceededError("it did not report listening in time");
    }
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "reading the ready pipe");
    if (n == 0) return got;
    got.append(buf, static_cast<size_t>(n));
    if (got.size() > 32) return absl::InvalidArgumentError("it wrote garbage to the ready pipe");
    if (got.find('\n') != std::string::npos) return got;
  }
}

absl::Status CheckServes(const HandOverOptions& options, Clock::time_point deadline) {
  auto channel = grpc::CreateChannel(
      options.status_target,
      options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials());
  auto stub = OtaClientV2::OtaClientService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Clock::now()));
  context.set_wait_for_ready(true);
  OtaClientV2::StatusRequest request;
  OtaClientV2::StatusResponse response;
  const grpc::Status status = stub->Status(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(StrCat("it does not answer Status on ", options.status_target,
                                         ": ", status.error_message()));
  }
  for (const auto& ecu : response.ecu_v2()) {
    if (ecu.ecu_id() != options.ecu_id) continue;
    if (ecu.otaclient_version() != options.expected_version) {
      return absl::InvalidArgumentError(StrCat("it reports otaclient_version \"",
                                               ecu.otaclient_version().substr(0, 100),
                                               "\", expected \"", options.expected_version, "\""));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(StrCat("its Status has no entry for ECU ", options.ecu_id));
}

}  // namespace

ChildClient::ChildClient(ChildClient&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}

ChildClient::~ChildClient() {
  if (pid_ > 0) Stop();
}

std::string ChildClient::Reap() {
  int wstatus = 0;
  pid_t r = -1;
  do {
    r = ::waitpid(pid_, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  pid_ = -1;
  return r < 0 ? StrCat("waitpid: ", ErrnoText(errno)) : DescribeWait(wstatus);
}

std::string ChildClient::Stop() {
  if (pid_ <= 0) return "not running";
  ::kill(-pid_, SIGTERM);
  if (!WaitReadable(pidfd_.get(), Clock::now() + kStopGrace)) {
    log::Warning("the new otaclient did not stop in time: killing it", {{"pid", StrCat(pid_)}});
    ::kill(-pid_, SIGKILL);
  }
  return Reap();
}

namespace {

// argv[1..] without the flags named (each taking a value, "--flag value" or "--flag=value") and
// the switches named.
std::vector<std::string> ArgsWithout(const std::vector<std::string>& argv,
                                     std::initializer_list<std::string_view> with_value,
                                     std::initializer_list<std::string_view> switches) {
  std::vector<std::string> out;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    bool drop = std::find(switches.begin(), switches.end(), a) != switches.end();
    for (std::string_view flag : with_value) {
      if (a == flag) {
        drop = true;
        ++i;  // and its value
        break;
      }
      if (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=') drop = true;
    }
    if (!drop) out.push_back(a);
  }
  return out;
}

}  // namespace

std::vector<std::string> NewClientArgv(const std::vector<std::string>& argv,
                                       const std::string& binary, int port) {
  std::vector<std::string> out{binary};
  for (std::string& a :
       ArgsWithout(argv, {"--listen-port", "--port-file", "--ready-fd", "--listen-lock-fd"},
                   {"--dynamic-client"})) {
    out.push_back(std::move(a));
  }
  for (std::string a :
       {std::string("--listen-port"), StrCat(port), std::string("--ready-fd"), StrCat(kReadyFd),
        std::string("--listen-lock-fd"), StrCat(kLockFd), std::string("--dynamic-client")}) {
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::string> RestartArgv(const std::vector<std::string>& argv, int port) {
  std::vector<std::string> out{argv.empty() ? std::string("otaclient") : argv[0]};
  for (std::string& a :
       ArgsWithout(argv, {"--listen-port", "--ready-fd", "--listen-lock-fd"}, {})) {
    out.push_back(std::move(a));
  }
  out.emplace_back("--listen-port");
  out.push_back(StrCat(port));
  return out;
}

absl::StatusOr<std::unique_ptr<ChildClient>> StartNewClient(const HandOverOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("no command line");
  const Clock::time_point deadline = Clock::now() + options.ready_timeout;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  fs::UniqueFd ready_read(fds[0]);
  // Both fds the child gets above the numbers they move to (3, 4), so neither overwrites the
  // other.
  fs::UniqueFd ready_write(::fcntl(fds[1], F_DUPFD_CLOEXEC, kLockFd + 1));
  ::close(fds[1]);
  if (!ready_write.valid()) return ErrnoStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
  fs::UniqueFd lock;
  if (options.lock_fd >= 0) {
    lock = fs::UniqueFd(::fcntl(options.lock_fd, F_DUPFD_CLOEXEC, kLockFd + 1));
    if (!lock.valid()) return ErrnoStatus(errno, "fcntl(F_DUPFD_CLOEXEC) of the listen lock");
  }
  const int lock_fd = lock.get();

  std::vector<char*> args;
  args.reserve(options.argv.size() + 1);
  for (const std::string& a : options.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int write_fd = ready_write.get();

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::setpgid(0, 0);
    if (::dup2(write_fd, kReadyFd) < 0) ::_exit(127);
    if (lock_fd >= 0 && ::dup2(lock_fd, kLockFd) < 0) ::_exit(127);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // either side may win; both set the same group
  ready_write.Reset();
  lock.Reset();
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int err = errno;
    ::kill(-pid, SIGKILL);
    int ignored = 0;
    ::waitpid(pid, &ignored, 0);
    return ErrnoStatus(err, "pidfd_open of the new otaclient");
  }
  auto child = std::make_unique<ChildClient>(pid, fs::UniqueFd(pidfd));
  log::Info(
      "new otaclient started",
      {{"pid", StrCat(pid)}, {"binary", options.argv[0]}, {"version", options.expected_version}});

  auto fail = [&](const absl::Status& why) -> absl::Status {
    const std::string ended = child->Stop();
    return absl::Status(why.code(), StrCat("the new otaclient ", options.expected_version, " (",
                                           options.argv[0], ") did not take over: ", why.message(),
                                           "; it was stopped (", ended, ")"));
  };
  absl::StatusOr<std::string> ready = ReadReady(ready_read.get(), deadline);
  if (!ready.ok()) return fail(ready.status());
  if (ready->empty()) {
    // EOF without a port: it exited (or closed the pipe) before listening. The pipe closes
    // while it exits, a moment before its exit is visible: wait for that (bounded).
    if (WaitReadable(child->exit_fd(), std::min(deadline, Clock::now() + kExitGrace))) {
      const std::string ended = child->Reap();
      return absl::UnavailableError(StrCat("the new otaclient ", options.expected_version, " (",
                                           options.argv[0], ") ended before serving (", ended,
                                           ")"));
    }
    return fail(absl::UnavailableError("it closed its ready pipe without listening"));
  }
  if (absl::Status serves = CheckServes(options, deadline); !serves.ok()) return fail(serves);
  log::Info("the new otaclient serves", {{"pid", StrCat(pid)},
                                         {"version", options.expected_version},
                                         {"listen", options.status_target}});
  return child;
}

HandOverEnd SuperviseNewClient(ChildClient& child, const WakeSource& wake) {
  HandOverEnd end;
  pollfd waits[2] = {{wake.fd, POLLIN, 0}, {child.exit_fd(), POLLIN, 0}};
  for (;;) {
    if (::poll(waits, 2, -1) < 0) {
      if (errno == EINTR) continue;
      // Cannot wait any more: treat it as a stop (the child is stopped, the caller exits).
      log::Error("poll while supervising the new otaclient", {{"error", ErrnoText(errno)}});
      end.kind = HandOverEnd::Kind::kStopRequested;
      end.signal_number = SIGTERM;
      end.ended = child.Stop();
      return end;
    }
    if ((waits[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      end.kind = HandOverEnd::Kind::kClientEnded;
      end.ended = child.Reap();
      return end;
    }
    if ((waits[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const int byte = wake.read();
      if (byte == WakeSource::kHandOverWake) continue;
      log::Info("stopping the new otaclient", {{"pid", StrCat(child.pid())}});
      end.kind = HandOverEnd::Kind::kStopRequested;
      end.signal_number = byte;
      end.ended = child.Stop();
      log::Info("the new otaclient stopped", {{"ended", end.ended}});
      return end;
    }
  }
}

HandOverEnd HandOverToNewClient(const HandOverOptions& options, const WakeSource& wake,
                                const std::function<void(const absl::Status&)>& taken_over) {
  absl::StatusOr<std::unique_ptr<ChildClient>> child = StartNewClient(options);
  taken_over(child.status());
  if (!child.ok()) {
    HandOverEnd end;
    end.kind = HandOverEnd::Kind::kNotTakenOver;
    end.failure = child.status();
    return end;
  }
  return SuperviseNewClient(**child, wake);
}

absl::Status ExecSelf(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("no command line");
  std::vector<char*> exec_argv;
  exec_argv.reserve(argv.size() + 1);
  for (const std::string& arg : argv) exec_argv.push_back(const_cast<char*>(arg.c_str()));
  exec_argv.push_back(nullptr);
  ::execv("/proc/self/exe", exec_argv.data());
  return ErrnoStatus(errno, "execv /proc/self/exe");
}

}  // namespace ota::service
