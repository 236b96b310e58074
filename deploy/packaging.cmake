# Installation layout and Debian packages (CPack DEB, one package per component):
#   otaclient  /usr/bin/otaclient, its systemd unit, /opt/ota/client/certs, sample configs
#   otaproxy   /usr/bin/otaproxy, its systemd unit (the cache dir is the unit's CacheDirectory=)
#   otactl     /usr/bin/otactl
#   ota-image  /usr/bin/ota-image
# Build them with `cmake --build build/release --target package` (or `cpack` in the build dir);
# the .deb files land in the build dir. Library dependencies come from dpkg-shlibdeps, so they
# name exactly the Debian 12 packages the binaries were linked against.
include(GNUInstallDirs)

# Debian packages install under /usr (the units must name that path, not CMAKE_INSTALL_PREFIX).
set(OTA_PACKAGE_PREFIX "/usr")
set(OTA_PACKAGE_BINDIR "${OTA_PACKAGE_PREFIX}/${CMAKE_INSTALL_BINDIR}")
set(OTA_SYSTEMD_UNIT_DIR "lib/systemd/system")

# The units in deploy/ name /usr/local/bin (a hand install); the packaged copies name the
# packaged binaries. Everything else in them stays byte for byte what deploy/ says.
foreach(unit otaclient otaproxy)
  file(READ "${CMAKE_CURRENT_LIST_DIR}/${unit}.service" unit_text)
  string(REPLACE "/usr/local/bin/" "${OTA_PACKAGE_BINDIR}/" unit_text "${unit_text}")
  file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/packaging/${unit}.service" CONTENT "${unit_text}"
       @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                                         "${CMAKE_CURRENT_LIST_DIR}/${unit}.service")
endforeach()

# /usr/share/doc/<package>/copyright of every package (Debian policy 12.5).
file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/packaging/copyright" CONTENT
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: otaclient-cpp

Files: *
Copyright: the otaclient-cpp authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License version 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
")
foreach(component otaclient otaproxy otactl ota-image)
  install(FILES "${PROJECT_BINARY_DIR}/packaging/copyright"
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${component} COMPONENT ${component})
endforeach()

install(TARGETS otaclient RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT otaclient)
install(FILES "${PROJECT_BINARY_DIR}/packaging/otaclient.service"
        DESTINATION ${OTA_SYSTEMD_UNIT_DIR} COMPONENT otaclient)
install(FILES "${CMAKE_CURRENT_LIST_DIR}/ecu_info.yaml" "${CMAKE_CURRENT_LIST_DIR}/proxy_info.yaml"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/otaclient/examples COMPONENT otaclient)
# The unit's --certs-dir: the image-signing CA chains go here.
install(DIRECTORY DESTINATION /opt/ota/client/certs COMPONENT otaclient)

install(TARGETS otaproxy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT otaproxy)
install(FILES "${PROJECT_BINARY_DIR}/packaging/otaproxy.service"
        DESTINATION ${OTA_SYSTEMD_UNIT_DIR} COMPONENT otaproxy)
install(FILES "${CMAKE_CURRENT_LIST_DIR}/proxy_info.yaml"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/otaproxy/examples COMPONENT otaproxy)

install(TARGETS otactl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT otactl)
install(TARGETS ota-image RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ota-image)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "otaclient-cpp")
set(CPACK_PACKAGE_VENDOR "otaclient-cpp")
set(CPACK_PACKAGE_CONTACT "otaclient-cpp maintainers <ota@localhost>")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OTA update client and caching proxy for Linux ECUs")
set(CPACK_PACKAGING_INSTALL_PREFIX "${OTA_PACKAGE_PREFIX}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL otaclient otaproxy otactl ota-image)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://localhost/otaclient-cpp")
set(CPACK_DEBIAN_COMPRESSION_TYPE "xz")

set(CPACK_DEBIAN_OTACLIENT_PACKAGE_NAME "otaclient")
set(CPACK_DEBIAN_OTACLIENT_DESCRIPTION
    "OTA update client (OtaClientV2 gRPC service)\n A/B root file system updates with file-level delta, verified images (legacy and v1)\n and multi-ECU fan-out. Drop-in for the Python otaclient's API and config files.")
# mkfs.ext4/e2fsck (standby slots), mount/umount/blkid/findmnt; grub-editenv only on GRUB ECUs.
set(CPACK_DEBIAN_OTACLIENT_PACKAGE_DEPENDS "e2fsprogs, util-linux, mount")
set(CPACK_DEBIAN_OTACLIENT_PACKAGE_SUGGESTS "grub-common, otaproxy, otactl")
set(CPACK_DEBIAN_OTACLIENT_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/debian/otaclient/postinst;${CMAKE_CURRENT_LIST_DIR}/debian/otaclient/prerm;${CMAKE_CURRENT_LIST_DIR}/debian/otaclient/postrm")
set(CPACK_DEBIAN_OTACLIENT_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_OTAPROXY_PACKAGE_NAME "otaproxy")
set(CPACK_DEBIAN_OTAPROXY_DESCRIPTION
    "Caching HTTP forward proxy for OTA updates\n Shared by the ECUs of a vehicle: one download per file, verified cache, chained proxies.")
# blkid/mount for the USB external cache helper.
set(CPACK_DEBIAN_OTAPROXY_PACKAGE_DEPENDS "util-linux, mount")
set(CPACK_DEBIAN_OTAPROXY_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/debian/otaproxy/postinst;${CMAKE_CURRENT_LIST_DIR}/debian/otaproxy/prerm;${CMAKE_CURRENT_LIST_DIR}/debian/otaproxy/postrm")
set(CPACK_DEBIAN_OTAPROXY_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_OTACTL_PACKAGE_NAME "otactl")
set(CPACK_DEBIAN_OTACTL_DESCRIPTION
    "Command-line client of the OtaClientV2 gRPC service\n Status, update, abort and rollback of one ECU or a vehicle's ECU tree.")
set(CPACK_DEBIAN_OTA-IMAGE_PACKAGE_NAME "ota-image")
set(CPACK_DEBIAN_OTA-IMAGE_DESCRIPTION
    "Builds, signs and inspects OTA images (legacy and v1)\n For the build host of an ECU image.")

include(CPack)
