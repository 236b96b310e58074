// A throw-away test PKI made by the real deploy/gen-certs.sh (root CA → intermediate → signer).
// Shared by the crypto and image_metadata tests.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

extern char** environ;

namespace ota::testing {

struct TestPki {
  std::filesystem::path dir;
  std::optional<fs::TempDir> owned_dir;  // set when `dir` is a temp dir removed with this object
  std::string root_key, root_pem, interm_key, interm_pem, sign_key, sign_pem;

  std::filesystem::path path(std::string_view name) const { return dir / name; }
  // Holds 1.root.pem + 1.interm.pem, the layout otaclient's certs dir uses.
  std::filesystem::path certs_dir() const { return dir / "certs"; }
};

// Runs argv[0] with `argv` (no shell), stdout to /dev/null, and waits for it. OK iff it exits 0.
inline absl::Status RunQuietly(const std::vector<std::string>& argv) {
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, StrCat("spawn ", argv[0]));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("waitpid ", argv[0]));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(StrCat(argv[0], " failed with wait status ", status));
  }
  return absl::OkStatus();
}

// The gRPC mutual-TLS test PKI (test/lib/make-grpc-tls-pki.sh: a CA, ECU certificates for
// 127.0.0.1 and 127.0.0.2, an operator, another CA, ...), made once per test process in a temp
// dir named after `prefix` and removed at exit. Aborts when it cannot be made.
inline const std::filesystem::path& GrpcTlsPkiDir(const char* prefix) {
  static const fs::TempDir dir = [prefix] {
    auto made = fs::TempDir::Create(prefix);
    if (!made.ok()) {
      std::fprintf(stderr, "temp dir: %s\n", made.status().ToString().c_str());
      std::abort();
    }
    const absl::Status pki =
        RunQuietly({"bash", StrCat(OTA_SOURCE_DIR, "/test/lib/make-grpc-tls-pki.sh"),
                    made->path().string(), "ecu=127.0.0.1", "ecu2=127.0.0.2"});
    if (!pki.ok()) {
      std::fprintf(stderr, "make-grpc-tls-pki.sh failed: %s\n", pki.ToString().c_str());
      std::abort();
    }
    return std::move(*made);
  }();
  return dir.path();
}

inline absl::Status RunGenCerts(const std::filesystem::path& out_dir, bool expired) {
  std::vector<std::string> argv = {"bash", StrCat(OTA_SOURCE_DIR, "/deploy/gen-certs.sh")};
  if (expired) argv.push_back("--expired");
  argv.push_back(out_dir.string());
  return RunQuietly(argv);
}

inline absl::Status ReadPkiFiles(TestPki& pki) {
  OTA_ASSIGN_OR_RETURN(pki.root_key, fs::ReadFile(pki.path("root.key")));
  OTA_ASSIGN_OR_RETURN(pki.root_pem, fs::ReadFile(pki.path("root.pem")));
  OTA_ASSIGN_OR_RETURN(pki.interm_key, fs::ReadFile(pki.path("interm.key")));
  OTA_ASSIGN_OR_RETURN(pki.interm_pem, fs::ReadFile(pki.path("interm.pem")));
  OTA_ASSIGN_OR_RETURN(pki.sign_key, fs::ReadFile(pki.path("sign.key")));
  OTA_ASSIGN_OR_RETURN(pki.sign_pem, fs::ReadFile(pki.path("sign.pem")));
  return absl::OkStatus();
}

// Makes a fresh PKI in a temp dir with deploy/gen-certs.sh. `expired`: sign.pem is already
// expired (valid 2020-01-01 .. 2021-01-01).
inline absl::StatusOr<TestPki> MakeTestPki(bool expired = false) {
  OTA_ASSIGN_OR_RETURN(fs::TempDir dir, fs::TempDir::Create("ota-test-pki"));
  OTA_RETURN_IF_ERROR(RunGenCerts(dir.path(), expired));
  TestPki pki;
  pki.dir = dir.path();
  pki.owned_dir = std::move(dir);
  OTA_RETURN_IF_ERROR(ReadPkiFiles(pki));
  return pki;
}

// The PKI named `name` under the build dir (test-pki/<name>), made on first use and reused by
// later test processes. An flock serialises parallel ctest processes. Delete the dir and its
// .done stamp to start over.
inline absl::StatusOr<TestPki> CachedTestPki(std::string_view name, bool expired = false) {
  const std::filesystem::path base = std::filesystem::path(OTA_BINARY_DIR) / "test-pki";
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  if (ec) return absl::InternalError(StrCat("mkdir ", base.string(), ": ", ec.message()));
  const std::filesystem::path lock_path = base / StrCat(name, ".lock");
  fs::UniqueFd lock(::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  if (!lock.valid()) return ErrnoStatus(errno, StrCat("open ", lock_path.string()));
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("flock ", lock_path.string()));
  }
  TestPki pki;
  pki.dir = base / name;
  // The stamp is written only after gen-certs.sh succeeded, so later processes skip even its
  // (slow, two openssl runs) completeness check.
  const std::filesystem::path stamp = base / StrCat(name, ".done");
  if (!std::filesystem::exists(stamp, ec)) {
    OTA_RETURN_IF_ERROR(RunGenCerts(pki.dir, expired));
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(stamp, "gen-certs.sh completed\n"));
  }
  OTA_RETURN_IF_ERROR(ReadPkiFiles(pki));
  return pki;
}

}  // namespace ota::testing
