// Text files and shell one-liners for tests that set up and inspect a fake machine (board
// fixtures: boot partitions, config files, fake CLIs' state).
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/status/statusor.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"

namespace ota::testing {

// The whole file; "" when it cannot be read.
inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `content` (replacing the file), creating the parent directories.
inline void WriteText(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// `s` without trailing newlines and spaces.
inline std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The standard output of `bash -c script`; a failure of the script fails the test ("" then).
inline std::string Sh(const std::string& script) {
  absl::StatusOr<std::string> out = sys::RunProgramChecked({"bash", "-c", script});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::string();
}

}  // namespace ota::testing
