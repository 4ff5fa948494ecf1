#!/usr/bin/env bash
# Build the tiny Linux guest the real-QEMU tests boot: Debian's own kernel
# (never installed on the host: only downloaded and unpacked) and a
# busybox-static initramfs with the virtio_console driver stack.
#
# Usage: test/guest/build.sh [--force] [--quiet]
#   Prints the directory holding vmlinuz and initramfs.gz as its last line
#   on stdout; progress goes to stderr.
#   --force  rebuild even when a cached build exists
#   --quiet  no progress on stderr
#
# Cache: ${VMCHAN_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmchan-guest}
#   debs/                       downloaded kernel packages (kept: 70 MB each)
#   KVER-HASH/                  one build: vmlinuz, initramfs.gz, manifest.txt
# The build is keyed by the kernel ABI version and a hash of this script, so
# a kernel update or a change to the guest's /init rebuilds, anything else is
# a cache hit that costs one apt-cache lookup. The cache lives outside the
# repository so every clone and CI run on the machine shares it.
#
# Needs: apt-get/apt-cache/dpkg-deb (Debian), busybox-static (/bin/busybox),
# gzip. cpio and xz/zstd are used when present, else busybox's applets.
# Override the kernel package with VMCHAN_KERNEL_PACKAGE=linux-image-...
#
# qemu-ga: when the host has Debian's qemu-guest-agent (/usr/sbin/qemu-ga, or
# VMCHAN_QEMU_GA=PATH), the guest gets that binary and the shared libraries
# ldd lists, at the paths ldd names. The guest starts it only when asked:
# kernel command line `vmchan.qga=on` and a port named
# org.qemu.guest_agent.0 (at boot or hot-plugged); other guests boot as
# before. The build key covers the agent's and its libraries' contents, so a
# qemu-guest-agent or glib update rebuilds. Without qemu-ga the guest is
# built without it (manifest: qga=none) and `vmchan.qga=on` only logs that.
set -euo pipefail

FORCE=0
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { [ "$QUIET" = 1 ] || echo "guest-build: $*" >&2; }
die() {
  echo "guest-build: error: $*" >&2
  exit 1
}

SELF="$(readlink -f "$0")"
CACHE="${VMCHAN_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmchan-guest}"
# The modules the guest needs, in the order we want them; their own
# dependencies are read from each .ko and loaded first.
WANTED_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console)

BUSYBOX="${VMCHAN_BUSYBOX:-/bin/busybox}"
[ -x "$BUSYBOX" ] || die "no $BUSYBOX: apt-get install busybox-static"
# The initramfs has no libc, so a dynamically linked busybox would not run.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked: apt-get install busybox-static"
fi
QEMU_GA="${VMCHAN_QEMU_GA:-/usr/sbin/qemu-ga}"
# The agent and its libraries, one path a line (empty: no agent in the guest).
QGA_FILES=""
if [ -x "$QEMU_GA" ]; then
  # `ldd` lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)" and the loader "/lib64/ld-linux-x86-64.so.2 (0x...)".
  QGA_LIBS="$(ldd "$QEMU_GA" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')" ||
    die "ldd $QEMU_GA failed"
  QGA_FILES="$(printf '%s\n%s\n' "$QEMU_GA" "$QGA_LIBS" | awk 'NF' | LC_ALL=C sort -u)"
fi
for tool in apt-cache apt-get dpkg-deb gzip tar; do
  command -v "$tool" >/dev/null || die "missing $tool (this script needs a Debian host)"
done

mkdir -p "$CACHE/debs"

# --- which kernel: the package linux-image-amd64 depends on ----------------
resolve_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
PKG="${VMCHAN_KERNEL_PACKAGE:-}"
if [ -z "$PKG" ]; then
  PKG="$(resolve_kernel_package || true)"
  if [ -z "$PKG" ]; then
    # A fresh machine may have no package lists yet.
    log "apt-cache knows no linux-image-amd64; running apt-get update"
    apt-get update -qq >&2 || true
    PKG="$(resolve_kernel_package || true)"
  fi
fi
if [ -z "$PKG" ]; then
  # Offline with a warm cache: reuse the newest complete build.
  newest="$(ls -1dt "$CACHE"/*/ok 2>/dev/null | sed -n 1p || true)"
  [ -n "$newest" ] || die "cannot resolve the kernel package behind linux-image-amd64 (apt-cache depends linux-image-amd64)"
  log "offline: reusing $(dirname "$newest")"
  dirname "$newest"
  exit 0
