// ParseCookiesJson: the accepted shapes and every way a cookies string can be wrong.
#include <map>
#include <string>

#include "common/http/fetcher.h"
#include "common/util/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ota::http {
namespace {

using Cookies = std::map<std::string, std::string>;

struct GoodCase {
  std::string name;
  std::string json;
  Cookies expected;
};

class ParseCookiesGood : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ParseCookiesGood, Parses) {
  auto parsed = ParseCookiesJson(GetParam().json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    HttpCookies, ParseCookiesGood,
    ::testing::Values(
        GoodCase{"Empty", "", {}}, GoodCase{"EmptyObject", "{}", {}},
        GoodCase{"EmptyObjectWithWhitespace", " \n\t{ }\r\n", {}},
        GoodCase{"One", R"({"a":"b"})", {{"a", "b"}}},
        GoodCase{"CloudFront",
                 R"({"CloudFront-Policy": "eyJTdGF0ZW1lbnQiOlt7IlJl~_-",)"
                 R"( "CloudFront-Signature": "Zm9v~YmFy_",)"
                 R"( "CloudFront-Key-Pair-Id": "K2JCJMDEHXQW5F"})",
                 {{"CloudFront-Policy", "eyJTdGF0ZW1lbnQiOlt7IlJl~_-"},
                  {"CloudFront-Signature", "Zm9v~YmFy_"},
                  {"CloudFront-Key-Pair-Id", "K2JCJMDEHXQW5F"}}},
        GoodCase{"EmptyValue", R"({"a":""})", {{"a", ""}}},
        GoodCase{"ValueWithEqualsSigns", R"({"a":"b==c="})", {{"a", "b==c="}}},
        GoodCase{"UnicodeEscapeValue", R"({"a":"\u00e9t\u00e9"})", {{"a", "\xc3\xa9t\xc3\xa9"}}},
        GoodCase{"DuplicateKeyLastWins", R"({"a":"1","a":"2"})", {{"a", "2"}}},
        GoodCase{"ManyKeysSorted",
                 R"({"z":"1","b":"2","m":"3"})",
                 {{"b", "2"}, {"m", "3"}, {"z", "1"}}}),
    [](const auto& info) { return info.param.name; });

struct BadCase {
  std::string name;
  std::string json;
  std::string reason;  // must appear in the message
};

class ParseCookiesBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseCookiesBad, RejectedWithReason) {
  auto parsed = ParseCookiesJson(GetParam().json);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr("cookies: "));
  EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    HttpCookies, ParseCookiesBad,
    ::testing::Values(
        BadCase{"WhitespaceOnly", "   ", "not valid JSON"}, BadCase{"Null", "null", "got null"},
        BadCase{"Array", R"(["a","b"])", "got array"}, BadCase{"String", R"("a=b")", "got string"},
        BadCase{"Number", "1", "got number"}, BadCase{"Unterminated", "{", "not valid JSON"},
        BadCase{"TrailingGarbage", "{} x", "not valid JSON"},
        BadCase{"TwoObjects", "{}{}", "not valid JSON"},
        BadCase{"SingleQuotes", "{'a':'b'}", "not valid JSON"},
        BadCase{"TrailingComma", R"({"a":"b",})", "not valid JSON"},
        BadCase{"InvalidUtf8", "{\"a\":\"\xff\"}", "not valid JSON"},
        BadCase{"NumberValue", R"({"a":1})", "value of \"a\" must be a string, got number"},
        BadCase{"NullValue", R"({"a":null})", "got null"},
        BadCase{"BoolValue", R"({"a":true})", "got boolean"},
        BadCase{"ObjectValue", R"({"a":{"b":"c"}})", "got object"},
        BadCase{"ArrayValue", R"({"a":["b"]})", "got array"},
        BadCase{"EmptyName", R"({"":"x"})", "invalid cookie name"},
        BadCase{"NameWithSpace", R"({"a b":"x"})", "invalid cookie name \"a b\""},
        BadCase{"NameWithSemicolon", R"({"a;b":"x"})", "invalid cookie name"},
        BadCase{"NameWithEquals", R"({"a=b":"x"})", "invalid cookie name"},
        BadCase{"NameWithNewlineIsNotEchoedRaw", R"({"a\nInjected: 1":"x"})",
                "invalid cookie name \"a?Injected: 1\""},
        BadCase{"ValueWithSemicolon", R"({"a":"x; b=y"})", "contains ';'"},
        BadCase{"ValueWithCrLfHeaderInjection", R"({"a":"x\r\nInjected: 1"})", "control character"},
        BadCase{"ValueWithNul", R"({"a":"x\u0000y"})", "control character"},
        BadCase{"TooLong", "{\"a\":\"" + std::string(70000, 'x') + "\"}", "limit"}),
    [](const auto& info) { return info.param.name; });

TEST(HttpCookies, ErrorNeverEchoesAValue) {
  auto parsed = ParseCookiesJson(R"({"CloudFront-Signature":"s3cr3t;tail"})");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr("CloudFront-Signature"));
  EXPECT_THAT(std::string(parsed.status().message()),
              ::testing::Not(::testing::HasSubstr("s3cr3t")));
}

// Issue 17: a name is quoted at most 64 bytes long and never cut inside a character: the message
// goes into the service's answer (a protobuf string: valid UTF-8 only, or the caller cannot parse
// the answer) and into log lines.
TEST(HttpCookies, ErrorsQuoteLongNamesShortAndAsValidUtf8) {
  // "é" (2 bytes) straddles the 64-byte cut.
  const std::string name = std::string(63, 'n') + "\xc3\xa9" + std::string(5000, 'n');
  for (const std::string& json :
       {"{\"" + name + " x\":\"v\"}", "{\"" + name + "\":1}", "{\"" + name + "\":\"a;b\"}"}) {
    auto parsed = ParseCookiesJson(json);
    ASSERT_FALSE(parsed.ok());
    const std::string message(parsed.status().message());
    EXPECT_LT(message.size(), 200u) << message;
    EXPECT_TRUE(IsValidUtf8(message)) << message;
    EXPECT_NE(message.find("\"" + std::string(63, 'n') + "...\""), std::string::npos) << message;
  }
}

// Issue 17: the JSON parser's message quotes the token it read, which may end inside a
// character (the lexer reads bytes) or be a whole 60 KiB string: bounded and valid UTF-8.
TEST(HttpCookies, ParseErrorsAreBoundedAndValidUtf8) {
  for (const std::string& json :
       {std::string("{\"a\": \xc3\xa9}"), std::string("{\"a\": \xe2\x82\xac}"),
        "{\"" + std::string(60000, 'k') + "\x01\":\"v\"}"}) {
    auto parsed = ParseCookiesJson(json);
    ASSERT_FALSE(parsed.ok());
    const std::string message(parsed.status().message());
    EXPECT_TRUE(message.starts_with("cookies: not valid JSON: ")) << message;
    EXPECT_TRUE(IsValidUtf8(message)) << message;
    EXPECT_LE(message.size(), 600u);
  }
}

TEST(HttpCookies, DeepNestingIsAnErrorNotACrash) {
  std::string json = "{\"a\":" + std::string(20000, '[') + std::string(20000, ']') + "}";
  auto parsed = ParseCookiesJson(json);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr("got array"));
}

}  // namespace
}  // namespace ota::http
