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
// Resume (FetcherConfig::resume, on by default): a download whose body was cut in transit (reset
// or closed connection, server gone, stalled past the low-speed timeout) keeps its temp file, its
// running sha256 and, for zstd bodies, its decoder state (the compressed stream continues
// mid-frame; nothing written is ever read back), and its next attempt asks for
// `Range: bytes=<body bytes received>-` with `If-Range: <strong ETag, else Last-Modified>` of the
// first response when it had one. Only a 206 whose Content-Range (byte_range.h) starts exactly
// there continues the stream; a 200 (range ignored, or If-Range found the file changed) truncates
// the temp file and restarts hash and decoder in place; any other 206, or a 416, fails the
// attempt and the next one starts from byte 0 without Range. A content mismatch is never resumed
// (the whole file again, with retry_caching). Get() bodies are not resumed.
//
// Rate cap (FetcherConfig::max_download_rate): one token bucket per call for all its transfers;
// a transfer that finds it empty is paused (curl stops reading its socket) until the bucket
// refills, in turn with the others.
//
// Inside: curl_session.h (multi handle over epoll), transfer_loop.h (tasks, attempts, retries),
// body_sink.h (memory and temp-file sinks).
#pragma once

#include <memory>

#include "common/http/fetcher.h"

namespace ota::http {

std::unique_ptr<Fetcher> CreateCurlFetcher(const FetcherConfig& config);

}  // namespace ota::http