fi
KVER="${PKG#linux-image-}"
# The key: this script, and the agent's bytes and its libraries' (paths too).
SCRIPT_HASH="$(
  {
    sha256sum "$SELF" | cut -d' ' -f1
    # shellcheck disable=SC2086 # one path a line, no spaces in library paths
    [ -z "$QGA_FILES" ] || sha256sum $(printf '%s' "$QGA_FILES" | xargs readlink -f) | cut -d' ' -f1
    printf '%s\n' "$QGA_FILES"
  } | sha256sum | cut -c1-12
)"
OUT="$CACHE/$KVER-$SCRIPT_HASH"

if [ "$FORCE" = 0 ] && [ -f "$OUT/ok" ]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

# Serialise concurrent builds (parallel test files, several clones): the
# second waits, then finds the first one's result.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null; then flock 9; fi
if [ "$FORCE" = 0 ] && [ -f "$OUT/ok" ]; then
  log "cached (built meanwhile): $OUT"
  echo "$OUT"
  exit 0
fi

VERSION="$(apt-cache show --no-all-versions "$PKG" | awk '/^Version:/ { print $2; exit }')"
[ -n "$VERSION" ] || die "apt-cache show $PKG gives no version"
DEB="$CACHE/debs/${PKG}_${VERSION//:/%3a}_amd64.deb"
if [ ! -s "$DEB" ]; then
  log "downloading $PKG $VERSION"
  # apt-get download writes into the current directory; as root it would
  # warn that its _apt sandbox user cannot write there, so skip the sandbox.
  (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$PKG=$VERSION" >&2) ||
    die "apt-get download $PKG=$VERSION failed"
  [ -s "$DEB" ] || DEB="$(ls -1t "$CACHE/debs/${PKG}_"*.deb | sed -n 1p)"
fi
log "kernel package: $(basename "$DEB")"

WORK="$(mktemp -d "$CACHE/.build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
X="$WORK/x"
mkdir -p "$X"

# --- unpack only what we need ----------------------------------------------
# Each pass over the package decompresses all 70 MB of it, so take in one
# pass the kernel, the builtin list and the two module folders the wanted
# drivers live in; a dependency found elsewhere costs one more targeted pass.
deb_tar() { dpkg-deb --fsys-tarfile "$DEB"; }
deb_tar | tar -x -C "$X" --wildcards --no-anchored \
  './boot/vmlinuz-*' '*/modules.builtin' '*/kernel/drivers/virtio/*' '*/kernel/drivers/char/*'
# (No `| head` on pipelines here: with pipefail, the writer's SIGPIPE would
# fail the script.)
VMLINUZ="$(find "$X/boot" -name 'vmlinuz-*' -print -quit 2>/dev/null || true)"
[ -n "$VMLINUZ" ] || die "no /boot/vmlinuz-* in $DEB"
BUILTIN="$(find "$X" -name modules.builtin -print -quit)"

# Module name -> .ko file under $X ('-' and '_' are the same to the kernel).
find_module() {
  local want="${1//-/_}"
  find "$X" -regextype posix-extended -regex '.*\.ko(\.(xz|zst|gz))?' | awk -v want="$want" '
    { n = $0; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n)
      if (n == want && !found) { print; found = 1 } }'
}
is_builtin() {
  [ -n "$BUILTIN" ] && sed 's#.*/##; s/\.ko$//; s/-/_/g' "$BUILTIN" | grep -x "${1//-/_}" >/dev/null
}
extract_module_elsewhere() {
  local want="${1//-/_}" path
  path="$(deb_tar | tar -t | awk -v want="$want" '
    /\.ko(\.(xz|zst|gz))?$/ { n = $0; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n)
      if (n == want && !found) { print; found = 1 } }')"
  [ -n "$path" ] && deb_tar | tar -x -C "$X" "$path"
}

decompress_module() { # .ko[.xz|.zst|.gz] -> prints the path of a plain .ko
  local p="$1"
  case "$p" in
    *.ko.xz)
      if command -v xz >/dev/null; then xz -dc "$p"; else "$BUSYBOX" unxz -c "$p"; fi >"${p%.xz}"
      echo "${p%.xz}"
      ;;
    *.ko.zst)
      command -v zstd >/dev/null || die "$p is zstd-compressed: apt-get install zstd"
      zstd -qdc "$p" >"${p%.zst}"
      echo "${p%.zst}"
      ;;
    *.ko.gz)
      gzip -dc "$p" >"${p%.gz}"
      echo "${p%.gz}"
      ;;
    *) echo "$p" ;;
  esac
}

