// ota-image: builds and signs an OTA image (tier4's legacy format, or OTA image v1) from a rootfs
// directory, and verifies an image of either format served from a directory or an HTTP(S) URL.
#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/http/fetcher.h"
#include "common/image/client_package.h"
#include "common/image/image_reader.h"
#include "common/image/legacy/loader.h"
#include "common/image/legacy/writer.h"
#include "common/image/url.h"
#include "common/image/v1/reader.h"
#include "common/image/v1/release_package.h"
#include "common/image/v1/writer.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::tools {
namespace {

namespace stdfs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kSynopsis = R"(usage:
  ota-image build  --rootfs DIR --out DIR --key KEY --cert CERT [--persistents FILE] [--compress]
  ota-image build  --format v1 --rootfs DIR --out DIR --key KEY --cert CHAIN [--ecu-ids A,B]
                   [--persistents FILE] [--otaclient-release DIR] [v1 knobs, see --help]
  ota-image verify --image DIR|URL --certs DIR [--ca-bundle PEM] [--ecu-id ID]
                   [--release-key dev|prd]
  ota-image convert --image DIR|URL --certs DIR --out DIR --key KEY --cert CHAIN [v1 knobs]
  ota-image add-otaclient-package --rootfs DIR|--release-dir DIR --binary FILE --version V
                   [--architecture ARCH]
  ota-image --help
)";

constexpr std::string_view kDetails = R"(
build   Walks the rootfs (symlinks are recorded, never followed) and writes an OTA image in
        tier4's format into --out (created; must be empty): dirs.txt, symlinks.txt,
        regulars.txt, persistents.txt, total_regular_size.txt, data/<path> copies of the regular
        files, sign.pem (a copy of --cert) and metadata.jwt signed with --key (EC P-256 PEM).
          --persistents FILE  absolute paths to carry over from the running slot, one per line
                              (default: /etc/hosts /etc/hostname /etc/resolv.conf /etc/netplan)
          --compress          also write data.zst/<sha256>.zst for files of at least 16 KiB
                              that zstd shrinks by a factor of at least 1.25
        Skipped like tier4's generator does: __pycache__/ .git/ .ssh/ /boot/grub/ /boot/ota/
        /boot/initrd.img-*.old-dkms /boot/initrd.img(.old) /boot/vmlinuz(.old) /tmp, and
        fifos, sockets and devices (with a warning).

build --format v1
        Writes an OTA image v1 (OCI layout: oci-layout, index.json, index.jwt, blobs/sha256/)
        shaped like tier4's ota-image-builder's: one image manifest per ECU id sharing one
        zstd-compressed SQLite file table, the resource table, the blobs after the bundle →
        compress → slice filters, and index.jwt signed ES256 (raw r||s) with an x5c chain.
          --cert CHAIN          PEM: the signing certificate, then its intermediates (no root)
          --ecu-ids A,B         ECU ids with a payload each (default autoware)
          --release-key KEY     dev (default) or prd
          --architecture ARCH   x86_64 (default), aarch64, ...
          --hostname NAME       sys_config hostname (default autoware)
          --persistents FILE    sys_config persist_files (default: none)
          --iat SECONDS         the signature's issued-at time (default: now)
          --inline-max N        inline contents of 1..N bytes in the file table (64)
          --bundle-max-member N, --bundle-target N, --bundle-min-members N
                                bundle contents of (inline-max, N] bytes (8192) into bundles
                                closed past N bytes (33554432), a last one kept with >= N
                                members (128); --no-bundle turns bundling off
          --compress-min N      zstd resources larger than N bytes (1024) when they shrink by
                                1.25x; --zstd-level L (9); --no-compress turns it off
          --slice-threshold N, --slice-size N
                                slice resources larger than N (67108864) into pieces of N
                                (50331648); --no-slice turns it off
          --plain-tables        store the file and resource tables uncompressed
          --otaclient-release DIR
                                an otaclient release directory (manifest.json and its files,
                                e.g. written by add-otaclient-package --release-dir) stored as
                                the image's otaclient release-package artifact (index.json
                                entry of tier4's media and artifact types, signed with the rest):
                                each otaclient-cpp and squashfs package becomes a layer after
                                its size and sha256 are checked against manifest.json; patch
                                packages are skipped. ClientUpdate takes our package from there
                                (the rootfs needs no copy of the release).

