#!/usr/bin/env bash
# Benchmarks for nsguard check, as quoted in the README's Performance
# section. Prints each run, the medians of 3 and each target's verdict, and
# exits non-zero when a target is missed (after running everything). Needs
# bind9 and dnsperf for the BIND part, as root (the lab adds its addresses
# to lo); on a shared machine run it in a network namespace of its own.
#   bash bench/run.sh        # in-process lab, 1,000 and 10,000 domains; go test -bench
#   bash bench/run.sh bind   # also real BIND 9 with 10,000 zones and the dnsperf ceiling
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/nsguard" ./cmd/nsguard || exit 1
go build -o "$out/checkbench" ./bench/checkbench || exit 1
status=0
step() { "$@" || status=1; }

# Targets (issue 15): an unsigned domain costs at most 6 queries; nsguard
# check peaks at 150 MB for 10,000 domains; on 10,000 BIND zones it takes at
# most 1.5 s and reaches at least 0.35 of what the servers answer (the dnsperf
# ceiling for the same query mix, sent as nsguard's own packets, measured
# before and after each run; each run against the mean of the two, the median
# of the three runs' fractions; dnsperf's RD-set ceiling is printed beside it).
# To compare two builds, use paired runs instead:
#   go run ./bench/checkbench -nsguard NEW -against OLD -n 10000 -backend bind -base 72 -runs 15
echo "== nsguard check --only dns, in-process lab ($(nproc) cores)"
step "$out/checkbench" -nsguard "$out/nsguard" -n 1000 -runs 3 -max-queries 6 -max-rss 150
step "$out/checkbench" -nsguard "$out/nsguard" -n 10000 -runs 3 -max-queries 6 -max-rss 150

echo "== go test -bench CheckDNS: nsguard's own CPU time and allocations per domain (config, cycle, JSON; the lab in a helper process)"
go test -run '^$' -bench 'CheckDNS/domains=10000' -benchtime 3x -count 3 ./internal/checker | tee "$out/gobench" || status=1
median() { grep -o "[0-9.]* $1" "$out/gobench" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "median of 3: $(median 'cpu-µs/domain') CPU-µs/domain, $(median 'allocs/domain') allocations/domain, $(median 'B/domain') B/domain, $(median 'domains/s') domains/s"

if [ "${1:-}" = bind ]; then
  echo "== nsguard check --only dns, real BIND 9 ($(named -v)), 10,000 zones, against the dnsperf ceiling"
  step "$out/checkbench" -nsguard "$out/nsguard" -n 10000 -runs 3 -backend bind -base 72 \
    -ceiling -min-fraction 0.35 -max-wall 1.5s -max-queries 6 -max-rss 150
fi
exit $status