module_depends() { # plain .ko -> comma-separated dependency names
  if command -v modinfo >/dev/null && modinfo -F depends "$1" >/dev/null 2>&1; then
    modinfo -F depends "$1"
  else
    # Without kmod: the .modinfo section holds NUL-separated key=value strings.
    # awk reads to the end: a reader that quits early (sed q) would make tr
    # die of SIGPIPE, and pipefail would end the build.
    tr '\0' '\n' <"$1" | awk '/^depends=/ && !seen { sub(/^depends=/, ""); print; seen = 1 }'
  fi
}

# Resolve the dependency closure and a load order (depth-first post-order:
# every module after all of its dependencies).
declare -A KO=() STATE=()
ORDER=()
fetch_module() {
  local name="${1//-/_}" path
  [ -n "${KO[$name]:-}" ] && return 0
  path="$(find_module "$name")"
  if [ -z "$path" ] && ! is_builtin "$name"; then
    extract_module_elsewhere "$name" || true
    path="$(find_module "$name")"
  fi
  if [ -z "$path" ]; then
    is_builtin "$name" || die "module $name is neither in $DEB nor built in"
    KO[$name]="builtin"
    return 0
  fi
  KO[$name]="$(decompress_module "$path")"
}
visit() {
  local name="${1//-/_}" dep deps
  case "${STATE[$name]:-}" in
    done) return 0 ;;
    active) die "module dependency cycle at $name" ;;
  esac
  STATE[$name]=active
  fetch_module "$name"
  if [ "${KO[$name]}" != builtin ]; then
    deps="$(module_depends "${KO[$name]}")"
    for dep in ${deps//,/ }; do visit "$dep"; done
    ORDER+=("$name")
  fi
  STATE[$name]=done
}
for m in "${WANTED_MODULES[@]}"; do visit "$m"; done
log "module load order: ${ORDER[*]}"

# --- the initramfs -----------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules,usr/bin,usr/sbin}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
: >"$R/etc/modules.order"
for m in "${ORDER[@]}"; do
  cp "${KO[$m]}" "$R/lib/modules/$m.ko"
  echo "$m" >>"$R/etc/modules.order"
done

# qemu-ga and its libraries at the paths ldd named (the loader path is
# baked into the binary), dereferenced: the soname links become files.
if [ -n "$QGA_FILES" ]; then
  while read -r f; do
    [ -n "$f" ] || continue
    mkdir -p "$R$(dirname "$f")"
    cp -L "$f" "$R$f"
  done <<<"$QGA_FILES"
  if [ "$QEMU_GA" != /usr/sbin/qemu-ga ]; then
    cp -L "$QEMU_GA" "$R/usr/sbin/qemu-ga"
  fi
  chmod 755 "$R/usr/sbin/qemu-ga"
fi

# /dev/virtio-ports/NAME links, as udev's rule does: the kernel sends "add"
# for a new port and "change" once the host has told it the port's name; on
# "remove" the sysfs name is gone, so we find the link by its target.
cat >"$R/sbin/vport-hotplug" <<'EOF'
#!/bin/sh
[ "$SUBSYSTEM" = virtio-ports ] || exit 0
dev="${DEVNAME:-${DEVPATH##*/}}"
echo "[uevent] $ACTION $DEVPATH $dev" >/dev/kmsg
case "$ACTION" in
  add | change)
    name="$(cat "/sys/class/virtio-ports/$dev/name" 2>/dev/null)"
    if [ -n "$name" ]; then
      mkdir -p /dev/virtio-ports
      ln -sfn "../$dev" "/dev/virtio-ports/$name"
      [ "$name" = org.qemu.guest_agent.0 ] && /sbin/qga-start
    fi
    ;;
  remove)
    for l in /dev/virtio-ports/*; do
      if [ "$(readlink "$l")" = "../$dev" ]; then
        rm -f "$l"
        [ "${l##*/}" = org.qemu.guest_agent.0 ] && rmdir /run/qga.lock 2>/dev/null
      fi
    done
    ;;
