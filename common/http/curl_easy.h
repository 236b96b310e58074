// The one libcurl setup shared by otaclient's fetcher (curl_fetcher.h) and otaproxy's upstream
// client (otaproxy/upstream/upstream_client.h): RAII handles, the options every transfer of both
// gets, the redirect policy and how a failed transfer is described.
//
// Redirect policy: redirects are followed (up to `max_redirects`) within http and https, but a
// transfer that starts on https:// never follows a redirect to http:// (cookies and credentials
// would travel in clear text, and the content would no longer be authenticated by TLS); such a
// transfer fails with CURLE_UNSUPPORTED_PROTOCOL and DescribeCurlFailure() says why.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>
#include <string_view>

namespace ota::http {

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using UniqueEasy = std::unique_ptr<CURL, EasyDeleter>;
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using UniqueMulti = std::unique_ptr<CURLM, MultiDeleter>;
struct ShareDeleter {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};
using UniqueShare = std::unique_ptr<CURLSH, ShareDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using UniqueSlist = std::unique_ptr<curl_slist, SlistDeleter>;

// curl_global_init, once per process (thread-safe).
void CurlGlobalInitOnce();

// What differs between the users of the shared setup.
struct EasyOptions {
  const char* protocols = "http,https";  // schemes a transfer may start with
  // "http://host:port", or "" = direct. Proxy environment variables are always ignored.
  std::string proxy;
  std::string ca_bundle;  // PEM file for HTTPS verification; "" = system default
  int connect_timeout_s = 10;
  int low_speed_timeout_s = 30;  // abort a transfer slower than 1 byte/s for this long
  long max_redirects = 5;
  // curl's receive buffer: larger means fewer syscalls on big bodies, but a pooled handle keeps
  // it allocated.
  long buffer_bytes = 64L * 1024;
  std::string user_agent;
  bool path_as_is = false;  // send the path without squashing "/../" and "/./"
};

// Sets every option of `options` on `easy` (plus signal-free operation, redirect following,
// TCP keep-alive and TLS verification, which curl does by default and nothing here turns off).
// curl copies the strings. Per transfer, also call SetRedirectPolicy().
void ApplyEasyOptions(CURL* easy, const EasyOptions& options);

// The redirect policy above for a transfer of `url` (call whenever the URL is set).
void SetRedirectPolicy(CURL* easy, std::string_view url);

// Why a finished transfer failed: `errbuf` (CURLOPT_ERRORBUFFER) or curl's text for `code`,
// followed by where it was redirected to, if it was, and "https → http redirect refused" when
// that is what stopped it.
std::string DescribeCurlFailure(CURL* easy, CURLcode code, const char* errbuf);

}  // namespace ota::http
