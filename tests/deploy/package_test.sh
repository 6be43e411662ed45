#!/usr/bin/env bash
# The Debian package builds from this build folder, and installs its files where its systemd
# units and configs expect them: every unit's ExecStart program is in the package, the config
# each unit names is there, and the maintainer scripts and conffiles are in place; and lintian
# passes it. Unpacked into a throw-away root (dpkg-deb -x), not installed on the machine.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d /tmp/package-test-XXXX)
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/flashsale_*.deb)
echo "built $(basename "$deb")"
dpkg-deb --info "$deb" >"$work/info"
dpkg-deb --contents "$deb" >"$work/contents"
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
fail() { echo "package: $*"; exit 1; }
for path in /usr/bin/flashsale /usr/bin/flashsale-loadtest /usr/bin/flashsale-audit \
    /etc/flashsale/flashsale.toml /etc/flashsale/redis.conf \
    /usr/share/flashsale/flashsale-rules.yml /usr/share/flashsale/flashsale-dashboard.json \
    /usr/share/doc/flashsale/operations.md; do
  [ -e "$work/root$path" ] || fail "$path is missing"
done
for unit in flashsale.service flashsale-gateway@.service flashsale-engine@.service \
    flashsale-redis.service; do
  file="$work/root/lib/systemd/system/$unit"
  [ -f "$file" ] || fail "$unit is missing"
  program=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$file")
  case "$program" in
    /usr/bin/flashsale) [ -x "$work/root$program" ] || fail "$unit runs $program, not packaged" ;;
    /usr/bin/redis-server) grep -q 'redis-server' "$work/info" || fail "$unit needs redis-server" ;;
    *) fail "$unit runs $program" ;;
  esac
  config=$(grep -o '/etc/flashsale/[a-z.]*' "$file" | head -1 || true)
  [ -z "$config" ] || [ -e "$work/root$config" ] || fail "$unit reads $config, not packaged"
done
[ -x "$work/control/postinst" ] && [ -x "$work/control/postrm" ] || fail "maintainer scripts"
grep -qx /etc/flashsale/flashsale.toml "$work/control/conffiles" || fail "conffiles"
grep -q '^ Depends:.*adduser' "$work/info" || fail "Depends lacks adduser"
grep -q 'libhiredis' "$work/info" || fail "Depends lacks the shared libraries (dpkg-shlibdeps)"
# Debian's policy: a copyright file, and a changelog whose latest entry is this version.
[ -f "$work/root/usr/share/doc/flashsale/copyright" ] || fail "copyright is missing"
version=$(sed -n 's/^ Version: //p' "$work/info")
zcat "$work/root/usr/share/doc/flashsale/changelog.gz" | head -1 | grep -q "^flashsale ($version)" \
  || fail "changelog.gz does not start with version $version"
# lintian, Debian's package checker: no error or warning. A tag the package overrides says why
# in its overrides file (deploy/debian/lintian-overrides).
lintian --fail-on error,warning "$deb" >"$work/lintian" 2>&1 || { cat "$work/lintian"; fail "lintian"; }
echo "package: $(grep -c . "$work/contents") entries, units and configs where they belong, lintian clean"
