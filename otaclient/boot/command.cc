#include "otaclient/boot/command.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

extern char** environ;

namespace ota::boot {
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

}  // namespace

std::string DescribeArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out.push_back(' ');
    out += arg;
  }
  return out;
}

absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProgram: empty argv");
  OTA_ASSIGN_OR_RETURN(Pipe out_pipe, MakePipe());
  OTA_ASSIGN_OR_RETURN(Pipe err_pipe, MakePipe());
  FileActions actions;
  ::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(actions.get(), out_pipe.write.get(), 1);
  ::posix_spawn_file_actions_adddup2(actions.get(), err_pipe.write.get(), 2);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ);
  if (rc != 0) {
    std::string what = StrCat("start ", DescribeArgv(argv));
    if (rc == ENOENT) return absl::NotFoundError(StrCat(what, ": program not found"));
    return ErrnoStatus(rc, what);
  }
  out_pipe.write.Reset();
  err_pipe.write.Reset();

  CommandResult result;
  pollfd fds[2] = {{out_pipe.read.get(), POLLIN, 0}, {err_pipe.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
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
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("wait for ", argv[0]));
  }
  result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

absl::StatusOr<std::string> RunProgramChecked(const std::vector<std::string>& argv) {
  OTA_ASSIGN_OR_RETURN(CommandResult result, RunProgram(argv));
  if (result.exit_code != 0) {
    std::string err = result.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return absl::InternalError(
        StrCat(DescribeArgv(argv), ": exit ", result.exit_code, err.empty() ? "" : ": ", err));
  }
  return std::move(result.out);
}

}  // namespace ota::boot
