#include "otaclient/update/verified_image.h"

#include <sys/utsname.h>

#include "common/crypto/signing.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {

absl::StatusOr<image::Image> OpenVerifiedImage(http::Fetcher& fetcher, std::string_view url,
                                               const ImageTrust& trust,
                                               std::string_view operation) {
  absl::StatusOr<crypto::CaStore> ca_store = crypto::CaStore::LoadDir(trust.certs_dir);
  if (!ca_store.ok()) {
    return WithOtaErrorCode(WithContext(ca_store.status(), StrCat("loading CA certificates from ",
                                                                  trust.certs_dir.string())),
                            OtaErrorCode::kMetadataCertVerificationFailed);
  }
  if (ca_store->empty() && !trust.allow_unverified_dev) {
    return WithOtaErrorCode(absl::PermissionDeniedError(StrCat(
                                "no CA certificates installed in ", trust.certs_dir.string(),
                                ": no image can be verified, every ", operation, " is refused")),
                            OtaErrorCode::kMetadataCertVerificationFailed);
  }
  image::ReaderOptions load_options;
  load_options.ca_store = &*ca_store;  // used only while the metadata is read
  load_options.allow_unverified_dev = trust.allow_unverified_dev;
  load_options.ecu_id = trust.ecu_id;
  load_options.release_key = trust.release_key;
  load_options.architecture = trust.architecture;
  if (load_options.architecture.empty()) {
    if (struct utsname u; ::uname(&u) == 0) load_options.architecture = u.machine;
  }
  if (ca_store->empty() && trust.allow_unverified_dev) {
    log::Warning("no CA installed: accepting the image's own signer (development mode)",
                 {{"certs_dir", trust.certs_dir.string()}});
  }
  absl::StatusOr<image::Image> loaded = image::OpenImage(fetcher, url, load_options);
  if (!loaded.ok())
    return WithContext(loaded.status(), StrCat("loading image metadata from ", url));
  return loaded;
}

}  // namespace ota::update
