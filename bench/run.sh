#!/usr/bin/env bash
# Benchmarks for nsguard check, as quoted in the README. Prints each run and
# the median of 3. Needs bind9 and dnsperf for the BIND part (root: the lab
# adds its addresses to lo).
#   bash bench/run.sh            # in-process lab, 1,000 and 10,000 domains
#   bash bench/run.sh bind       # also BIND 9 with 1,000 domains, and dnsperf
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/nsguard" ./cmd/nsguard
go build -o "$out/checkbench" ./bench/checkbench
echo "== nsguard check --only dns, in-process lab ($(nproc) cores)"
"$out/checkbench" -nsguard "$out/nsguard" -n 1000 -runs 3
"$out/checkbench" -nsguard "$out/nsguard" -n 10000 -runs 3
if [ "${1:-}" = bind ]; then
  echo "== nsguard check --only dns, real BIND 9 ($(named -v))"
  "$out/checkbench" -nsguard "$out/nsguard" -n 1000 -runs 3 -backend bind -base 72 -dnsperf
fi
