// Small helpers shared by the benchmark binaries: "--name value" flags, a monotonic stopwatch,
// the process's peak RSS, and a flat JSON object writer (run.sh reads the output with jq).
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/util/strings.h"

namespace ota::bench {

// Parsed "--name value" / "--name=value" flags; every flag takes a value.
class Flags {
 public:
  // Parses argv against the allowed flag names; on a problem returns nullopt and sets `problem`.
  static std::optional<Flags> Parse(int argc, char** argv, const std::set<std::string>& allowed,
                                    std::string* problem) {
    Flags flags;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        flags.help_ = true;
        continue;
      }
      if (!arg.starts_with("--")) {
        *problem = StrCat("unexpected argument '", arg, "'");
        return std::nullopt;
      }
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (!allowed.contains(name)) {
        *problem = StrCat("unknown flag '--", name, "'");
        return std::nullopt;
      }
      if (!value.has_value()) {
        if (i + 1 >= argc) {
          *problem = StrCat("--", name, " needs a value");
          return std::nullopt;
        }
        value = argv[++i];
      }
      if (!flags.values_.emplace(name, *value).second) {
        *problem = StrCat("--", name, " given twice");
        return std::nullopt;
      }
    }
    return flags;
  }

  bool help() const { return help_; }
  bool Has(const std::string& name) const { return values_.contains(name); }
  std::string Get(const std::string& name, std::string fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // A non-negative integer flag; nullopt (with `problem` set) when it is not one.
  std::optional<uint64_t> GetUint(const std::string& name, uint64_t fallback,
                                  std::string* problem) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    const std::string& text = it->second;
    uint64_t value = 0;
    if (text.empty() || text.size() > 19) {
      *problem = StrCat("--", name, " expects a non-negative integer, got '", text, "'");
      return std::nullopt;
    }
    for (char c : text) {
      if (c < '0' || c > '9') {
        *problem = StrCat("--", name, " expects a non-negative integer, got '", text, "'");
        return std::nullopt;
      }
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    return value;
  }

 private:
  std::map<std::string, std::string> values_;
  bool help_ = false;
};

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// CPU time (user + system, all threads) this process has used so far, in seconds. Next to wall
// time it tells a slow step from a step that waited for a CPU on a loaded machine.
inline double ProcessCpuSeconds() {
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Peak resident set size of this process in KiB (VmHWM of /proc/self/status), 0 if unknown.
inline uint64_t PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) {
      uint64_t kib = 0;
      for (char c : line) {
        if (c >= '0' && c <= '9') kib = kib * 10 + static_cast<uint64_t>(c - '0');
      }
      return kib;
    }
  }
  return 0;
}

// One flat JSON object, printed on a single line. Keys and string values are plain ASCII
// identifiers or paths written by the benchmarks themselves; quotes and backslashes are escaped.
class JsonLine {
 public:
  JsonLine& Add(std::string_view key, uint64_t value) {
    fields_.emplace_back(std::string(key), std::to_string(value));
    return *this;
  }
  JsonLine& Add(std::string_view key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6f", value);
    fields_.emplace_back(std::string(key), buf);
    return *this;
  }
  JsonLine& Add(std::string_view key, std::string_view value) {
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      if (static_cast<unsigned char>(c) < 0x20) continue;
      quoted.push_back(c);
    }
    quoted.push_back('"');
    fields_.emplace_back(std::string(key), std::move(quoted));
    return *this;
  }
  std::string ToString() const {
    std::string out = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i > 0) out.append(",");
      StrAppend(&out, "\"", fields_[i].first, "\":", fields_[i].second);
    }
    out.append("}");
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace ota::bench
