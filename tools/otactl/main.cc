// otactl: the operator's command line over the OtaClientV2 gRPC API.
//   otactl status [--watch] [--json]      otactl update --ecu ID --version V --url U ...
//   otactl abort [--ecu ID...]            otactl rollback [--ecu ID...]
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/config/ecu_info.h"
#include "common/config/host.h"
#include "common/crypto/grpc_tls.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"
#include "tools/otactl/status_view.h"
#include "tools/otactl/update_request.h"

namespace ota::otactl {
namespace {

constexpr int kDaemonPort = 50051;
constexpr char kFallbackTarget[] = "127.0.0.1:50051";

constexpr char kMainHelp[] =
    R"(otactl: talk to the otaclient daemon over its gRPC API (OtaClientV2).

Usage: otactl <command> [options]

Commands:
  status     show every ECU's OTA status (table, --watch, --json)
  update     ask ECUs to update to an image
  client-update
             ask ECUs to replace their otaclient with the one packaged in an image
  abort      ask ECUs to abort a running update
  rollback   ask ECUs to roll back to the previous slot

Options every command takes:
  --target HOST:PORT  daemon to talk to (default: ip_addr from <config-dir>/ecu_info.yaml with
                      port 50051, else 127.0.0.1:50051)
  --config-dir DIR    where ecu_info.yaml lives (default /boot/ota)
  --timeout S         deadline of each call in seconds (default 5)
  --grpc-tls-cert PEM, --grpc-tls-key PEM, --grpc-tls-ca PEM
                      mutual TLS, for a daemon started with the same options (all three or
                      none): a client certificate signed by the daemon's CA, its key and the
                      CA. The daemon's certificate must name the host of --target (an IP
                      subjectAltName for an address)
  -h, --help          help for the command

Exit codes: 0 ok, 1 an ECU failed or rejected the request, 2 usage error,
            3 still updating (status without --watch), 4 daemon unreachable or call failed.
Run `otactl <command> --help` for the command's options.
)";

constexpr char kStatusHelp[] =
    R"(Usage: otactl status [--watch] [--interval S] [--json] [common options]

Shows one line per ECU of the tree: id, OTA status, firmware version (-> version being installed),
update phase, progress of that phase (bytes downloaded while downloading, else files in place),
downloaded/total bytes, download speed, ETA of the download and failure reason.

  --watch        redraw every interval, with a progress bar per ECU, until no ECU is updating
                 (rollbacking/aborting) any more; keeps polling while the daemon is unreachable
                 (an ECU reboots at the end of its update)
  --interval S   seconds between polls with --watch (default 1)
  --json         print the raw StatusResponse as JSON (proto field names); with --watch one
                 JSON object per line per poll

Exit code: 3 while any ECU is still in progress (without --watch), else 1 when any ECU is
FAILURE, ROLLBACK_FAILURE or ABORTED, else 0. 4 when the daemon cannot be reached.
)";

constexpr char kClientUpdateHelp[] =
    R"(Usage: otactl client-update (the options of otactl update)

ClientUpdate: each named ECU (forwarded like update) replaces its otaclient with the
"otaclient-cpp" package for its CPU in the image at --url (opt/ota/otaclient_release/, see
ota-image add-otaclient-package), verified through the image's signature. The ECU reports
CLIENT_UPDATING meanwhile; afterwards Status shows the new otaclient_version, or FAILURE with
the reason while the old otaclient keeps serving.
)";

constexpr char kUpdateHelp[] =
    R"(Usage: otactl update --ecu ID --version V --url U [--cookies JSON|@FILE]
                     [--release-name N] [--release-id R] [--image-id I] [--ecu ID ...]
       otactl update --from request.yaml
       [--request-id ID] [common options]

