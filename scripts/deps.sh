#!/usr/bin/env bash
# Installs what nsguard's tests need on Debian/Ubuntu: BIND 9 (integration
# tests against a real server), dig, dnsperf (benchmarks), systemd
# (systemd-analyze verify), iproute2 (the BIND lab adds 127.x addresses to lo),
# chromium (the status pages are tested in a real headless browser), an
# emoji font (so its screenshots show what Slack shows) and PostgreSQL's
# server binaries (the store's tests start their own throwaway server from
# /usr/lib/postgresql/*/bin; internal/store/pgtest).
# The BIND tests add addresses to lo, so they run as root.
set -euo pipefail
need=()
command -v named >/dev/null || need+=(bind9)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v ip >/dev/null || need+=(iproute2)
command -v chromium >/dev/null || need+=(chromium)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "nsguard tests need: ${need[*]} — install them (sudo apt-get install -y ${need[*]}) and run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "nsguard tests run real BIND 9 on 127.x addresses they add to lo: run them as root (make test as root, or sudo make test)" >&2
  exit 1
fi
