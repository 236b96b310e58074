#include "test/lib/nginx/nginx_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <regex>
#include <system_error>
#include <thread>

#include "common/util/errors.h"
#include "common/util/strings.h"
#include "test/lib/ports/port_registry.h"

#ifndef OTA_NGINX_HARNESS
#error "OTA_NGINX_HARNESS must name test/lib/nginx/nginx-harness.sh"
#endif

extern char** environ;

namespace ota::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(5);
constexpr auto kLogTimeout = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(10);
constexpr std::string_view kSyncPrefix = "/__harness_sync__/";

std::string FindNginx() {
  if (const char* env = std::getenv("NGINX"); env != nullptr && *env != '\0') return env;
  for (const char* candidate : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "nginx";
}

fs::UniqueFd ConnectLoopback(int port) {
  fs::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fs::UniqueFd();
  }
  return fd;
}

// Runs the harness script's `prepare` and waits for it.
absl::Status RunPrepare(const std::filesystem::path& dir, const std::filesystem::path& root,
                        const std::array<int, 3>& ports) {
  std::vector<std::string> args = {"/bin/bash",
                                   OTA_NGINX_HARNESS,
                                   "prepare",
                                   dir.string(),
                                   root.string(),
                                   std::to_string(ports[0]),
                                   std::to_string(ports[1]),
                                   std::to_string(ports[2])};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = (dir / "prepare.log").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, "spawn nginx-harness.sh prepare");
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    auto output = fs::ReadFile(log);
    return absl::InternalError(StrCat("nginx-harness.sh prepare failed: ",
                                      output.ok() ? *output : std::string("(no output)")));
  }
  return absl::OkStatus();
}

const std::regex& LogLineRegex() {
  static const std::regex re(
      R"re(^port=(\d+) conn=(\d+) creq=(\d+) status=(\d+) bytes=(\d+) cc="(.*)" req="(.*)"$)re");
  return re;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NginxServer>> NginxServer::Start(std::filesystem::path doc_root) {
  OTA_ASSIGN_OR_RETURN(fs::TempDir dir, fs::TempDir::Create("ota-nginx"));
  std::unique_ptr<NginxServer> server(new NginxServer(std::move(dir)));
  if (doc_root.empty()) {
    doc_root = server->dir() / "www";
    std::error_code ec;
    std::filesystem::create_directories(doc_root, ec);
    if (ec) return absl::InternalError(StrCat("mkdir ", doc_root.string(), ": ", ec.message()));
  }
  server->doc_root_ = std::filesystem::absolute(doc_root);
  OTA_RETURN_IF_ERROR(server->Launch());
  return server;
}

absl::Status NginxServer::Launch() {
  const std::string nginx = FindNginx();
  // Named in nginx.conf before nginx starts: claims from the test-port registry, held until the
  // server object goes (port_registry.h).
  OTA_ASSIGN_OR_RETURN(port_claims_, ClaimPorts(3));
  http_port_ = port_claims_[0].port();
  https_port_ = port_claims_[1].port();
  proxy_port_ = port_claims_[2].port();
  OTA_RETURN_IF_ERROR(RunPrepare(dir(), doc_root_, {http_port_, https_port_, proxy_port_}));

  std::vector<std::string> args = {nginx,
                                   "-p",
                                   dir().string() + "/",
                                   "-c",
                                   (dir() / "nginx.conf").string(),
                                   "-e",
                                   (dir() / "error.log").string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string out_path = (dir() / "nginx.out").string();
  std::string error_log = (dir() / "error.log").string();
  std::error_code ignored;
  std::filesystem::remove(error_log, ignored);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null_in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || null_in < 0) ::_exit(126);
    ::dup2(null_in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;

  // Readiness: all ports accept a connection (bounded), or nginx exited.
  const auto deadline = Clock::now() + kStartTimeout;
  while (Clock::now() < deadline) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      auto errors = fs::ReadFile(error_log);
      auto output = fs::ReadFile(out_path);
      return absl::InternalError(
          StrCat("nginx exited at start (ports ", http_port_, " ", https_port_, " ", proxy_port_,
                 "): ", errors.ok() ? *errors : "", output.ok() ? *output : ""));
    }
    if (ConnectLoopback(http_port_).valid() && ConnectLoopback(https_port_).valid() &&
        ConnectLoopback(proxy_port_).valid()) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  Kill();
  return absl::DeadlineExceededError(
      StrCat("nginx did not accept connections within 10 s; see ", error_log));
}

NginxServer::~NginxServer() { (void)Stop(); }

std::string NginxServer::HttpUrl(std::string_view path) const {
  return StrCat("http://127.0.0.1:", http_port_, path);
}
std::string NginxServer::HttpsUrl(std::string_view path) const {
  return StrCat("https://127.0.0.1:", https_port_, path);
}
std::string NginxServer::ProxyUrl() const { return StrCat("http://127.0.0.1:", proxy_port_); }

void NginxServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

absl::Status NginxServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + kStopTimeout;
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  Kill();
  return absl::DeadlineExceededError("nginx ignored SIGTERM for 5 s; killed");
}

