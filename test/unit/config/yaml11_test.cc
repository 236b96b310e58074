// YAML 1.1 scalar resolution as PyYAML (the Python otaclient's reader) does it: the table of
// what a plain scalar is, and the integer readers, with the vectors that tell YAML 1.1 from 1.2
// and Python's int() from C's.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/yaml_fields.h"
#include "gtest/gtest.h"

namespace ota::config::internal {
namespace {

TEST(Yaml11, ResolvePlainScalar) {
  struct Case {
    std::string text;
    Yaml11Type type;
  };
  using T = Yaml11Type;
  const std::vector<Case> cases = {
      {"", T::kNull},
      {"~", T::kNull},
      {"null", T::kNull},
      {"Null", T::kNull},
      {"NULL", T::kNull},
      {"nULL", T::kString},
      {"yes", T::kBool},
      {"No", T::kBool},
      {"ON", T::kBool},
      {"off", T::kBool},
      {"True", T::kBool},
      {"y", T::kString},
      {"yEs", T::kString},
      {"0", T::kInt},
      {"-0", T::kInt},
      {"+12", T::kInt},
      {"1_000", T::kInt},
      {"1__", T::kInt},
      {"0b101", T::kInt},
      {"0b", T::kString},
      {"0b2", T::kString},
      {"017", T::kInt},
      {"08", T::kString},
      {"0_", T::kInt},
      {"0x1F", T::kInt},
      {"0X1F", T::kString},
      {"0x", T::kString},
      {"0o17", T::kString},
      {"1:30", T::kInt},
      {"1:60", T::kString},
      {"1:5:9", T::kInt},
      {"01:30", T::kString},
      {"1:", T::kString},
      {"1.5", T::kFloat},
      {"1.", T::kFloat},
      {".5", T::kFloat},
      {"-.5", T::kString},
      {"1e3", T::kString},
      {"1.0e3", T::kString},
      {"1.0e+3", T::kFloat},
      {"1_0.0_1", T::kFloat},
      {"1:30.5", T::kFloat},
      {".inf", T::kFloat},
      {"-.Inf", T::kFloat},
      {".NaN", T::kFloat},
      {"-.nan", T::kString},
      {"2024-01-01", T::kTimestamp},
      {"2024-1-1", T::kString},
      {"2024-1-1 1:02:03", T::kTimestamp},
      {"2024-01-01T01:02:03.5Z", T::kTimestamp},
      {"2024-01-01t01:02:03 +09:00", T::kTimestamp},
      {"2024-01-01 01:02:03-9", T::kTimestamp},
      {"2024-01-01T1:2:3", T::kString},
      {"2024-01-01T01:02:03Zx", T::kString},
      {"=", T::kValue},
      {"<<", T::kValue},
      {"autoware", T::kString},
      {"10.0.0.1", T::kString},
      {"1.2.3", T::kString},
      {"main-ecu", T::kString},
      {"-", T::kString},
      {"+", T::kString},
      {"_1", T::kString},
      {"1-2", T::kString},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ResolvePlainScalar(c.text), c.type) << "[" << c.text << "]";
  }
}

TEST(Yaml11, ParseInt) {
  struct Case {
    std::string text;
    std::optional<int64_t> value;
  };
  const std::vector<Case> cases = {
      {"0", 0},
      {"-0", 0},
      {"+7", 7},
      {"50051", 50051},
      {"5_0_051", 50051},
      {"1__", 1},
      {"0b1100", 12},
      {"-0b1", -1},
      {"0b_", std::nullopt},  // matches the pattern, but int("", 2) fails upstream too
      {"017", 15},
      {"0_17", 15},
      {"0x1f", 31},
      {"0xC351", 50001},
      {"-0x_1", -1},
      {"1:30", 90},
      {"13:53:31", 50011},
      {"-1:0", -60},
      {"9223372036854775807", INT64_MAX},
      {"-9223372036854775808", INT64_MIN},
      {"9223372036854775808", std::nullopt},
      {"0x8000000000000000", std::nullopt},
      {"99999999999:59:59:59", 21599999999999999},
      {"99999999999999:59:59:59", std::nullopt},
      {"08", std::nullopt},
      {"0o17", std::nullopt},
      {"1.0", std::nullopt},
      {"", std::nullopt},
      {"12a", std::nullopt},
      {" 1", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseYaml11Int(c.text), c.value) << "[" << c.text << "]";
  }
}

TEST(Yaml11, ParsePythonIntString) {
  struct Case {
    std::string text;
    std::optional<int64_t> value;
  };
  const std::vector<Case> cases = {
      {"8082", 8082},
      {" 8082\n", 8082},
      {"+8082", 8082},
      {"-1", -1},
      {"08082", 8082},
      {"8_082", 8082},
      {"0", 0},
      {"000", 0},
      {"8__082", std::nullopt},
      {"_8082", std::nullopt},
      {"8082_", std::nullopt},
      {"0x10", std::nullopt},
      {"8 082", std::nullopt},
      {"", std::nullopt},
      {"  ", std::nullopt},
      {"+", std::nullopt},
      {"--1", std::nullopt},
      {"1.0", std::nullopt},
      {"99999999999999999999", std::nullopt},
      {std::string("80\0", 3), std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParsePythonIntString(c.text), c.value) << "[" << c.text << "]";
  }
}

TEST(Yaml11, ParseBool) {
  EXPECT_EQ(ParseYaml11Bool("yes"), true);
  EXPECT_EQ(ParseYaml11Bool("OFF"), false);
  EXPECT_EQ(ParseYaml11Bool("FALSE"), false);
  EXPECT_EQ(ParseYaml11Bool("fAlse"), std::nullopt);
  EXPECT_EQ(ParseYaml11Bool("1"), std::nullopt);
  EXPECT_EQ(ParseYaml11Bool(""), std::nullopt);
}

}  // namespace
}  // namespace ota::config::internal