Each --ecu starts a new entry; the --version, --url, --cookies, --release-name, --release-id and
--image-id after it belong to that entry. --url is the image base URL (http:// or https://),
--cookies a JSON object of cookie name -> value (e.g. CloudFront signed cookies), or @FILE to
read it from a file.

--from reads the entries from YAML instead:
  - ecu_id: main
    version: "2.0.0"
    url: https://ota.example.com/images/2.0.0
    cookies: {CloudFront-Policy: "...", CloudFront-Signature: "..."}   # or a JSON string

Prints the daemon's answer per ECU. Exit code 1 if any ECU did not accept (result other than
NO_FAILURE); the update's progress and outcome are then visible with `otactl status --watch`.
)";

constexpr char kAbortHelp[] =
    R"(Usage: otactl abort [--ecu ID ...] [--request-id ID] [common options]

Asks the daemon to abort a running update and prints the answer per ECU. Like the Python
client, the daemon aborts itself and every ECU below it whatever the request lists (--ecu,
default: every ECU in its available_ecu_ids, is sent as given); an ECU with nothing to abort
answers ABORT_FAILURE "Cannot abort: no active OTA update in progress". Exit code 1 if any ECU
answered ABORT_FAILURE.
)";

constexpr char kRollbackHelp[] =
    R"(Usage: otactl rollback [--ecu ID ...] [--request-id ID] [common options]

Asks the listed ECUs (default: every ECU in the daemon's available_ecu_ids) to roll back to the
previous slot and prints the answer per ECU. Exit code 1 if any ECU did not accept.
)";

struct CommonOptions {
  std::string target;
  std::filesystem::path config_dir = "/boot/ota";
  std::chrono::milliseconds timeout{5000};
  std::string request_id;
  crypto::GrpcTlsFiles tls;  // all empty: plain gRPC
  // Loaded from `tls` once every option is parsed (LoadTls).
  std::optional<crypto::GrpcTlsIdentity> tls_identity;
};

// Walks the arguments of one command; --opt value and --opt=value both work.
class ArgCursor {
 public:
  explicit ArgCursor(std::vector<std::string> args) : args_(std::move(args)) {}
  bool Done() const { return index_ >= args_.size(); }
  // The next option name (text before '=' if any); advances past it.
  std::string NextName() {
    const std::string& arg = args_[index_++];
    pending_value_.reset();
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      pending_value_ = arg.substr(eq + 1);
      return arg.substr(0, eq);
    }
    return arg;
  }
  absl::StatusOr<std::string> Value(const std::string& name) {
    if (pending_value_) return *std::exchange(pending_value_, std::nullopt);
    if (Done()) return absl::InvalidArgumentError(StrCat(name, " needs a value"));
    return args_[index_++];
  }
  // For flags without value: "--watch=x" is a mistake.
  absl::Status NoValue(const std::string& name) const {
    if (pending_value_) return absl::InvalidArgumentError(StrCat(name, " takes no value"));
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> args_;
  size_t index_ = 0;
  std::optional<std::string> pending_value_;
};

absl::StatusOr<double> ParsePositiveSeconds(const std::string& name, const std::string& text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || !(value > 0) ||
      value > 86400) {
    return absl::InvalidArgumentError(
        StrCat(name, " expects seconds (0 < S <= 86400), got \"", text, "\""));
  }
  return value;
}

// Handles an option every command takes; false if `name` is not one.
absl::StatusOr<bool> TakeCommonOption(const std::string& name, ArgCursor& args,
                                      CommonOptions& common) {
  if (name == "--target") {
    OTA_ASSIGN_OR_RETURN(common.target, args.Value(name));
    if (common.target.empty()) return absl::InvalidArgumentError("--target is empty");
  } else if (name == "--config-dir") {
    OTA_ASSIGN_OR_RETURN(std::string dir, args.Value(name));
    common.config_dir = dir;
  } else if (name == "--timeout") {
    OTA_ASSIGN_OR_RETURN(std::string text, args.Value(name));
    OTA_ASSIGN_OR_RETURN(double seconds, ParsePositiveSeconds(name, text));
    common.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  } else if (name == "--request-id") {
    OTA_ASSIGN_OR_RETURN(common.request_id, args.Value(name));
  } else if (name == crypto::kGrpcTlsCertFlag || name == crypto::kGrpcTlsKeyFlag ||
             name == crypto::kGrpcTlsCaFlag) {
    OTA_ASSIGN_OR_RETURN(std::string path, args.Value(name));
    if (path.empty()) return absl::InvalidArgumentError(StrCat(name, " is empty"));
    std::string& slot = name == crypto::kGrpcTlsCertFlag  ? common.tls.cert
                        : name == crypto::kGrpcTlsKeyFlag ? common.tls.key
                                                          : common.tls.ca;
    slot = std::move(path);
  } else {
    return false;
  }
  return true;
}