esac
exit 0
EOF

# qemu-ga on the agent port, when the kernel command line says vmchan.qga=on
# (as qemu-guest-agent.service is bound to the port's device). Uevents run
# helpers concurrently: mkdir is the lock, held while the agent runs, so one
# agent runs; unplugging the port drops the lock (qemu-ga ends itself on its
# port's read error) and the next agent port starts a new one.
cat >"$R/sbin/qga-start" <<'EOF'
#!/bin/sh
grep -qw 'vmchan.qga=on' /proc/cmdline || exit 0
port=/dev/virtio-ports/org.qemu.guest_agent.0
if [ ! -x /usr/sbin/qemu-ga ]; then
  echo "vmchan-guest: vmchan.qga=on but this guest was built without qemu-ga" >/dev/kmsg
  exit 0
fi
mkdir /run/qga.lock 2>/dev/null || exit 0
mkdir -p /run/qemu-ga
/usr/sbin/qemu-ga -m virtio-serial -p "$port" -t /run/qemu-ga -f /run/qemu-ga.pid \
  -l /run/qemu-ga.log -d
echo "[qga] started on $port: $?" >/dev/kmsg
EOF

cat >"$R/init" <<'EOF'
#!/bin/sh
# PID 1 of the vmchan test guest.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
# devtmpfs has no /dev/std* links (udev makes them); the shell below needs one.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# Only emergencies on the console: kernel messages would land in the middle
# of the test shell's output on ttyS0. dmesg still has everything.
echo 1 >/proc/sys/kernel/printk
# No udev: busybox's uevent listener runs the link helper for every event,
# so ports hot-plugged later get their /dev/virtio-ports link as well. It
# starts before the driver loads so no event is missed.
uevent /sbin/vport-hotplug >/dev/null 2>&1 &
while read -r m; do
  insmod "/lib/modules/$m.ko" || echo "vmchan-guest: insmod $m failed" >/dev/kmsg
done </etc/modules.order
# Ports that existed before the listener ran (belt and braces).
for d in /sys/class/virtio-ports/*; do
  [ -e "$d/name" ] && DEVNAME="${d##*/}" ACTION=add SUBSYSTEM=virtio-ports /sbin/vport-hotplug
done
echo "vmchan-guest: ready, kernel $(uname -r)" >/dev/ttyS0
# The test shell on a raw, non-echoing ttyS0. Given its input as a script
# file, ash is non-interactive (no banner, prompt or line editing), as a
# plain `sh` on a terminal would not be. A syntax error ends a
# non-interactive shell, so the loop starts another.
stty -F /dev/ttyS0 raw -echo
while :; do
  sh /dev/stdin </dev/ttyS0 >/dev/ttyS0 2>&1
  sleep 0.1
done
EOF
chmod 755 "$R/init" "$R/sbin/vport-hotplug" "$R/sbin/qga-start"

# cpio newc, owned by root, in a stable order (gzip -n: no timestamp).
CPIO=(cpio)
command -v cpio >/dev/null || CPIO=("$BUSYBOX" cpio)
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}" -o -H newc -R 0:0 2>/dev/null) |
  gzip -9n >"$WORK/initramfs.gz"
[ -s "$WORK/initramfs.gz" ] || die "cpio produced no archive"

STAGE="$WORK/out"
mkdir -p "$STAGE"
cp "$VMLINUZ" "$STAGE/vmlinuz"
mv "$WORK/initramfs.gz" "$STAGE/initramfs.gz"
{
  echo "package=$PKG"
  echo "version=$VERSION"
  echo "kernel=$KVER"
  echo "modules=${ORDER[*]}"
  echo "busybox=$("$BUSYBOX" 2>&1 | sed -n 1p)"
  echo "script=$SCRIPT_HASH"
  if [ -n "$QGA_FILES" ]; then
    echo "qga=$("$QEMU_GA" --version 2>&1 | sed -n 1p)"
    echo "qga-files=$(printf '%s' "$QGA_FILES" | tr '\n' ' ')"
  else
    echo "qga=none"
  fi
} >"$STAGE/manifest.txt"
touch "$STAGE/ok"

# Builds for other script versions stay: another clone may be booting one.
rm -rf "$OUT"
mv "$STAGE" "$OUT"
log "built $OUT ($(du -h "$OUT/initramfs.gz" | cut -f1) initramfs)"
echo "$OUT"