absl::Status NginxServer::SyncAccessLog() {
  std::string target = StrCat(kSyncPrefix, ++sync_counter_);
  {
    fs::UniqueFd fd = ConnectLoopback(http_port_);
    if (!fd.valid()) return ErrnoStatus(errno, "connect to nginx for log sync");
    timeval timeout{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string request = StrCat("GET ", target, " HTTP/1.0\r\n\r\n");
    OTA_RETURN_IF_ERROR(fs::WriteAll(fd.get(), request.data(), request.size(), "log sync"));
    char buf[4096];
    while (::read(fd.get(), buf, sizeof(buf)) > 0) {
    }
  }
  const std::string needle = StrCat(" ", target, " ");
  const auto deadline = Clock::now() + kLogTimeout;
  while (Clock::now() < deadline) {
    auto log = fs::ReadFile(dir() / "access.log");
    if (log.ok() && log->find(needle) != std::string::npos) return absl::OkStatus();
    std::this_thread::sleep_for(kPollInterval);
  }
  return absl::DeadlineExceededError(StrCat("access.log has no line for ", target));
}

absl::StatusOr<std::vector<AccessLogEntry>> NginxServer::AccessLog() {
  if (running()) OTA_RETURN_IF_ERROR(SyncAccessLog());
  auto log = fs::ReadFile(dir() / "access.log");
  if (!log.ok() && log.status().code() == absl::StatusCode::kNotFound) {
    return std::vector<AccessLogEntry>();
  }
  OTA_RETURN_IF_ERROR(log.status());
  std::vector<AccessLogEntry> entries;
  size_t start = 0;
  while (start < log->size()) {
    size_t end = log->find('\n', start);
    if (end == std::string::npos) end = log->size();
    std::string line = log->substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    std::smatch m;
    if (!std::regex_match(line, m, LogLineRegex())) {
      return absl::InternalError(StrCat("unparsable access.log line: ", line));
    }
    AccessLogEntry e;
    e.port = std::stoi(m[1]);
    e.connection = std::stoull(m[2]);
    e.connection_requests = std::stoull(m[3]);
    e.status = std::stoi(m[4]);
    e.body_bytes = std::stoull(m[5]);
    e.cache_control = m[6] == "-" ? "" : m[6].str();
    // "GET /a HTTP/1.1"; garbage sent to a port is logged as-is and yields fewer parts.
    std::string request = m[7];
    size_t space = request.find(' ');
    e.method = request.substr(0, space);
    if (space != std::string::npos) {
      size_t end_of_target = request.find(' ', space + 1);
      e.target =
          request.substr(space + 1, end_of_target == std::string::npos ? std::string::npos
                                                                       : end_of_target - space - 1);
    }
    if (e.target.starts_with(kSyncPrefix)) continue;
    entries.push_back(std::move(e));
  }
  return entries;
}

std::vector<AccessLogEntry> EntriesFor(const std::vector<AccessLogEntry>& entries,
                                       std::string_view target_prefix) {
  std::vector<AccessLogEntry> out;
  for (const auto& e : entries) {
    if (std::string_view(e.target).starts_with(target_prefix)) out.push_back(e);
  }
  return out;
}

}  // namespace ota::testing