std::string DefaultTarget(const std::filesystem::path& config_dir) {
  absl::StatusOr<config::EcuInfo> info = config::LoadEcuInfo(config_dir);
  if (!info.ok()) {
    std::cerr << "otactl: ignoring ecu_info: " << info.status().message() << "; using "
              << kFallbackTarget << "\n";
    return kFallbackTarget;
  }
  if (info->source.empty()) return kFallbackTarget;
  // A wildcard bind address is reachable through loopback.
  if (info->ip_addr == "0.0.0.0" || info->ip_addr == "::") return kFallbackTarget;
  return config::FormatHostPort(info->ip_addr, kDaemonPort);
}

class DaemonClient {
 public:
  // Resolves the default target once all options are known (--config-dir may come last).
  static DaemonClient For(const CommonOptions& common) {
    return DaemonClient(common.target.empty() ? DefaultTarget(common.config_dir) : common.target,
                        common.timeout, common.tls_identity);
  }

  DaemonClient(std::string target, std::chrono::milliseconds timeout,
               const std::optional<crypto::GrpcTlsIdentity>& tls)
      : target_(std::move(target)), timeout_(timeout) {
    grpc::ChannelArguments channel_args;
    // The daemon is on the vehicle network; an operator's http_proxy must not capture it.
    channel_args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    stub_ = OtaClientV2::OtaClientService::NewStub(
        grpc::CreateCustomChannel(target_, crypto::GrpcChannelCredentials(tls), channel_args));
  }

  const std::string& target() const { return target_; }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (OtaClientV2::OtaClientService::Stub::*method)(
                        grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    return (stub_.get()->*method)(&context, request, response);
  }

  // "cannot reach otaclient at HOST:PORT: <reason>"
  std::string Describe(const grpc::Status& status) const {
    std::string reason = status.error_message();
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      reason = StrCat("no answer within ", timeout_.count(), " ms");
    } else if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      reason = StrCat("call failed with gRPC code ", static_cast<int>(status.error_code()), ": ",
                      reason);
    }
    return StrCat("cannot reach otaclient at ", target_, ": ", reason);
  }

 private:
  std::string target_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<OtaClientV2::OtaClientService::Stub> stub_;
};

uint64_t MonotonicMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string ToJson(const OtaClientV2::StatusResponse& response, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(response, &json, options);
  if (!status.ok()) return StrCat("{\"error\": \"cannot convert to JSON\"}\n");
  if (!json.ends_with('\n')) json += '\n';
  return json;
}

std::string LocalTimeNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

struct StatusOptions {
  bool watch = false;
  bool json = false;
  double interval_s = 1;
};

absl::StatusOr<StatusOptions> ParseStatusOptions(ArgCursor& args, CommonOptions& common) {
  StatusOptions options;
  while (!args.Done()) {
    const std::string name = args.NextName();
    OTA_ASSIGN_OR_RETURN(bool common_option, TakeCommonOption(name, args, common));
    if (common_option) continue;
    if (name == "--watch") {
      OTA_RETURN_IF_ERROR(args.NoValue(name));
      options.watch = true;
    } else if (name == "--json") {
      OTA_RETURN_IF_ERROR(args.NoValue(name));
      options.json = true;
    } else if (name == "--interval") {
      OTA_ASSIGN_OR_RETURN(std::string text, args.Value(name));
      OTA_ASSIGN_OR_RETURN(options.interval_s, ParsePositiveSeconds(name, text));
    } else {
      return absl::InvalidArgumentError(StrCat("unknown option \"", name, "\""));
    }
  }
  return options;
}

