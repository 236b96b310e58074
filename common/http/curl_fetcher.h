// The libcurl implementation of Fetcher.
//
// One curl multi handle per fetcher for DownloadAll (and a second one for Get, so a small Get is
// never queued behind a long DownloadAll); both keep their connections alive across calls and are
// driven through curl's socket interface over epoll, in the calling thread. A call returns as
// soon as its last transfer is done.
// Calls of the same kind are serialised. http://, https:// (verified against
// FetcherConfig::ca_bundle or the system store) and file:// URLs are supported; proxy
// environment variables are ignored: an ECU uses only the configured proxy. Redirects are
// followed except from https to http (common/http/curl_easy.h, the setup otaproxy shares).
// Which failures are retried, and when: retry_policy.h.
//
// Downloads stream into a temp file beside DownloadJob::dest (".<name>.ota-partial.<random>",
// mode 0600), zstd-decoded when the job says so, hashed on the fly, written in pieces of up to
// 1 MiB (a small file with a single write), and are renamed onto dest only after size and sha256
// matched; on failure nothing is left behind. There is no per-file fsync:
// the caller syncs the file system once when the whole download is done. Downloaded files keep
// mode 0600; whoever installs them sets the final mode. Content checks (size, sha256, zstd):
// common/content/verifier.h.
//
// Inside: curl_session.h (multi handle over epoll), transfer_loop.h (tasks, attempts, retries),
// body_sink.h (memory and temp-file sinks).
#pragma once

#include <memory>

#include "common/http/fetcher.h"

namespace ota::http {

std::unique_ptr<Fetcher> CreateCurlFetcher(const FetcherConfig& config);

}  // namespace ota::http
