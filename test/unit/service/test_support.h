// Helpers shared by the service tests: a closed-port holder, a child-process runner with captured
// output, and a gate that holds the update session in a phase. (Ports for child daemons: their
// --listen-port 0 and --port-file, test/lib/ports/port_file.h.)
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/fs.h"

extern char** environ;

namespace ota::service::testing {

// A 127.0.0.1 port the kernel picked, kept bound without listening: connections are refused and
// nobody else can take it while this object lives.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = fs::UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    socklen_t len = sizeof(addr);
    if (getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    port_ = ntohs(addr.sin_port);
  }
  int port() const { return port_; }

 private:
  fs::UniqueFd fd_;
  int port_ = 0;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed or did not exit normally
  std::string out;
  std::string err;
};

// A child started with posix_spawn, its stdout/stderr on pipes. Killed (SIGKILL, by PID) and
// reaped on destruction if still running.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }

  bool Start(const std::vector<std::string>& argv) {
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) return false;
    if (pipe2(err_pipe, O_CLOEXEC) != 0) return false;
    out_ = fs::UniqueFd(out_pipe[0]);
    err_ = fs::UniqueFd(err_pipe[0]);
    out_open_ = err_open_ = true;
    seen_ = {};
    fs::UniqueFd out_write(out_pipe[1]), err_write(err_pipe[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }

  pid_t pid() const { return pid_; }

  // Reads output until stderr holds `needle` (true), both pipes close or `limit` passes
  // (false). What was read is kept for Wait()'s result.
  bool WaitForStderr(std::string_view needle, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (seen_.err.find(needle) == std::string::npos) {
      if ((!out_open_ && !err_open_) || !ReadSome(deadline)) return false;
    }
    return true;
  }

  // Reads output until both pipes close, then reaps. Gives up after `timeout` (kills the child).
  ProcessResult Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while ((out_open_ || err_open_) && ReadSome(deadline)) {
    }
    ProcessResult result = std::move(seen_);
    seen_ = {};
    if (out_open_ || err_open_) kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    pid_ = -1;
    return result;
  }

 private:
  // One poll of the open pipes; false once `deadline` passed.
  bool ReadSome(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{out_open_ ? out_.get() : -1, POLLIN, 0},
                     {err_open_ ? err_.get() : -1, POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) return true;
    char buf[4096];
    if (fds[0].revents != 0) {
      const ssize_t n = read(out_.get(), buf, sizeof(buf));
      if (n > 0)
        seen_.out.append(buf, static_cast<size_t>(n));
      else
        out_open_ = false;
    }
    if (fds[1].revents != 0) {
      const ssize_t n = read(err_.get(), buf, sizeof(buf));
      if (n > 0)
        seen_.err.append(buf, static_cast<size_t>(n));
      else
        err_open_ = false;
    }
    return true;
  }

  pid_t pid_ = -1;
  fs::UniqueFd out_, err_;
  bool out_open_ = true, err_open_ = true;
  ProcessResult seen_;  // read so far
};

inline ProcessResult RunProcess(const std::vector<std::string>& argv) {
  ChildProcess child;
  if (!child.Start(argv)) return {};
  return child.Wait();
}

// Plugged into EngineOptions::test_phase_hook: records the phases the session enters and can
// hold the session thread in one phase until released.
class PhaseGate {
 public:
  void HoldIn(std::string phase) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_phase_ = std::move(phase);
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_phase_.reset();
    cv_.notify_all();
  }
  // Returns false when `phase` was not reached within `timeout`.
  bool WaitFor(const std::string& phase,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return seen_.contains(phase); });
  }
  void OnPhase(std::string_view phase) {
    std::unique_lock<std::mutex> lock(mu_);
    seen_.insert(std::string(phase));
    cv_.notify_all();
    cv_.wait(lock, [&] { return hold_phase_ != phase; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> seen_;
  std::optional<std::string> hold_phase_;
};

}  // namespace ota::service::testing