int RunStatus(const CommonOptions& common, const StatusOptions& options) {
  const bool watch = options.watch;
  const bool json = options.json;
  const double interval_s = options.interval_s;
  DaemonClient client = DaemonClient::For(common);
  const bool redraw = watch && !json && isatty(STDOUT_FILENO);
  SpeedTracker speeds;
  bool ever_answered = false;
  while (true) {
    OtaClientV2::StatusResponse response;
    const grpc::Status rpc = client.Call(&OtaClientV2::OtaClientService::Stub::Status,
                                         OtaClientV2::StatusRequest(), &response);
    if (!rpc.ok()) {
      // An ECU is briefly unreachable while it reboots into the new image: keep watching.
      if (!watch || !ever_answered) {
        std::cerr << "otactl: " << client.Describe(rpc) << "\n";
        return kExitUnreachable;
      }
      std::cerr << "otactl: " << client.Describe(rpc) << " (retrying)\n";
    } else {
      ever_answered = true;
      const std::vector<EcuRow> rows = RowsFromResponse(response);
      const int code = ExitCodeForRows(rows);
      if (json) {
        std::cout << ToJson(response, /*pretty=*/!watch);
      } else {
        std::map<std::string, double> speed_by_ecu;
        const uint64_t now = MonotonicMillis();
        for (const EcuRow& row : rows) {
          if (auto speed = speeds.Update(row, now)) speed_by_ecu[row.ecu_id] = *speed;
        }
        std::string out;
        if (redraw) out += "\033[H\033[2J";
        if (watch) out += StrCat("otaclient at ", client.target(), "  ", LocalTimeNow(), "\n");
        out += RenderTable(rows, speed_by_ecu, RenderOptions{.progress_bars = watch});
        if (watch && !redraw) out += "\n";
        std::cout << out;
      }
      std::cout.flush();
      if (!watch || code != kExitInProgress) return code;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(interval_s * 1000)));
  }
}

absl::StatusOr<OtaClientV2::UpdateRequest> ParseUpdateOptions(ArgCursor& args,
                                                              CommonOptions& common) {
  std::vector<std::string> entry_args;
  std::optional<std::string> from;
  while (!args.Done()) {
    const std::string name = args.NextName();
    OTA_ASSIGN_OR_RETURN(bool common_option, TakeCommonOption(name, args, common));
    if (common_option) continue;
    if (name == "--from") {
      OTA_ASSIGN_OR_RETURN(from, args.Value(name));
    } else if (name.starts_with("--")) {
      entry_args.push_back(name);
      OTA_ASSIGN_OR_RETURN(std::string value, args.Value(name));
      entry_args.push_back(std::move(value));
    } else {
      return absl::InvalidArgumentError(StrCat("unexpected argument \"", name, "\""));
    }
  }
  absl::StatusOr<OtaClientV2::UpdateRequest> request;
  if (from) {
    if (!entry_args.empty()) {
      return absl::InvalidArgumentError("give either --from FILE or --ecu entries, not both");
    }
    absl::StatusOr<std::string> text = fs::ReadFile(*from);
    if (!text.ok()) return WithContext(text.status(), "--from");
    request = UpdateRequestFromYaml(*text, *from);
  } else {
    request = UpdateRequestFromArgs(entry_args);
  }
  if (request.ok()) request->set_request_id(common.request_id);
  return request;
}

