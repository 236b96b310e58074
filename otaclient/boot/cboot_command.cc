#include "otaclient/boot/cboot_command.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

extern char** environ;

namespace ota::boot::cboot {
namespace {

// Owns a posix_spawn_file_actions_t.
class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

absl::Status MakePipe(fs::UniqueFd& read_end, fs::UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  read_end = fs::UniqueFd(fds[0]);
  write_end = fs::UniqueFd(fds[1]);
  return absl::OkStatus();
}

// Reads both pipes until both reach EOF (a full pipe must never block the child).
absl::Status Drain(fs::UniqueFd& out_fd, fs::UniqueFd& err_fd, std::string& out, std::string& err) {
  std::array<char, 4096> buffer;
  while (out_fd.valid() || err_fd.valid()) {
    std::array<pollfd, 2> fds = {{{out_fd.get(), POLLIN, 0}, {err_fd.get(), POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll on child output");
    }
    for (int i = 0; i < 2; ++i) {
      fs::UniqueFd& fd = i == 0 ? out_fd : err_fd;
      if (!fd.valid() || fds[i].revents == 0) continue;
      ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, "read child output");
      if (n == 0) {
        fd.Reset();
        continue;
      }
      (i == 0 ? out : err).append(buffer.data(), static_cast<size_t>(n));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DescribeCommand(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text.push_back(' ');
    text += arg;
  }
  return text;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0].empty()) return absl::InvalidArgumentError("empty command line");
  fs::UniqueFd out_read, out_write, err_read, err_write;
  OTA_RETURN_IF_ERROR(MakePipe(out_read, out_write));
  OTA_RETURN_IF_ERROR(MakePipe(err_read, err_write));
  FileActions actions;
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), err_write.get(), STDERR_FILENO);

  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ);
  if (rc != 0) {
    absl::Status status = ErrnoStatus(rc, StrCat("start ", DescribeCommand(argv)));
    if (rc == ENOENT) return absl::NotFoundError(std::string(status.message()));
    return status;
  }
  out_write.Reset();
  err_write.Reset();
  CommandResult result;
  absl::Status drained = Drain(out_read, err_read, result.out, result.err);
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("wait for ", DescribeCommand(argv)));
  }
  OTA_RETURN_IF_ERROR(drained);
  if (WIFEXITED(wait_status)) {
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.exit_code = 128 + WTERMSIG(wait_status);
  }
  return result;
}

absl::StatusOr<std::string> RunCommandChecked(const std::vector<std::string>& argv) {
  OTA_ASSIGN_OR_RETURN(CommandResult result, RunCommand(argv));
  if (result.exit_code != 0) {
    std::string err = result.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return absl::InternalError(StrCat("`", DescribeCommand(argv), "` exited with ",
                                      result.exit_code, err.empty() ? "" : ": ", err));
  }
  return std::move(result.out);
}

}  // namespace ota::boot::cboot
