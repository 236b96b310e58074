// Fuzzes the reading of OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE (a pydantic bool): no crash;
// "off" only for the six false words (any case, blanks around them), and a warning exactly when
// the value is neither a true nor a false word.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "otaproxy/external/external_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An environment value is a C string: up to the first NUL.
  std::string value(reinterpret_cast<const char*>(data), size);
  value = value.substr(0, value.find('\0'));
  std::string warning;
  const bool enabled = ota::proxy::ExternalCacheEnabledByEnv(value.c_str(), &warning);
  std::string word = value;
  const auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
  word.erase(word.begin(), std::find_if_not(word.begin(), word.end(), blank));
  word.erase(std::find_if_not(word.rbegin(), word.rend(), blank).base(), word.end());
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool is_false =
      word == "0" || word == "false" || word == "f" || word == "no" || word == "n" || word == "off";
  const bool is_true =
      word == "1" || word == "true" || word == "t" || word == "yes" || word == "y" || word == "on";
  if (enabled == is_false) std::abort();
  if (warning.empty() != (is_false || is_true)) std::abort();
  return 0;
}