verify  Loads the image as an ECU would (metadata.jwt, certificate chain against the CA groups
        in --certs, signature, list files against their signed hashes), then fetches every
        regular file's blob and checks its size and sha256. The format is detected as an ECU
        does (<image>/oci-layout present: v1). v1: index.jwt (x5c chain to a self-signed root
        in --certs, ES256, iat), index.json by its pinned digest, the payload of --ecu-id
        (default autoware, release key dev unless --release-key), every metadata blob by
        digest, then every content the payload needs, rebuilt from bundles, slices and zstd
        blobs and checked against its sha256; the otaclient release-package artifact, when there
        is one: its manifest and manifest.json by digest, each stored package's layer agreeing
        with its manifest.json entry, every layer blob by digest and size.
          --image DIR|URL     an image directory or its http://, https:// or file:// base URL
          --certs DIR         CA groups: <group>.<name>.pem files, e.g. 1.root.pem 1.interm.pem
                              (v1: every self-signed certificate there is a root)
          --ca-bundle PEM     CA bundle for HTTPS (default: the system store)
          --ecu-id ID, --release-key KEY
                              v1: the payload to check (default autoware, dev)

convert Turns a legacy image into an OTA image v1: the legacy image is verified as an ECU would
        (chain against the CA groups of --certs, list files, every blob's size and sha256), then
        written as build --format v1 would write the same tree (same knobs; persist_files from
        persistents.txt unless --persistents). Owners, modes, links and contents come from the
        image, so no root and no rootfs are needed.

add-otaclient-package
        Puts an otaclient executable into a release directory as the package ClientUpdate
        installs: <release>/otaclient-<V>-<ARCH> (0755) and its entry in <release>/manifest.json
        (the Python client's release manifest; type "otaclient-cpp", size, checksum
        sha256:<hex>). An existing manifest keeps its other packages; an otaclient-cpp entry for
        the same architecture is replaced. The client checks at ClientUpdate that the binary
        starts and prints V for --version; nothing is run here.
          --rootfs DIR          <release> is DIR/opt/ota/otaclient_release (run it before build,
                                either format: the release travels in the image's rootfs)
          --release-dir DIR     <release> is DIR, for build --format v1 --otaclient-release DIR
                                (the release travels as the v1 release-package artifact)
          --binary FILE         the otaclient executable
          --version V           its version (what its Status reports as otaclient_version)
          --architecture ARCH   x86_64 or arm64 (aarch64, amd64 accepted) (default: this
                                machine's)

Exit status: 0 success, 1 failure (the message says what and where), 2 bad usage.
)";

int Usage(std::string_view problem) {
  std::fprintf(stderr, "ota-image: %.*s\n\n%.*sRun 'ota-image --help' for details.\n",
               static_cast<int>(problem.size()), problem.data(), static_cast<int>(kSynopsis.size()),
               kSynopsis.data());
  return kExitUsage;
}

int Help() {
  std::fwrite(kSynopsis.data(), 1, kSynopsis.size(), stdout);
  std::fwrite(kDetails.data(), 1, kDetails.size(), stdout);
  return kExitOk;
}

int Fail(const absl::Status& status) {
  std::string message(status.message());
  std::fprintf(stderr, "ota-image: error: %s\n", message.c_str());
  return kExitFailed;
}

// "--name value" / "--name=value" flags, and value-less switches.
struct ParsedFlags {
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  bool help = false;
};

std::optional<ParsedFlags> ParseFlags(int argc, char** argv, int first,
                                      const std::set<std::string>& value_flags,
                                      const std::set<std::string>& switch_flags,
                                      std::string* problem) {
  ParsedFlags flags;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      *problem = StrCat("unexpected argument '", arg, "'");
      return std::nullopt;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (switch_flags.contains(name)) {
      if (value.has_value()) {
        *problem = StrCat("--", name, " takes no value");
        return std::nullopt;
      }
      flags.switches.insert(name);
      continue;
    }
    if (!value_flags.contains(name)) {
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
    if (value->empty()) {
      *problem = StrCat("--", name, " needs a non-empty value");
      return std::nullopt;
    }
    if (!flags.values.emplace(name, *value).second) {
      *problem = StrCat("--", name, " given twice");
      return std::nullopt;
    }
  }
  return flags;
}

std::optional<std::string> MissingFlag(const ParsedFlags& flags,
                                       std::initializer_list<std::string_view> required) {
  for (std::string_view name : required) {
    if (!flags.values.contains(std::string(name))) return StrCat("missing --", name);
  }
  return std::nullopt;
}

std::vector<std::string> SplitCommas(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::optional<uint64_t> ParseCount(const std::string& text) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(text);
}

// The v1 knobs shared by build --format v1 and convert; nullopt when they are fine, else the
// exit code of the usage error already printed.
std::optional<int> V1Options(ParsedFlags& flags, image::v1::V1BuildOptions& options) {
  options.out_dir = flags.values["out"];
  options.key_pem = flags.values["key"];
  options.cert_pem = flags.values["cert"];
  if (flags.values.contains("ecu-ids")) options.ecu_ids = SplitCommas(flags.values["ecu-ids"]);
  if (flags.values.contains("release-key")) options.release_key = flags.values["release-key"];
  if (options.release_key != "dev" && options.release_key != "prd") {
    return Usage("--release-key must be dev or prd");
  }
  if (flags.values.contains("architecture")) options.architecture = flags.values["architecture"];
  if (flags.values.contains("hostname")) options.hostname = flags.values["hostname"];
  if (flags.values.contains("persistents")) {
    absl::StatusOr<std::vector<std::string>> persist =
        image::ReadPersistentsFile(flags.values["persistents"]);
    if (!persist.ok()) return Fail(persist.status());
    options.persist_files = std::move(*persist);
  }
  const std::pair<const char*, uint64_t*> counts[] = {
      {"inline-max", &options.inline_max},
      {"bundle-max-member", &options.bundle_member_max},
      {"bundle-target", &options.bundle_target},
      {"bundle-min-members", &options.bundle_min_members},
      {"compress-min", &options.compress_min},
      {"slice-threshold", &options.slice_threshold},
      {"slice-size", &options.slice_size},
  };
  for (const auto& [name, field] : counts) {
    if (!flags.values.contains(name)) continue;
    std::optional<uint64_t> v = ParseCount(flags.values[name]);
    if (!v) return Usage(StrCat("--", name, " needs a non-negative integer"));
    *field = *v;
  }
  if (options.slice_size == 0) return Usage("--slice-size must be positive");
  if (flags.values.contains("iat")) {
    std::optional<uint64_t> v = ParseCount(flags.values["iat"]);
    if (!v) return Usage("--iat needs Unix seconds");
    options.iat = static_cast<int64_t>(*v);
  }
  if (flags.values.contains("zstd-level")) {
    std::optional<uint64_t> v = ParseCount(flags.values["zstd-level"]);
    if (!v || *v < 1 || *v > 22) return Usage("--zstd-level must be 1..22");
    options.zstd_level = static_cast<int>(*v);
  }
  options.bundle = !flags.switches.contains("no-bundle");
  options.compress = !flags.switches.contains("no-compress");
  options.slice = !flags.switches.contains("no-slice");
  options.compress_tables = !flags.switches.contains("plain-tables");
  return std::nullopt;
}

int PrintV1Summary(const image::v1::V1BuildOptions& options,
                   const absl::StatusOr<image::v1::V1BuildSummary>& s) {
  if (!s.ok()) return Fail(s.status());
  std::printf(
      "built OTA image v1 in %s: %llu dirs, %llu non-regular, %llu regular files (%llu inlined); "
      "%llu resources, %llu bundles of %llu contents, %llu compressed, %llu sliced into %llu "
      "slices; %llu blobs (%llu bytes)\n",
      options.out_dir.c_str(), static_cast<unsigned long long>(s->dirs),
      static_cast<unsigned long long>(s->non_regulars),
      static_cast<unsigned long long>(s->regulars), static_cast<unsigned long long>(s->inlined),
      static_cast<unsigned long long>(s->resources), static_cast<unsigned long long>(s->bundles),
      static_cast<unsigned long long>(s->bundled), static_cast<unsigned long long>(s->compressed),
      static_cast<unsigned long long>(s->sliced), static_cast<unsigned long long>(s->slices),
      static_cast<unsigned long long>(s->blobs), static_cast<unsigned long long>(s->blobs_size));
  return kExitOk;
}

int RunBuildV1(ParsedFlags& flags) {
  image::v1::V1BuildOptions options;
  options.rootfs = flags.values["rootfs"];
  if (std::optional<int> bad = V1Options(flags, options)) return *bad;
  if (flags.values.contains("otaclient-release")) {
    options.otaclient_release = flags.values["otaclient-release"];
  }
  return PrintV1Summary(options, image::v1::BuildV1Image(options));
}

int RunBuild(int argc, char** argv) {
  std::string problem;
  std::optional<ParsedFlags> flags =
      ParseFlags(argc, argv, 2,
                 {"rootfs",
                  "out",
                  "key",
                  "cert",
                  "persistents",
                  "format",
                  "ecu-ids",
                  "release-key",
                  "architecture",
                  "hostname",
                  "iat",
                  "inline-max",
                  "bundle-max-member",
                  "bundle-target",
                  "bundle-min-members",
                  "compress-min",
                  "zstd-level",
                  "slice-threshold",
                  "slice-size",
                  "otaclient-release"},
                 {"compress", "no-bundle", "no-compress", "no-slice", "plain-tables"}, &problem);
  if (!flags) return Usage(problem);
  if (flags->help) return Help();
  if (auto missing = MissingFlag(*flags, {"rootfs", "out", "key", "cert"})) {
    return Usage(*missing);
  }
  const std::string format = flags->values.contains("format") ? flags->values["format"] : "legacy";
  if (format == "v1") {
    if (flags->switches.contains("compress")) {
      return Usage("--compress is for legacy images; v1 compresses by default (--no-compress)");
    }
    return RunBuildV1(*flags);
  }
  if (format != "legacy") return Usage(StrCat("unknown --format '", format, "' (legacy or v1)"));
  for (const char* v1_only :
       {"ecu-ids", "release-key", "architecture", "hostname", "iat", "inline-max",
        "bundle-max-member", "bundle-target", "bundle-min-members", "compress-min", "zstd-level",
        "slice-threshold", "slice-size", "otaclient-release"}) {
    if (flags->values.contains(v1_only)) return Usage(StrCat("--", v1_only, " needs --format v1"));
  }
  image::BuildOptions options;
  options.rootfs = flags->values["rootfs"];
  options.out_dir = flags->values["out"];
  options.key_pem = flags->values["key"];
  options.cert_pem = flags->values["cert"];
  if (flags->values.contains("persistents")) {
    options.persistents_file = flags->values["persistents"];
  }
  options.compress = flags->switches.contains("compress");

  absl::StatusOr<image::BuildSummary> summary = image::BuildImage(options);
  if (!summary.ok()) return Fail(summary.status());
  std::printf(
      "built OTA image in %s: %llu dirs, %llu symlinks, %llu regular files (%llu bytes), "
      "%llu persistents",
      options.out_dir.c_str(), static_cast<unsigned long long>(summary->dirs),
      static_cast<unsigned long long>(summary->symlinks),
      static_cast<unsigned long long>(summary->regulars),
      static_cast<unsigned long long>(summary->total_regular_size),
      static_cast<unsigned long long>(summary->persistents));
  if (options.compress) {
    std::printf(", %llu compressed blobs",
                static_cast<unsigned long long>(summary->compressed_files));
  }
  std::printf("\n");
  return kExitOk;
}

// A directory becomes a file:// URL; anything with a scheme is used as given.
absl::StatusOr<std::string> ImageBaseUrl(const std::string& image) {
  if (image.find("://") != std::string::npos) return image;
  std::error_code ec;
  stdfs::path dir = stdfs::absolute(image, ec);
  if (ec || !stdfs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        StrCat("--image ", image, " is neither a directory nor a URL"));
  }
  return StrCat("file://", image::PercentEncodePath(dir.lexically_normal().string()));
}

struct BlobCheck {
  std::string what;  // the regular file's path, for messages
  std::string url;
};

// v1: the otaclient release-package artifact, when the image has one: package manifest and its
// config (manifest.json) by digest, every stored package of manifest.json with its layer
// (annotations agreeing), every layer blob downloaded into `dir` by digest and size. Returns the
// number of layers.
absl::StatusOr<size_t> VerifyReleasePackage(http::Fetcher& fetcher, const image::Image& img,
                                            const stdfs::path& dir) {
  OTA_ASSIGN_OR_RETURN(
      image::v1::LoadedReleasePackage loaded,
      image::v1::LoadReleasePackage(fetcher, img.base_url, *img.otaclient_package));
  for (const image::ClientPackage& package : loaded.release.packages) {
    if (image::v1::LayerMediaTypeOf(package.type).empty()) continue;  // not stored (patch)
    absl::StatusOr<const image::v1::ReleasePackageLayer*> layer =
        image::v1::FindPackageLayer(loaded.manifest, package);
    if (!layer.ok()) return WithContext(layer.status(), "otaclient release-package artifact");
  }
  std::vector<http::DownloadJob> jobs;
  for (const image::v1::ReleasePackageLayer& layer : loaded.manifest.layers) {
    http::DownloadJob job;
    job.url = image::v1::BlobUrl(img.base_url, layer.blob.hex());
    job.dest = dir / layer.blob.hex();
    job.sha256 = layer.blob.digest;
    job.size = layer.blob.size;
    jobs.push_back(std::move(job));
  }
  absl::Status first = absl::OkStatus();
  const http::CancelFlag never_cancel{false};
  OTA_RETURN_IF_ERROR(fetcher.DownloadAll(
      jobs,
      [&](const http::DownloadResult& r) {
        if (!r.status.ok() && first.ok()) first = r.status;
        return true;
      },
      http::TransferObserver{}, never_cancel));
  OTA_RETURN_IF_ERROR(WithContext(first, "otaclient release-package layer"));
  return jobs.size();
}

// v1: the payload's metadata as an ECU loads it, then every content it needs, rebuilt through the
// image's content source into a scratch dir (each checked against its sha256 there).
int VerifyV1(http::Fetcher& fetcher, const std::string& base_url, const crypto::CaStore& ca_store,
             ParsedFlags& flags) {
  image::ReaderOptions options;
  options.ca_store = &ca_store;
  if (flags.values.contains("ecu-id")) options.ecu_id = flags.values["ecu-id"];
  if (flags.values.contains("release-key")) options.release_key = flags.values["release-key"];
  absl::StatusOr<image::Image> img =
      image::OpenImageAs(image::ImageFormat::kV1, fetcher, base_url, options);
  if (!img.ok()) return Fail(img.status());
  const image::Manifest& m = img->manifest;
  std::vector<image::ContentRequest> requests;
  std::set<std::string> seen;
  uint64_t total_size = 0, inlined = 0;
  for (uint32_t i = 0; i < m.regulars.size(); ++i) {
    const image::RegularEntry& e = m.regulars[i];
    total_size += e.size;
    if (e.has_inline) ++inlined;
    if (e.has_inline || e.size == 0) continue;
    if (!seen.insert(crypto::ToHex(e.sha256)).second) continue;
    image::ContentRequest r;
    r.sha256 = e.sha256;
    r.size = e.size;
    r.entry = i;
    requests.push_back(r);
  }
  absl::StatusOr<fs::TempDir> scratch = fs::TempDir::Create("ota-image-verify");
  if (!scratch.ok()) return Fail(scratch.status());
  const stdfs::path resources = scratch->path() / "resources";
  std::error_code ec;
  stdfs::create_directories(resources, ec);
  const http::CancelFlag never_cancel{false};
  size_t delivered = 0;
  image::ContentFetchEnv env;
  env.fetcher = &fetcher;
  env.resources_dir = resources;
  env.work_dir = scratch->path() / "work";
  env.cancel = &never_cancel;
  env.on_content = [&](size_t k, uint64_t, uint32_t) {
    ++delivered;
    stdfs::remove(resources / crypto::ToHex(requests[k].sha256), ec);  // keep the scratch small
  };
  absl::Status fetched = img->source->Fetch(m, requests, env);
  if (!fetched.ok()) return Fail(fetched);
  if (delivered != requests.size()) {
    return Fail(absl::InternalError(
        StrCat("only ", delivered, " of ", requests.size(), " contents were delivered")));
  }
  std::string package_note;
  if (img->otaclient_package.has_value()) {
    const stdfs::path packages = scratch->path() / "otaclient-packages";
    stdfs::create_directories(packages, ec);
    absl::StatusOr<size_t> layers = VerifyReleasePackage(fetcher, *img, packages);
    if (!layers.ok()) return Fail(layers.status());
    package_note = StrCat("; otaclient release package: ", *layers, " packages matching");
  }
  std::printf(
      "verified OTA image v1 %s for ECU %s (%s): signature and certificate chain OK; %zu dirs, "
      "%zu symlinks, %zu whiteouts, %zu regular files (%llu bytes, %llu inlined), %zu "
      "persistents; %zu contents rebuilt and matching%s\n",
      base_url.c_str(), options.ecu_id.c_str(), options.release_key.c_str(), m.dirs.size(),
      m.symlinks.size(), m.specials.size(), m.regulars.size(),
      static_cast<unsigned long long>(total_size), static_cast<unsigned long long>(inlined),
      m.persistents.size(), requests.size(), package_note.c_str());
  return kExitOk;
}

int RunVerify(int argc, char** argv) {
  std::string problem;
  std::optional<ParsedFlags> flags = ParseFlags(
      argc, argv, 2, {"image", "certs", "ca-bundle", "ecu-id", "release-key"}, {}, &problem);
  if (!flags) return Usage(problem);
  if (flags->help) return Help();
  if (auto missing = MissingFlag(*flags, {"image", "certs"})) return Usage(*missing);

  absl::StatusOr<std::string> base_url = ImageBaseUrl(flags->values["image"]);
  if (!base_url.ok()) return Fail(base_url.status());
  absl::StatusOr<crypto::CaStore> ca_store = crypto::CaStore::LoadDir(flags->values["certs"]);
  if (!ca_store.ok()) return Fail(ca_store.status());

  http::FetcherConfig config;
  // A mismatch on a static server is not transient; a few attempts cover network hiccups.
  config.max_attempts = 3;
  if (flags->values.contains("ca-bundle")) config.ca_bundle = flags->values["ca-bundle"];
  std::unique_ptr<http::Fetcher> fetcher = http::CreateCurlFetcher(config);
  absl::StatusOr<image::ImageFormat> format = image::DetectImageFormat(*fetcher, *base_url);
  if (!format.ok()) return Fail(format.status());
  if (*format == image::ImageFormat::kV1) {
    if (ca_store->v1_roots_empty()) {
      return Fail(absl::InvalidArgumentError(
          StrCat("--certs ", flags->values["certs"],
                 " holds no self-signed root certificate; nothing to verify against")));
    }
    return VerifyV1(*fetcher, *base_url, *ca_store, *flags);
  }
  if (ca_store->empty()) {
    return Fail(absl::InvalidArgumentError(
        StrCat("--certs ", flags->values["certs"],
               " holds no CA groups (<group>.<name>.pem files); nothing to verify against")));
  }

  image::LoadOptions load_options;
  load_options.ca_store = &*ca_store;
  absl::StatusOr<image::LoadedImage> loaded = image::LoadImage(*fetcher, *base_url, load_options);
  if (!loaded.ok()) return Fail(loaded.status());
  const image::Metadata& md = loaded->metadata;
  const image::Manifest& manifest = loaded->manifest;

  // One job per distinct blob URL: compressed blobs are shared by content.
  absl::StatusOr<fs::TempDir> scratch = fs::TempDir::Create("ota-image-verify");
  if (!scratch.ok()) return Fail(scratch.status());
  std::vector<http::DownloadJob> jobs;
  std::vector<BlobCheck> checks;
  std::vector<BlobCheck> empty_files;
  std::map<std::string, size_t> job_by_url;
  const crypto::Sha256Digest kEmptySha256 = crypto::Sha256Of("");
  uint64_t total_size = 0;
  uint64_t compressed_entries = 0;
  for (const image::RegularEntry& entry : manifest.regulars) {
    std::string path(manifest.Str(entry.path));
    total_size += entry.size;
    std::string url;
    if (entry.compression == image::Compression::kZstd) {
      if (!md.compressed_rootfs_directory.has_value()) {
        return Fail(absl::InvalidArgumentError(
            StrCat(md.regular.file, ": ", path,
                   " is marked zst but metadata.jwt has no compressed_rootfs_directory")));
      }
      ++compressed_entries;
      url = image::CompressedBlobUrl(*base_url, *md.compressed_rootfs_directory,
                                     crypto::ToHex(entry.sha256));
    } else {
      url = image::RegularFileUrl(*base_url, md.rootfs_directory, path);
    }
    if (job_by_url.contains(url)) continue;
    if (entry.sha256 == kEmptySha256) {
      // The fetcher (like the client) never requests empty files; check them one by one here.
      job_by_url.emplace(url, empty_files.size());
      empty_files.push_back(BlobCheck{path, url});
      continue;
    }
    http::DownloadJob job;
    job.url = url;
    job.dest = scratch->path() / StrCat("blob-", jobs.size());
    job.sha256 = entry.sha256;
    if (entry.has_size) job.size = entry.size;
    job.compression = entry.compression;
    job.tag = jobs.size();
    job_by_url.emplace(url, jobs.size());
    jobs.push_back(std::move(job));
    checks.push_back(BlobCheck{path, url});
  }

  constexpr size_t kMaxReported = 20;
  size_t failures = 0;
  auto report = [&](const BlobCheck& check, std::string_view problem) {
    if (++failures <= kMaxReported) {
      std::fprintf(stderr, "ota-image: blob of %s (%s): %.*s\n", check.what.c_str(),
                   check.url.c_str(), static_cast<int>(problem.size()), problem.data());
    }
  };
  const http::CancelFlag never_cancel{false};
  absl::Status run = fetcher->DownloadAll(
      jobs,
      [&](const http::DownloadResult& result) {
        const BlobCheck& check = checks.at(result.tag);
        if (result.status.ok()) {
          std::error_code ec;
          stdfs::remove(jobs.at(result.tag).dest, ec);  // keep the scratch space small
          return true;
        }
        report(check, std::string(result.status.message()));
        return true;
      },
      http::TransferObserver{}, never_cancel);
  if (!run.ok()) return Fail(run);
  for (const BlobCheck& check : empty_files) {
    http::GetOptions get_options;
    get_options.no_cache = false;
    get_options.max_bytes = 1;
    absl::StatusOr<std::string> body = fetcher->Get(check.url, get_options);
    if (!body.ok()) {
      report(check, std::string(body.status().message()));
    } else if (!body->empty()) {
      report(check, "not empty although the image lists it as an empty file");
    }
  }
  const size_t blobs = jobs.size() + empty_files.size();
  if (failures > 0) {
    if (failures > kMaxReported) {
      std::fprintf(stderr, "ota-image: ... and %zu more\n", failures - kMaxReported);
    }
    std::fprintf(stderr, "ota-image: FAILED: %zu of %zu blobs missing or not matching in %s\n",
                 failures, blobs, base_url->c_str());
    return kExitFailed;
  }
  std::printf(
      "verified OTA image %s: signature and certificate chain OK; %zu dirs, %zu symlinks, "
      "%zu regular files (%llu bytes, %llu from compressed blobs), %zu persistents; "
      "%zu blobs present and matching\n",
      base_url->c_str(), manifest.dirs.size(), manifest.symlinks.size(), manifest.regulars.size(),
      static_cast<unsigned long long>(total_size),
      static_cast<unsigned long long>(compressed_entries), manifest.persistents.size(), blobs);
  return kExitOk;
}

// Legacy image → OTA image v1: the legacy image is loaded and verified as an ECU would, every
// content fetched (size and sha256 checked), and the v1 image built from that model.
int RunConvert(int argc, char** argv) {
  std::string problem;
  std::optional<ParsedFlags> flags =
      ParseFlags(argc, argv, 2,
                 {"image",
                  "certs",
                  "ca-bundle",
                  "out",
                  "key",
                  "cert",
                  "persistents",
                  "ecu-ids",
                  "release-key",
                  "architecture",
                  "hostname",
                  "iat",
                  "inline-max",
                  "bundle-max-member",
                  "bundle-target",
                  "bundle-min-members",
                  "compress-min",
                  "zstd-level",
                  "slice-threshold",
                  "slice-size"},
                 {"no-bundle", "no-compress", "no-slice", "plain-tables"}, &problem);
  if (!flags) return Usage(problem);
  if (flags->help) return Help();
  if (auto missing = MissingFlag(*flags, {"image", "certs", "out", "key", "cert"})) {
    return Usage(*missing);
  }
  image::v1::V1BuildOptions options;
  if (std::optional<int> bad = V1Options(*flags, options)) return *bad;
  absl::StatusOr<std::string> base_url = ImageBaseUrl(flags->values["image"]);
  if (!base_url.ok()) return Fail(base_url.status());
  absl::StatusOr<crypto::CaStore> ca_store = crypto::CaStore::LoadDir(flags->values["certs"]);
  if (!ca_store.ok()) return Fail(ca_store.status());
  http::FetcherConfig config;
  config.max_attempts = 3;
  if (flags->values.contains("ca-bundle")) config.ca_bundle = flags->values["ca-bundle"];
  std::unique_ptr<http::Fetcher> fetcher = http::CreateCurlFetcher(config);
  absl::StatusOr<image::ImageFormat> format = image::DetectImageFormat(*fetcher, *base_url);
  if (!format.ok()) return Fail(format.status());
  if (*format != image::ImageFormat::kLegacy) {
    return Fail(absl::InvalidArgumentError(StrCat(*base_url, " is already an OTA image v1")));
  }
  image::ReaderOptions reader;
  reader.ca_store = &*ca_store;
  absl::StatusOr<image::Image> img =
      image::OpenImageAs(image::ImageFormat::kLegacy, *fetcher, *base_url, reader);
  if (!img.ok()) return Fail(img.status());
  const image::Manifest& m = img->manifest;
  if (!flags->values.contains("persistents")) {
    for (image::StrRef p : m.persistents) options.persist_files.emplace_back(m.Str(p));
  }
  std::vector<image::ContentRequest> requests;
  std::set<std::string> seen;
  for (uint32_t i = 0; i < m.regulars.size(); ++i) {
    const image::RegularEntry& e = m.regulars[i];
    if ((e.has_size && e.size == 0) || e.sha256 == crypto::Sha256Of("")) continue;
    if (!seen.insert(crypto::ToHex(e.sha256)).second) continue;
    image::ContentRequest r;
    r.sha256 = e.sha256;
    if (e.has_size) r.size = e.size;
    r.entry = i;
    requests.push_back(r);
  }
  absl::StatusOr<fs::TempDir> scratch = fs::TempDir::Create("ota-image-convert");
  if (!scratch.ok()) return Fail(scratch.status());
  const stdfs::path contents = scratch->path() / "contents";
  std::error_code ec;
  stdfs::create_directories(contents, ec);
  const http::CancelFlag never_cancel{false};
  image::ContentFetchEnv env;
  env.fetcher = fetcher.get();
  env.resources_dir = contents;
  env.work_dir = scratch->path() / "work";
  env.cancel = &never_cancel;
  absl::Status fetched = img->source->Fetch(m, requests, env);
  if (!fetched.ok()) return Fail(fetched);
  return PrintV1Summary(options, image::v1::BuildV1ImageFromManifest(options, m, contents));
}

// "2026-12-06T10:00:00Z"
std::string IsoNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

int RunAddOtaclientPackage(int argc, char** argv) {
  std::string problem;
  std::optional<ParsedFlags> flags = ParseFlags(
      argc, argv, 2, {"rootfs", "release-dir", "binary", "version", "architecture"}, {}, &problem);
  if (!flags) return Usage(problem);
  if (flags->help) return Help();
  if (flags->values.contains("rootfs") == flags->values.contains("release-dir")) {
    return Usage("give one of --rootfs and --release-dir");
  }
  if (auto missing = MissingFlag(*flags, {"binary", "version"})) return Usage(*missing);
  struct utsname host {};
  ::uname(&host);
  const std::string arch(image::PackageArchitectureOf(
      flags->values.contains("architecture") ? flags->values["architecture"] : host.machine));
  if (arch.empty()) return Usage("--architecture must be x86_64 or arm64");

  image::ClientPackage package;
  package.version = flags->values["version"];
  package.type = std::string(image::kCppPackageType);
  package.architecture = arch;
  package.filename = StrCat("otaclient-", package.version, "-", arch);
  package.checksum_algorithm = "sha256";
  absl::StatusOr<std::string> binary = fs::ReadFile(flags->values["binary"]);
  if (!binary.ok()) return Fail(binary.status());
  package.size = binary->size();
  package.checksum_hex = crypto::ToHex(crypto::Sha256Of(*binary));
  // What it writes must parse as the client will parse it (version and file name rules).
  if (auto check = image::ParseClientReleaseManifest(image::ClientReleaseManifestJson(package, ""));
      !check.ok()) {
    return Fail(check.status());
  }
  const stdfs::path dir =
      flags->values.contains("release-dir")
          ? stdfs::path(flags->values["release-dir"])
          : stdfs::path(flags->values["rootfs"]) / std::string(image::kClientReleaseDir).substr(1);
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) return Fail(absl::InternalError(StrCat("mkdir ", dir.string(), ": ", ec.message())));
  const stdfs::path manifest_path = dir / "manifest.json";
  std::string manifest_text;
  if (stdfs::exists(manifest_path, ec)) {
    absl::StatusOr<std::string> old = fs::ReadFile(manifest_path);
    if (!old.ok()) return Fail(old.status());
    absl::StatusOr<std::string> merged = image::AddToClientReleaseManifest(*old, package);
    if (!merged.ok()) return Fail(WithContext(merged.status(), manifest_path.string()));
    manifest_text = *std::move(merged);
  } else {
    manifest_text = image::ClientReleaseManifestJson(package, IsoNow());
  }
  if (absl::Status w = fs::WriteFileAtomic(dir / package.filename, *binary, 0755); !w.ok()) {
    return Fail(w);
  }
  if (absl::Status w = fs::WriteFileAtomic(manifest_path, manifest_text); !w.ok()) return Fail(w);
  std::printf("added otaclient package %s (%s, %llu bytes, sha256:%s) to %s\n",
              package.version.c_str(), arch.c_str(), static_cast<unsigned long long>(package.size),
              package.checksum_hex.c_str(), dir.c_str());
  return kExitOk;
}

int Main(int argc, char** argv) {
  if (argc < 2) return Usage("missing command (build, verify or convert)");
  std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") return Help();
  if (command == "build") return RunBuild(argc, argv);
  if (command == "verify") return RunVerify(argc, argv);
  if (command == "convert") return RunConvert(argc, argv);
  if (command == "add-otaclient-package") return RunAddOtaclientPackage(argc, argv);
  return Usage(StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace ota::tools

int main(int argc, char** argv) { return ota::tools::Main(argc, argv); }
