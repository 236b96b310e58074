#include "otaclient/update/install_hooks.h"

#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {
namespace {

// Why `st` (of `path`, a `kind`) may not be trusted to run as root; "" when it may.
std::string Untrusted(const struct stat& st, std::string_view kind,
                      const std::filesystem::path& path) {
  if (st.st_uid != 0) {
    return StrCat(kind, " ", path.string(), " is owned by uid ", st.st_uid, ", not root");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", st.st_mode & 07777U);
    return StrCat(kind, " ", path.string(), " is group- or world-writable (mode ", mode.data(),
                  ")");
  }
  return "";
}

std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  const size_t nl = text.rfind('\n');
  return std::string(nl == std::string_view::npos ? text : text.substr(nl + 1));
}

void LogLines(std::string_view hook, std::string_view stream, std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string line(text.substr(start, end - start));
    if (stream == "stderr") {
      log::Warning("install hook output", {{"hook", hook}, {"stream", stream}, {"line", line}});
    } else {
      log::Info("install hook output", {{"hook", hook}, {"stream", stream}, {"line", line}});
    }
    start = end + 1;
  }
}

absl::Status Recoverable(absl::Status status) {
  return WithOtaErrorCode(std::move(status), OtaErrorCode::kRecoverable);
}

}  // namespace

absl::Status RunInstallHook(const std::filesystem::path& hooks_dir, std::string_view name,
                            const InstallHookEnv& env, std::chrono::milliseconds timeout) {
  if (hooks_dir.empty()) return absl::OkStatus();
  const std::filesystem::path hook = hooks_dir / std::string(name);
  struct stat st {};
  if (::stat(hook.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::OkStatus();  // no such hook
    return Recoverable(absl::FailedPreconditionError(
        StrCat(name, " hook refused: stat ", hook.string(), ": ", ErrnoText(errno))));
  }
  auto refuse = [&](std::string_view why) {
    log::Error("install hook refused", {{"hook", hook.string()}, {"reason", std::string(why)}});
    return Recoverable(absl::FailedPreconditionError(StrCat(name, " hook refused: ", why)));
  };
  if (!S_ISREG(st.st_mode)) return refuse(StrCat(hook.string(), " is not a regular file"));
  if ((st.st_mode & S_IXUSR) == 0) return refuse(StrCat(hook.string(), " is not executable"));
  if (std::string why = Untrusted(st, "hook", hook); !why.empty()) {
    return refuse(why);
  }
  struct stat dir_st {};
  if (::stat(hooks_dir.c_str(), &dir_st) != 0) {
    return refuse(StrCat("stat ", hooks_dir.string(), ": ", ErrnoText(errno)));
  }
  if (std::string why = Untrusted(dir_st, "hooks directory", hooks_dir); !why.empty()) {
    return refuse(why);
  }

  const std::vector<std::string> extra_env = {
      StrCat("OTA_HOOK=", name),
      StrCat("OTA_TARGET_ROOT=", env.target_root.string()),
      StrCat("OTA_ACTIVE_ROOT=", env.active_root.string()),
      StrCat("OTA_TARGET_VERSION=", env.target_version),
      StrCat("OTA_IMAGE_URL=", env.image_url),
      StrCat("OTA_ECU_ID=", env.ecu_id),
  };
  log::Info("running install hook", {{"hook", hook.string()},
                                     {"target_root", env.target_root.string()},
                                     {"version", env.target_version}});
  absl::StatusOr<sys::CommandResult> result = sys::RunProgram({hook.string()}, timeout, extra_env);
  if (!result.ok()) {
    // Could not start it, or it timed out (its process group was killed).
    return Recoverable(
        absl::FailedPreconditionError(StrCat(name, " hook failed: ", result.status().message())));
  }
  LogLines(name, "stdout", result->out);
  LogLines(name, "stderr", result->err);
  if (result->exit_code != 0) {
    const std::string last = LastLine(result->err);
    return Recoverable(absl::FailedPreconditionError(
        StrCat(name, " hook failed: exit ", result->exit_code, last.empty() ? "" : ": ", last)));
  }
  log::Info("install hook succeeded", {{"hook", hook.string()}});
  return absl::OkStatus();
}

}  // namespace ota::update
