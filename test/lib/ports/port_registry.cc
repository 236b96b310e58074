#include "test/lib/ports/port_registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <system_error>
#include <utility>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::testing {
namespace {

constexpr PortRange kDefaultWindow{15000, 19999};

template <typename T>
bool ParseNumber(std::string_view text, T* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

struct ProcStat {
  char state = '?';
  uint64_t start_time = 0;
};

absl::StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  const std::string path = StrCat("/proc/", pid, "/stat");
  auto text = fs::ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return absl::NotFoundError(StrCat("no process ", pid));
    return text.status();
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos) return absl::InternalError(StrCat("unparsable ", path));
  std::istringstream fields(text->substr(paren + 1));
  std::vector<std::string> tokens;
  for (std::string token; fields >> token;) tokens.push_back(token);
  ProcStat stat;
  // tokens[0] is field 3 (state), so field 22 (starttime) is tokens[19].
  if (tokens.size() < 20 || tokens[0].size() != 1 || !ParseNumber(tokens[19], &stat.start_time)) {
    return absl::InternalError(StrCat("unparsable ", path));
  }
  stat.state = tokens[0][0];
  return stat;
}

bool OwnerAlive(const PortOwner& owner) {
  if (owner.pid <= 0) return false;
  auto stat = ReadProcStat(owner.pid);
  return stat.ok() && stat->start_time == owner.start_time && stat->state != 'Z' &&
         stat->state != 'X';
}

std::string LinkTarget(const PortOwner& owner) { return StrCat(owner.pid, ":", owner.start_time); }

// The owner a claim link names; nullopt when the link is missing or no claim of this protocol.
std::optional<PortOwner> ReadClaim(const std::filesystem::path& link) {
  char buf[64];
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return std::nullopt;
  const std::string_view target(buf, static_cast<size_t>(n));
  const size_t colon = target.find(':');
  PortOwner owner;
  if (colon == std::string_view::npos || !ParseNumber(target.substr(0, colon), &owner.pid) ||
      !ParseNumber(target.substr(colon + 1), &owner.start_time) || owner.pid <= 0) {
    return std::nullopt;
  }
  return owner;
}

// True when nothing on the machine has the port bound (listening, connected or TIME_WAIT).
bool PortUnused(int port) {
  fs::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

absl::StatusOr<PortRange> ReadEphemeralRange(const std::filesystem::path& file) {
  auto text = fs::ReadFile(file);
  if (!text.ok()) return WithContext(text.status(), "the kernel's ephemeral port range");
  std::istringstream in(*text);
  PortRange range;
  if (!(in >> range.lo >> range.hi) || range.lo > range.hi) {
    return absl::InternalError(
        StrCat("unparsable ephemeral port range in ", file.string(), ": \"", *text, "\""));
  }
  return range;
}

// The registry directory, locked (exclusive) while the returned fd is open.
absl::StatusOr<fs::UniqueFd> LockRegistry(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(StrCat("test-port registry ", dir.string(), ": ",
                                              ec.message(), " (set OTA_TEST_PORTS_DIR)"));
  }
  const std::filesystem::path lock = dir / "lock";
  fs::UniqueFd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", lock.string()));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("flock ", lock.string()));
  }
  return fd;
}

std::vector<int> ClaimedPortsIn(const std::filesystem::path& dir) {
  std::vector<int> ports;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    int port = 0;
    if (ParseNumber(entry.path().filename().string(), &port) && port > 0 && port <= 65535) {
      ports.push_back(port);
    }
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

}  // namespace

absl::StatusOr<PortRange> ParsePortRange(std::string_view text) {
  const size_t dash = text.find('-');
  PortRange range;
  if (dash == std::string_view::npos || !ParseNumber(text.substr(0, dash), &range.lo) ||
      !ParseNumber(text.substr(dash + 1), &range.hi) || range.lo < 1 || range.hi > 65535 ||
      range.lo > range.hi) {
    return absl::InvalidArgumentError(
        StrCat("port range \"", text, "\" is not LO-HI with 1 <= LO <= HI <= 65535"));
  }
  return range;
}

absl::StatusOr<PortRegistryOptions> PortRegistryOptionsFromEnv() {
  PortRegistryOptions options;
  if (const char* dir = std::getenv("OTA_TEST_PORTS_DIR"); dir != nullptr && *dir != '\0') {
    options.dir = dir;
  } else if (::geteuid() == 0) {
    options.dir = "/run/ota-test-ports";
  } else {
    options.dir = StrCat("/tmp/ota-test-ports-", ::geteuid());
  }
  options.window = kDefaultWindow;
  if (const char* range = std::getenv("OTA_TEST_PORTS_RANGE"); range != nullptr && *range != '\0') {
    auto parsed = ParsePortRange(range);
    if (!parsed.ok()) return WithContext(parsed.status(), "OTA_TEST_PORTS_RANGE");
    options.window = *parsed;
  }
  return options;
}

