#include "common/http/curl_easy.h"

#include <strings.h>

#include <mutex>

#include "common/util/strings.h"

namespace ota::http {
namespace {

bool HasScheme(std::string_view url, std::string_view scheme_and_colon_slashes) {
  return url.size() >= scheme_and_colon_slashes.size() &&
         ::strncasecmp(url.data(), scheme_and_colon_slashes.data(),
                       scheme_and_colon_slashes.size()) == 0;
}

}  // namespace

void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void ApplyEasyOptions(CURL* easy, const EasyOptions& options) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, options.protocols);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, options.max_redirects);
  // "" also disables http_proxy & co. from the environment: only the configured proxy counts.
  curl_easy_setopt(easy, CURLOPT_PROXY, options.proxy.c_str());
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout_s));
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_timeout_s));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, options.buffer_bytes);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, options.user_agent.c_str());
  if (options.path_as_is) curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
  if (!options.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options.ca_bundle.c_str());
}

void SetRedirectPolicy(CURL* easy, std::string_view url) {
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR,
                   HasScheme(url, "https://") ? "https" : "http,https");
}

std::string DescribeCurlFailure(CURL* easy, CURLcode code, const char* errbuf) {
  std::string out = (errbuf != nullptr && errbuf[0] != '\0') ? errbuf : curl_easy_strerror(code);
  long redirects = 0;
  char* effective_url = nullptr;
  curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective_url);
  if (redirects > 0 && effective_url != nullptr) {
    StrAppend(&out, " (redirected to ", effective_url);
    // The redirect policy refused the hop: say so instead of leaving "protocol not supported".
    if (code == CURLE_UNSUPPORTED_PROTOCOL && HasScheme(effective_url, "http://")) {
      out.append(": an https → http redirect is refused");
    }
    out.append(")");
  }
  return out;
}

}  // namespace ota::http
