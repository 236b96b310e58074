// Points a slot's /boot/extlinux/extlinux.conf at that slot's own rootfs: every APPEND line
// (the kernel command line of a LABEL, or the global one) gets root=PARTUUID=<uuid>.
//
// Rules (the old otaclient's regex got several of these wrong):
//   - the keyword is matched case-insensitively as a whole word after optional blanks
//     ("APPEND", "append", "  Append"); "# APPEND", "APPENDX" and "INITRD" lines are left alone;
//   - only kernel parameters are touched: a token that starts with exactly "root=" (or is
//     quoted as a whole, "root=…") is replaced entirely (root=/dev/mmcblk0p1, root=PARTUUID=…,
//     root="…"); nfsroot=, rootfstype=, rootwait, xroot=, foo="root=…" stay; parameters after
//     a standalone "--" belong to init and are skipped;
//   - an APPEND line without root= gets " root=PARTUUID=<uuid>" after its last parameter
//     (before a "--" when there is one);
//   - double quotes group a value with blanks (root="a b" is one token); an unterminated quote
//     is an error, as is a NUL byte or a file without any APPEND line;
//   - everything else is preserved byte for byte: other lines, blanks, CRLF line ends, a
//     missing final newline.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::boot {

struct ExtlinuxRewrite {
  std::string content;
  int append_lines = 0;  // APPEND lines rewritten (at least 1)
};

// `partuuid` must look like a GPT or MBR partition UUID: 1..36 hex digits and dashes.
absl::StatusOr<ExtlinuxRewrite> RewriteExtlinuxRoot(std::string_view conf,
                                                    std::string_view partuuid);

}  // namespace ota::boot
