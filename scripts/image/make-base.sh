#!/usr/bin/env bash
# Makes the local Node 20 base image that CI uses in place of node:20-bookworm-slim (no registry is
# reachable there): FROM scratch + this machine's node and npm + dash as /bin/sh + the shared
# libraries that node, dash and the llama.cpp CPU binaries link against. Smaller than a debootstrap
# minbase and needs no network. Writes an OCI archive, cached under BERTH_HOME; prints its path.
#
# usage: scripts/image/make-base.sh            # -> $BERTH_HOME/image/base/berth-node-base-<node>-v<N>.oci.tar
# The archive's image is named localhost/berth-node-base:20 (`podman load -i FILE` gives that name).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
format=3 # bump when the contents below change, so cached archives are rebuilt
node_bin=$(readlink -f "$(command -v node)")
node_ver=$(node -p process.versions.node)
case "$node_ver" in 20.*) ;; *) echo "make-base: node 20 is required on this machine, found $node_ver" >&2; exit 1 ;; esac
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd) # .../lib/node_modules/npm
cache="${BERTH_HOME:-$HOME/.cache/berth}/image/base"
archive="$cache/berth-node-base-$node_ver-v$format.oci.tar"
if [ -s "$archive" ]; then echo "$archive"; exit 0; fi
command -v podman >/dev/null || { echo "make-base: podman is required" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
# Debian's merged-/usr layout, so ELF interpreters and scripts find /bin/sh and /lib64/ld-linux-x86-64.so.2.
mkdir -p "$rootfs"/{usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/local/bin,usr/local/lib/node_modules,etc,tmp,root,home,proc,sys,dev,run,var/tmp}
ln -s usr/bin "$rootfs/bin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"; ln -s bin "$rootfs/usr/sbin"; ln -s usr/bin "$rootfs/sbin"
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"; chmod 700 "$rootfs/root"

install -m 755 "$node_bin" "$rootfs/usr/local/bin/node"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
install -m 755 "$(readlink -f /bin/dash)" "$rootfs/usr/bin/dash"
ln -s dash "$rootfs/usr/bin/sh"
# npm's and tsc's scripts start with `#!/usr/bin/env node`.
install -m 755 "$(readlink -f /usr/bin/env)" "$rootfs/usr/bin/env"

# Every library the ELF files need, resolved on this machine (same glibc as the binaries were linked on).
elves=("$node_bin" /bin/dash /usr/bin/env)
while IFS= read -r f; do elves+=("$f"); done < <(find "$root/node_modules/@node-llama-cpp/linux-x64/bins" -type f \( -name '*.so*' -o -name '*.node' \) 2>/dev/null)
for elf in "${elves[@]}"; do
  ldd "$elf" | awk '/=> \//{print $3} /^\t\/lib64\//{print $1}'
done | sort -u | while IFS= read -r lib; do
  case "$lib" in "$root"/*) continue ;; esac # llama.cpp's own libraries come with node_modules
  case "$lib" in
    /lib64/*|/usr/lib64/*) install -m 755 "$(readlink -f "$lib")" "$rootfs/usr/lib64/$(basename "$lib")" ;;
    *) install -m 755 "$(readlink -f "$lib")" "$rootfs/usr/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
  esac
done

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
berth:x:10001:10001:berth:/home/berth:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
berth:x:10001:
nogroup:x:65534:
GROUP
mkdir -p "$rootfs/home/berth" && chown 10001:10001 "$rootfs/home/berth"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
printf 'ID=berth-node-base\nNAME="Berth Node base (scratch + node %s)"\nVERSION_ID=%s\n' "$node_ver" "$node_ver" >"$rootfs/etc/os-release"

# podman with its own throw-away store; flags as in shared/notes/containers.md.
store="$work/store"; mkdir -p "$store"/{root,runroot,tmp,net}
cat >"$store/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
events_logger = "file"
CONF
export CONTAINERS_CONF="$store/containers.conf" TMPDIR="$store/tmp"
pod=(podman --root "$store/root" --runroot "$store/runroot" --tmpdir "$store/tmp" --network-config-dir "$store/net" --runtime runc)
tar -C "$rootfs" --numeric-owner --sort=name --mtime=@0 -c . | "${pod[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_ver" \
  --change 'CMD ["node"]' - localhost/berth-node-base:20 >"$work/import.log" 2>&1 ||
  { cat "$work/import.log" >&2; exit 1; }
mkdir -p "$cache"
"${pod[@]}" save -q --format oci-archive -o "$work/base.oci.tar" localhost/berth-node-base:20
"${pod[@]}" rmi -a -f >/dev/null 2>&1 || true
mv "$work/base.oci.tar" "$archive"
echo "$archive"