// Update, or ClientUpdate (`client_update`): the same request and answer.
int RunUpdate(const CommonOptions& common, const OtaClientV2::UpdateRequest& request,
              bool client_update = false) {
  DaemonClient client = DaemonClient::For(common);
  OtaClientV2::UpdateResponse response;
  const grpc::Status rpc =
      client.Call(client_update ? &OtaClientV2::OtaClientService::Stub::ClientUpdate
                                : &OtaClientV2::OtaClientService::Stub::Update,
                  request, &response);
  if (!rpc.ok()) {
    std::cerr << "otactl: " << client.Describe(rpc) << "\n";
    return kExitUnreachable;
  }
  int code = kExitOk;
  std::vector<std::vector<std::string>> lines = {{"ECU", "RESULT", "MESSAGE"}};
  std::set<std::string> answered;
  for (const auto& ecu : response.ecu()) {
    answered.insert(ecu.ecu_id());
    if (ecu.result() != OtaClientV2::NO_FAILURE) code = kExitFailed;
    lines.push_back({ecu.ecu_id(), OtaClientV2::FailureType_Name(ecu.result()),
                     ecu.message().empty()
                         ? (ecu.result() == OtaClientV2::NO_FAILURE
                                ? (client_update ? "accepted, now updating its otaclient"
                                                 : "accepted, now updating")
                                : "-")
                         : ecu.message()});
  }
  for (const auto& entry : request.ecu()) {
    if (answered.contains(entry.ecu_id())) continue;
    code = kExitFailed;
    lines.push_back({entry.ecu_id(), "-", "no answer for this ECU in the response"});
  }
  std::cout << FormatColumns(lines);
  return code;
}

// The --ecu list of abort and rollback.
absl::StatusOr<std::vector<std::string>> ParseEcuList(ArgCursor& args, CommonOptions& common) {
  std::vector<std::string> ecus;
  while (!args.Done()) {
    const std::string name = args.NextName();
    OTA_ASSIGN_OR_RETURN(bool common_option, TakeCommonOption(name, args, common));
    if (common_option) continue;
    if (name != "--ecu") return absl::InvalidArgumentError(StrCat("unknown option \"", name, "\""));
    OTA_ASSIGN_OR_RETURN(std::string id, args.Value(name));
    if (id.empty()) return absl::InvalidArgumentError("--ecu is empty");
    ecus.push_back(std::move(id));
  }
  return ecus;
}

// Abort and Rollback share their shape: a list of ECU ids in, a result per ECU out.
template <typename Request, typename Response>
int RunPerEcuCommand(const std::string& command, const CommonOptions& common,
                     std::vector<std::string> ecus,
                     grpc::Status (OtaClientV2::OtaClientService::Stub::*method)(
                         grpc::ClientContext*, const Request&, Response*),
                     const std::function<bool(const Response&, int)>& is_ok,
                     const std::function<std::string(const Response&, int)>& result_name) {
  DaemonClient client = DaemonClient::For(common);
  if (ecus.empty()) {
    OtaClientV2::StatusResponse status;
    const grpc::Status rpc = client.Call(&OtaClientV2::OtaClientService::Stub::Status,
                                         OtaClientV2::StatusRequest(), &status);
    if (!rpc.ok()) {
      std::cerr << "otactl: " << client.Describe(rpc) << "\n";
      return kExitUnreachable;
    }
    ecus.assign(status.available_ecu_ids().begin(), status.available_ecu_ids().end());
    std::cerr << "otactl: no --ecu given, sending " << command << " to every available ECU\n";
  }
  Request request;
  request.set_request_id(common.request_id);
  for (const std::string& id : ecus) request.add_ecu()->set_ecu_id(id);
  Response response;
  const grpc::Status rpc = client.Call(method, request, &response);
  if (!rpc.ok()) {
    std::cerr << "otactl: " << client.Describe(rpc) << "\n";
    return kExitUnreachable;
  }
  int code = kExitOk;
  std::vector<std::vector<std::string>> lines = {{"ECU", "RESULT", "MESSAGE"}};
  for (int i = 0; i < response.ecu_size(); ++i) {
    if (!is_ok(response, i)) code = kExitFailed;
    const std::string& message = response.ecu(i).message();
    lines.push_back(
        {response.ecu(i).ecu_id(), result_name(response, i), message.empty() ? "-" : message});
  }
  if (response.ecu_size() < request.ecu_size()) code = kExitFailed;
  std::cout << FormatColumns(lines);
  return code;
}

