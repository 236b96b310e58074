#!/usr/bin/env bash
# tree-manifest.sh DIR [EXCLUDED_PATH...]
# Prints one sorted line per entry under DIR describing everything an update must reproduce:
#   <path>\t<type>\t<mode>\t<uid>\t<gid>\t<content>
# content: sha256 for files, link target for symlinks, "-" for dirs; plus, for files with more
# than one link, "hl=<first path of its hard-link group>" so link identity is compared too.
# A symlink's own mode is meaningless on Linux and is printed as "-". Character devices (overlayfs
# whiteouts) print mode, owner and "dev=<major>:<minor>". With TREE_XATTRS=1 every entry's
# extended attributes (getfattr, values in hex, sorted) are appended as "xattr:name=0x..".
# EXCLUDED_PATHs are relative ("etc/hostname") and are skipped with everything below them.
set -euo pipefail
root=$1
shift
cd "$root"
prune=()
for p in "$@"; do prune+=(-path "./$p" -prune -o); done

declare -A sha_of=()
while IFS= read -r -d '' line; do
  sha_of[${line:66}]=${line:0:64}
done < <(find . "${prune[@]}" -type f -print0 | xargs -0 -r sha256sum -z)

declare -A group_of=()
entries=()
while IFS= read -r -d '' rec; do
  entries+=("$rec")
done < <(find . -mindepth 1 "${prune[@]}" -printf '%P\037%y\037%m\037%U\037%G\037%l\037%i\037%n\0' | sort -z)

for rec in "${entries[@]}"; do
  IFS=$'\037' read -r path type mode uid gid target ino nlink <<<"$rec"
  if [[ $type == f && $nlink -gt 1 && -z "${group_of[$ino]:-}" ]]; then group_of[$ino]=$path; fi
done

declare -A xattrs_of=()
if [[ "${TREE_XATTRS:-0}" == 1 ]]; then
  current=""
  while IFS= read -r line; do
    if [[ $line == "# file: "* ]]; then
      current=${line#"# file: "}
      current=${current#./}
    elif [[ -n $line && -n $current ]]; then
      xattrs_of[$current]+=" xattr:$line"
    fi
  done < <(getfattr -R -P -h -d -m - -e hex . 2>/dev/null)
fi

for rec in "${entries[@]}"; do
  IFS=$'\037' read -r path type mode uid gid target ino nlink <<<"$rec"
  xattrs=${xattrs_of[$path]:-}
  case $type in
    l) printf '%s\tl\t-\t%s\t%s\t%s%s\n' "$path" "$uid" "$gid" "$target" "$xattrs" ;;
    d) printf '%s\td\t%s\t%s\t%s\t-%s\n' "$path" "$mode" "$uid" "$gid" "$xattrs" ;;
    f)
      content=${sha_of[./$path]}
      ((nlink > 1)) && content+=" hl=${group_of[$ino]}"
      printf '%s\tf\t%s\t%s\t%s\t%s%s\n' "$path" "$mode" "$uid" "$gid" "$content" "$xattrs"
      ;;
    c)
      printf '%s\tc\t%s\t%s\t%s\tdev=%s%s\n' "$path" "$mode" "$uid" "$gid" \
        "$(stat -c '%t:%T' -- "$path")" "$xattrs"
      ;;
    *) printf '%s\t%s\n' "$path" "$type" ;;
  esac
done