absl::StatusOr<PortOwner> OwnerOf(pid_t pid) {
  auto stat = ReadProcStat(pid);
  if (!stat.ok()) return stat.status();
  return PortOwner{pid, stat->start_time};
}

absl::StatusOr<std::vector<int>> ClaimPortsFor(const PortRegistryOptions& options,
                                               const PortOwner& owner, int count) {
  if (count < 1) return absl::InvalidArgumentError(StrCat("cannot claim ", count, " ports"));
  OTA_ASSIGN_OR_RETURN(const PortRange ephemeral, ReadEphemeralRange(options.ephemeral_range_file));
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd lock, LockRegistry(options.dir));
  std::vector<int> claimed;
  const std::string target = LinkTarget(owner);
  for (int port = options.window.lo; port <= options.window.hi && std::ssize(claimed) < count;
       ++port) {
    if (port >= ephemeral.lo && port <= ephemeral.hi) continue;
    const std::filesystem::path link = options.dir / std::to_string(port);
    std::error_code ec;
    if (std::filesystem::is_symlink(std::filesystem::symlink_status(link, ec))) {
      const std::optional<PortOwner> holder = ReadClaim(link);
      if (!holder || OwnerAlive(*holder)) continue;  // taken (or not ours to judge)
      if (::unlink(link.c_str()) != 0) continue;     // its owner is gone: reclaim
    } else if (std::filesystem::exists(std::filesystem::symlink_status(link, ec))) {
      continue;  // something else lives under that name: leave it alone
    }
    if (!(options.port_unused ? options.port_unused(port) : PortUnused(port))) continue;
    if (::symlink(target.c_str(), link.c_str()) != 0) continue;
    claimed.push_back(port);
  }
  if (std::ssize(claimed) < count) {
    for (int port : claimed) ::unlink((options.dir / std::to_string(port)).c_str());
    return absl::ResourceExhaustedError(
        StrCat("only ", claimed.size(), " of ", count, " test ports free in ", options.window.lo,
               "-", options.window.hi, " outside the ephemeral range ", ephemeral.lo, "-",
               ephemeral.hi, " (claims in ", options.dir.string(), ")"));
  }
  return claimed;
}

absl::StatusOr<std::vector<int>> ReleasePortsOf(const PortRegistryOptions& options,
                                                const PortOwner& owner,
                                                const std::optional<std::vector<int>>& ports) {
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd lock, LockRegistry(options.dir));
  std::vector<int> released;
  for (int port : ports ? *ports : ClaimedPortsIn(options.dir)) {
    const std::filesystem::path link = options.dir / std::to_string(port);
    const std::optional<PortOwner> holder = ReadClaim(link);
    if (holder && *holder == owner && ::unlink(link.c_str()) == 0) released.push_back(port);
  }
  return released;
}

absl::StatusOr<std::vector<ClaimInfo>> ListClaims(const PortRegistryOptions& options) {
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd lock, LockRegistry(options.dir));
  std::vector<ClaimInfo> claims;
  for (int port : ClaimedPortsIn(options.dir)) {
    ClaimInfo info;
    info.port = port;
    if (auto holder = ReadClaim(options.dir / std::to_string(port))) {
      info.owner = *holder;
      info.owner_alive = OwnerAlive(*holder);
    }
    claims.push_back(info);
  }
  return claims;
}

PortClaim::PortClaim(PortClaim&& other) noexcept
    : options_(std::move(other.options_)),
      owner_(other.owner_),
      port_(std::exchange(other.port_, 0)) {}

PortClaim& PortClaim::operator=(PortClaim&& other) noexcept {
  if (this != &other) {
    Release();
    options_ = std::move(other.options_);
    owner_ = other.owner_;
    port_ = std::exchange(other.port_, 0);
  }
  return *this;
}

void PortClaim::Release() {
  if (port_ == 0) return;
  auto released = ReleasePortsOf(options_, owner_, std::vector<int>{port_});
  if (!released.ok() || released->empty()) {
    std::cerr << "test-port registry: port " << port_ << " was not released: "
              << (released.ok() ? "no claim of this process" : released.status().ToString())
              << "\n";
  }
  port_ = 0;
}

absl::StatusOr<std::vector<PortClaim>> ClaimPorts(int count) {
  OTA_ASSIGN_OR_RETURN(PortRegistryOptions options, PortRegistryOptionsFromEnv());
  OTA_ASSIGN_OR_RETURN(const PortOwner owner, OwnerOf(::getpid()));
  OTA_ASSIGN_OR_RETURN(const std::vector<int> ports, ClaimPortsFor(options, owner, count));
  std::vector<PortClaim> claims;
  for (int port : ports) claims.emplace_back(options, owner, port);
  return claims;
}

absl::StatusOr<PortClaim> ClaimPort() {
  OTA_ASSIGN_OR_RETURN(std::vector<PortClaim> claims, ClaimPorts(1));
  return std::move(claims.front());
}

}  // namespace ota::testing