// The --grpc-tls-* files, read and checked (a client certificate suffices here).
absl::Status LoadTls(CommonOptions& common) {
  OTA_ASSIGN_OR_RETURN(common.tls_identity,
                       crypto::LoadGrpcTls(common.tls, crypto::TlsUse::kClient));
  return absl::OkStatus();
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "-h" || arg == "--help") return true;
  }
  return false;
}

int UsageFailure(const std::string& command, const absl::Status& status) {
  std::cerr << "otactl: " << command << ": " << status.message() << "\n(see otactl " << command
            << " --help)\n";
  return kExitUsage;
}

int Main(int argc, char** argv) {
  // Library info lines (e.g. "no ecu_info file, using defaults") are noise in a CLI's output.
  log::SetMinLevel(log::Level::kWarning);
  std::vector<std::string> all(argv + 1, argv + argc);
  if (all.empty()) {
    std::cerr << kMainHelp;
    return kExitUsage;
  }
  const std::string command = all.front();
  std::vector<std::string> rest(all.begin() + 1, all.end());
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kMainHelp;
    return kExitOk;
  }
  static const std::map<std::string, const char*> kHelp = {{"status", kStatusHelp},
                                                           {"update", kUpdateHelp},
                                                           {"client-update", kClientUpdateHelp},
                                                           {"abort", kAbortHelp},
                                                           {"rollback", kRollbackHelp}};
  auto help = kHelp.find(command);
  if (help == kHelp.end()) {
    std::cerr << "otactl: unknown command \"" << command << "\"\n\n" << kMainHelp;
    return kExitUsage;
  }
  if (WantsHelp(rest)) {
    std::cout << help->second;
    return kExitOk;
  }
  ArgCursor args(rest);
  CommonOptions common;
  if (command == "status") {
    absl::StatusOr<StatusOptions> options = ParseStatusOptions(args, common);
    if (!options.ok()) return UsageFailure(command, options.status());
    if (absl::Status tls = LoadTls(common); !tls.ok()) return UsageFailure(command, tls);
    return RunStatus(common, *options);
  }
  if (command == "update" || command == "client-update") {
    absl::StatusOr<OtaClientV2::UpdateRequest> request = ParseUpdateOptions(args, common);
    if (!request.ok()) return UsageFailure(command, request.status());
    if (absl::Status tls = LoadTls(common); !tls.ok()) return UsageFailure(command, tls);
    return RunUpdate(common, *request, command == "client-update");
  }
  absl::StatusOr<std::vector<std::string>> ecus = ParseEcuList(args, common);
  if (!ecus.ok()) return UsageFailure(command, ecus.status());
  if (absl::Status tls = LoadTls(common); !tls.ok()) return UsageFailure(command, tls);
  if (command == "abort") {
    return RunPerEcuCommand<OtaClientV2::AbortRequest, OtaClientV2::AbortResponse>(
        command, common, std::move(*ecus), &OtaClientV2::OtaClientService::Stub::Abort,
        [](const OtaClientV2::AbortResponse& r, int i) {
          return r.ecu(i).result() == OtaClientV2::ABORT_NO_FAILURE;
        },
        [](const OtaClientV2::AbortResponse& r, int i) {
          return OtaClientV2::AbortFailureType_Name(r.ecu(i).result());
        });
  }
  return RunPerEcuCommand<OtaClientV2::RollbackRequest, OtaClientV2::RollbackResponse>(
      command, common, std::move(*ecus), &OtaClientV2::OtaClientService::Stub::Rollback,
      [](const OtaClientV2::RollbackResponse& r, int i) {
        return r.ecu(i).result() == OtaClientV2::NO_FAILURE;
      },
      [](const OtaClientV2::RollbackResponse& r, int i) {
        return OtaClientV2::FailureType_Name(r.ecu(i).result());
      });
}

}  // namespace
}  // namespace ota::otactl

int main(int argc, char** argv) { return ota::otactl::Main(argc, argv); }
