// A plain libcurl GET through an otaproxy on 127.0.0.1, for the otaproxy tests: what the client
// got (curl result, HTTP status, body and response headers).
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ota::proxy::testing {

struct ProxyResponse {
  CURLcode result = CURLE_OK;
  long status = 0;
  std::string body;
  std::string headers;  // every response header line, as received
};

inline size_t AppendToString(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// GET `url` through the proxy at 127.0.0.1:`port` with extra request `headers` ("Name: value").
inline ProxyResponse ProxyGet(uint16_t port, const std::string& url,
                              const std::vector<std::string>& headers) {
  ProxyResponse out;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  const std::string proxy = "http://127.0.0.1:" + std::to_string(port);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROXY, proxy.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  out.result = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return out;
}

}  // namespace ota::proxy::testing
