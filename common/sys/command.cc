#include "common/sys/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

extern char** environ;

namespace ota::sys {
namespace {

struct Pipe {
  fs::UniqueFd read;
  fs::UniqueFd write;
};

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  return Pipe{fs::UniqueFd(fds[0]), fs::UniqueFd(fds[1])};
}

// Owns posix_spawn's file actions.
class FileActions {
 public:
  FileActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Owns posix_spawn's attributes.
class SpawnAttributes {
 public:
  SpawnAttributes() { ::posix_spawnattr_init(&attributes_); }
  ~SpawnAttributes() { ::posix_spawnattr_destroy(&attributes_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() { return &attributes_; }

 private:
  posix_spawnattr_t attributes_;
};

}  // namespace

std::string DescribeArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out.push_back(' ');
    out += arg;
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline` for poll(2), at least 0.
int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string DescribeTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 == 0) return StrCat(timeout.count() / 1000, " s");
  return StrCat(timeout.count(), " ms");
}

// Waits until `pid` (a child of ours) has exited or `deadline` passed; reaps it then.
// nullopt: still running.
std::optional<int> WaitExit(pid_t pid, const fs::UniqueFd& pidfd, Clock::time_point deadline) {
  while (true) {
    int wstatus = 0;
    const pid_t done = ::waitpid(pid, &wstatus, WNOHANG);
    if (done == pid) return wstatus;
    if (done < 0 && errno != EINTR) return 0;  // not our child any more: nothing to wait for
    const int left = MillisLeft(deadline);
    if (left == 0) return std::nullopt;
    if (pidfd.valid()) {
      pollfd fd = {pidfd.get(), POLLIN, 0};
      (void)::poll(&fd, 1, left);
    } else {
      // No pidfd (kernel < 5.3): look again shortly.
      pollfd none{};
      (void)::poll(&none, 0, std::min(left, 10));
    }
  }
}

}  // namespace

absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout) {
  return RunProgram(argv, timeout, {});
}

absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout,
                                         const std::vector<std::string>& extra_env) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProgram: empty argv");
  OTA_ASSIGN_OR_RETURN(Pipe out_pipe, MakePipe());
  OTA_ASSIGN_OR_RETURN(Pipe err_pipe, MakePipe());
  FileActions actions;
  ::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(actions.get(), out_pipe.write.get(), 1);
  ::posix_spawn_file_actions_adddup2(actions.get(), err_pipe.write.get(), 2);
  // A process group of its own: on a timeout the child and everything it started are killed.
  SpawnAttributes attributes;
  ::posix_spawnattr_setflags(attributes.get(), POSIX_SPAWN_SETPGROUP);
  ::posix_spawnattr_setpgroup(attributes.get(), 0);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // The child's environment: ours, with `extra_env` added (replacing same-named entries).
  std::vector<char*> env;
  if (!extra_env.empty()) {
    auto overridden = [&extra_env](std::string_view entry) {
      const std::string_view name = entry.substr(0, entry.find('='));
      return std::any_of(extra_env.begin(), extra_env.end(), [name](const std::string& e) {
        return std::string_view(e).substr(0, e.find('=')) == name;
      });
    };
    for (char** e = environ; *e != nullptr; ++e) {
      if (!overridden(*e)) env.push_back(*e);
    }
    for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
  }
  pid_t pid = 0;
  const Clock::time_point deadline = Clock::now() + timeout;
  int rc = ::posix_spawnp(&pid, args[0], actions.get(), attributes.get(), args.data(),
                          env.empty() ? environ : env.data());
  if (rc != 0) {
    std::string what = StrCat("start ", DescribeArgv(argv));
    if (rc == ENOENT) return absl::NotFoundError(StrCat(what, ": program not found"));
    return ErrnoStatus(rc, what);
  }
  out_pipe.write.Reset();
  err_pipe.write.Reset();
  const fs::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  CommandResult result;
  pollfd fds[2] = {{out_pipe.read.get(), POLLIN, 0}, {err_pipe.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[4096];
  bool timed_out = false;
  while (open_fds > 0) {
    const int left = MillisLeft(deadline);
    if (left == 0) {
      timed_out = true;
      break;
    }
    const int ready = ::poll(fds, 2, left);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;  // still reap the child below
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  std::optional<int> wstatus;
  if (!timed_out) {
    wstatus = WaitExit(pid, pidfd, deadline);
    timed_out = !wstatus.has_value();
  }
  if (timed_out) {
    // The child is not reaped yet, so its process group id cannot be reused: the group gets
    // SIGTERM, a grace period, then SIGKILL (grandchildren that outlive the child included).
    ::kill(-pid, SIGTERM);
    wstatus = WaitExit(pid, pidfd, Clock::now() + kKillGrace);
    ::kill(-pid, SIGKILL);
    if (!wstatus.has_value()) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    log::Warning("program timed out; its process group was killed",
                 {{"command", DescribeArgv(argv)}, {"timeout", DescribeTimeout(timeout)}});
    // A local program that hangs is a failure of this ECU, not of the server.
    return LocalFailure(absl::DeadlineExceededError(
        StrCat(DescribeArgv(argv), ": no result within ", DescribeTimeout(timeout),
               " (timeout); its process group was killed")));
  }
  result.exit_code = WIFEXITED(*wstatus) ? WEXITSTATUS(*wstatus) : 128 + WTERMSIG(*wstatus);
  return result;
}

absl::StatusOr<std::string> RunProgramChecked(const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout) {
  OTA_ASSIGN_OR_RETURN(CommandResult result, RunProgram(argv, timeout));
  if (result.exit_code != 0) {
    std::string err = result.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return absl::InternalError(
        StrCat(DescribeArgv(argv), ": exit ", result.exit_code, err.empty() ? "" : ": ", err));
  }
  return std::move(result.out);
}

}  // namespace ota::sys
