#!/usr/bin/env bash
# Turns criterion's medians from the last run of the handshake bench into the tables of
# BENCHMARKS.md, "Handshakes (server side)": handshakes per second against the RSA bound
# 1 / (premaster decryption + CAL signature), and where the time goes. With --openssl, also runs
# `openssl speed -seconds 3 -mr rsa512 rsa2048` (about 25 s) and sets the rsa crate's private-key
# operations beside OpenSSL's.
#
#   cargo bench -p rdpele-benches --bench handshake
#   benches/handshake-summary.sh [--openssl]
#
# Needs jq. Reads $CRITERION_HOME, else <cargo target dir>/criterion, as criterion does.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${CRITERION_HOME:-$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/criterion}

# Median in ns of one benchmark, e.g. `median handshake/new_license/512`.
median() {
  jq '.median.point_estimate' "$dir/$1/new/estimates.json"
}

for group in handshake handshake_canned_cal; do
  for kind in new_license upgrade; do
    for bits in 512 2048; do
      benches+=("$group/$kind/$bits")
    done
  done
done
benches+=(rsa/decrypt_premaster/512 rsa/decrypt_premaster/2048 rsa/sign_sha1/2048 rsa/sign_sha1/512
  handshake_parts/issue_cal/temporary handshake_parts/issue_cal/permanent
  handshake_parts/issue_cal_512_bit_signer/temporary handshake_parts/parse_cal
  handshake_parts/clone_config/512 handshake_parts/clone_config/2048)
for bench in "${benches[@]}"; do
  if [[ ! -f $dir/$bench/new/estimates.json ]]; then
    echo "no estimates for $bench in $dir: run the whole handshake bench first" >&2
    exit 1
  fi
done

sign=$(median rsa/sign_sha1/2048)

echo "| handshake | session host key | ns/handshake | handshakes/s | RSA bound/s | achieved / bound |"
echo "|---|---:|---:|---:|---:|---:|"
for kind in new_license upgrade; do
  for bits in 512 2048; do
    awk -v kind="$kind" -v bits="$bits" -v ns="$(median "handshake/$kind/$bits")" \
      -v premaster="$(median "rsa/decrypt_premaster/$bits")" -v sign="$sign" 'BEGIN {
        bound = 1e9 / (premaster + sign)
        printf "| %s | %d | %.0f | %.0f | %.0f | %.1f %% |\n", kind, bits, ns, 1e9 / ns, bound, 100 * (1e9 / ns) / bound
      }'
  done
done

echo
echo "| part | µs |"
echo "|---|---:|"
for bench in "${benches[@]:8}"; do
  printf '| %s | %.2f |\n' "$bench" "$(median "$bench" | awk '{ print $1 / 1e3 }')"
done
difference() {
  awk -v a="$(median "$2")" -v b="$(median "$3")" -v label="$1" \
    'BEGIN { printf "| %s | %.2f |\n", label, (a - b) / 1e3 }'
}
difference "CAL building without its signature (issue_cal_512_bit_signer − sign_sha1/512)" \
  handshake_parts/issue_cal_512_bit_signer/temporary rsa/sign_sha1/512
for kind in new_license upgrade; do
  for bits in 512 2048; do
    difference "$kind/$bits without CAL and premaster (canned − decrypt_premaster/$bits)" \
      "handshake_canned_cal/$kind/$bits" "rsa/decrypt_premaster/$bits"
  done
done

if [[ ${1:-} == --openssl ]]; then
  echo
  openssl version
  # -mr prints `+F2:<index>:<bits>:<signs/s>:<verifies/s>` per key size.
  openssl speed -seconds 3 -mr rsa512 rsa2048 2>/dev/null | awk -F: '/^\+F2:/ { print $3, $4 }' |
    while read -r bits signs; do
      case $bits in
        512) ours=$(median rsa/decrypt_premaster/512) ;;
        2048) ours=$(median rsa/sign_sha1/2048) ;;
        *) continue ;;
      esac
      awk -v bits="$bits" -v signs="$signs" -v ours="$ours" 'BEGIN {
        printf "| RSA-%d private op | rsa crate %.1f µs | openssl %.1f µs | rsa / openssl %.2f× |\n", bits, ours / 1e3, 1e6 / signs, (ours / 1e3) / (1e6 / signs)
      }'
    done
fi
