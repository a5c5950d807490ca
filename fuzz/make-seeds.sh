#!/usr/bin/env bash
# Derives the fuzz seed corpora (fuzz/seeds/<target>/) from the real captures in captures/, each
# in the framing its target parses. Re-run after adding a capture; scripts/fuzz checks that the
# committed seeds match this script's output.
#
#   fuzz/make-seeds.sh [OUT_DIR]     (default: fuzz/seeds)
#
# The host_connection target's seeds are made by a test from the Standard RDP Security vectors
# (see the end of this script). The cal target reads CAL files: both Windows CALs, as PKCS#7 DER and inside their decrypted
# NEW_LICENSE_INFO. The machine targets' seeds are not captures but a few fixed byte strings in
# their input layout (proto/src/fuzzing/machine.rs), each replaying one recorded licensing flow.
#
# Framing of the captures (see captures/ and the vectors README): server_license_request.bin
# starts at LICENSE_PREAMBLE; server_upgrade_license.bin and every xrdp/xfreerdp file start with
# the 4-byte basic security header; new_license_info.bin is a bare NEW_LICENSE_INFO. A few seeds
# are synthetic because no capture holds that structure; each says so where it is built.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
captures=$root/captures
out=${1:-$root/fuzz/seeds}

# bytes FILE OFFSET [COUNT]: COUNT bytes (default: all the rest) of FILE from OFFSET.
bytes() {
    if [[ $# -eq 3 ]]; then
        tail -c +"$(($2 + 1))" "$1" | head -c "$3"
    else
        tail -c +"$(($2 + 1))" "$1"
    fi
}
# u16 / u32 FILE OFFSET: a little-endian integer.
u16() { od -An -v --endian=little -tu2 -j "$2" -N2 "$1" | tr -d ' '; }
u32() { od -An -v --endian=little -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
# hex HEXSTRING: the bytes it spells.
hex() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }

# frame CHOICE INITIATOR LONG FILE [OFFSET]: the bytes of FILE from OFFSET (a security header and
# licensing PDU) as a TS_LICENSING_PDU on the wire: TPKT, X.224 Data (EOT), MCS Send Data with
# CHOICE 68 (Indication, server to client) or 64 (Request, client to server), INITIATOR (hex, the
# user id minus 1001), the I/O channel 1003, dataPriority high with begin|end (0x70), and a PER
# length in its two-byte form if LONG is 1 (FreeRDP always uses it) or the data needs it.
frame() {
    local choice=$1 initiator=$2 long=$3 file=$4 offset=${5:-0} len per
    len=$(($(wc -c <"$file") - offset))
    if [[ $long -eq 1 ]] || ((len >= 0x80)); then
        per=$(printf '%04x' $((0x8000 | len)))
    else
        per=$(printf '%02x' "$len")
    fi
    hex "0300$(printf '%04x' $((4 + 3 + 6 + ${#per} / 2 + len)))02f080${choice}${initiator}03eb70${per}"
    bytes "$file" "$offset"
}

# certificate FILE BODY: the data of the BB_CERTIFICATE_BLOB of the SERVER_LICENSE_REQUEST whose
# body starts at BODY in FILE (MS-RDPELE 2.2.2.1: ServerRandom, ProductInfo, KeyExchangeList,
# ServerCertificate).
certificate() {
    local file=$1 off=$(($2 + 32)) # ServerRandom
    off=$((off + 8 + $(u32 "$file" $((off + 4))))) # dwVersion, cbCompanyName, pbCompanyName
    off=$((off + 4 + $(u32 "$file" "$off")))       # cbProductId, pbProductId
    off=$((off + 4 + $(u16 "$file" $((off + 2))))) # KeyExchangeList blob
    bytes "$file" $((off + 4)) "$(u16 "$file" $((off + 2)))"
}

windows_request=$captures/server_license_request.bin
windows_upgrade=$captures/server_upgrade_license.bin
windows_info=$captures/new_license_info.bin
xrdp_request=$captures/xrdp-0.9.21_license_request.bin
xrdp_alert=$captures/xrdp-0.9.21_error_alert.bin
xf_request=$captures/xfreerdp-2.11.7_new_license_request.bin
xf_response=$captures/xfreerdp-2.11.7_platform_challenge_response.bin
xf_info=$captures/xfreerdp-2.11.7_license_info.bin
# Standard RDP Security: xfreerdp 2.11.7 /sec:rdp against xrdp 0.9.21 (proto/tests/vectors).
rdpsec=$root/proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_128bit_client_to_server.bin
rdpsec_salted=$root/proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_salted_client_to_server.bin

# Synthetic: no capture holds a Server Platform Challenge. ConnectFlags 0, a 10-byte encrypted
# challenge (the length Windows sends) in a BB_ENCRYPTED_DATA_BLOB, a 16-byte MAC.
platform_challenge_body=00000000""0900""0a00""$(printf '5a%.0s' {1..10})""$(printf 'c3%.0s' {1..16})

rm -rf "$out"
mkdir -p "$out"/{licensing_pdu,licensing_pdu_structured,license_request,new_license_request} \
    "$out"/{license_info,platform_challenge,challenge_response,new_license,upgrade_license} \
    "$out"/{error_message,server_certificate,new_license_info,challenge_response_data,hwid} \
    "$out"/{frame,cal,server_machine,client_machine,set_error_info} \
    "$out"/{security_exchange,rdp_security,host_connection}

# licensing_pdu: every licensing capture from the preamble on, plus the two message types no
# capture holds (a platform challenge, and the upgrade license relabelled as a new license:
# same layout, bMsgType 0x03).
cp "$windows_request" "$out/licensing_pdu/windows_license_request"
bytes "$windows_upgrade" 4 >"$out/licensing_pdu/windows_upgrade_license"
bytes "$xrdp_request" 4 >"$out/licensing_pdu/xrdp_license_request"
bytes "$xrdp_alert" 4 >"$out/licensing_pdu/xrdp_error_alert"
bytes "$xf_request" 4 >"$out/licensing_pdu/xfreerdp_new_license_request"
bytes "$xf_response" 4 >"$out/licensing_pdu/xfreerdp_platform_challenge_response"
bytes "$xf_info" 4 >"$out/licensing_pdu/xfreerdp_license_info"
{ hex 0203""2600 && hex "$platform_challenge_body"; } >"$out/licensing_pdu/synthetic_platform_challenge"
{ hex 03 && bytes "$windows_upgrade" 5; } >"$out/licensing_pdu/windows_upgrade_as_new_license"

# licensing_pdu_structured: arbitrary bytes drive `arbitrary`; the real messages are as good a
# start as any.
cp "$out"/licensing_pdu/* "$out/licensing_pdu_structured/"

# Message bodies: after the security header (4 bytes, where present) and the preamble (4 bytes).
bytes "$windows_request" 4 >"$out/license_request/windows"
bytes "$xrdp_request" 8 >"$out/license_request/xrdp"
bytes "$xf_request" 8 >"$out/new_license_request/xfreerdp"
bytes "$xf_info" 8 >"$out/license_info/xfreerdp"
hex "$platform_challenge_body" >"$out/platform_challenge/synthetic"
bytes "$xf_response" 8 >"$out/challenge_response/xfreerdp"
bytes "$windows_upgrade" 8 >"$out/upgrade_license/windows"
bytes "$windows_upgrade" 8 >"$out/new_license/windows_upgrade_body"
bytes "$xrdp_alert" 8 >"$out/error_message/xrdp_valid_client"
# Synthetic: STATUS_VALID_CLIENT / ST_NO_TRANSITION with an empty BB_ERROR_BLOB, as Windows sends.
hex 07000000""02000000""0400""0000 >"$out/error_message/windows_valid_client"

# SERVER_CERTIFICATE: the certificate blob data of both license requests (X.509 chain, and
# proprietary).
certificate "$windows_request" 4 >"$out/server_certificate/windows_x509_chain"
certificate "$xrdp_request" 8 >"$out/server_certificate/xrdp_proprietary"

cp "$windows_info" "$out/new_license_info/windows"

# Synthetic, with xfreerdp's field values (wVersion 0x0100, wClientType 0xFF00, detail level 3)
# and the 16-byte challenge that fits its 24-byte EncryptedPlatformChallengeResponse.
hex 0001""00ff""0300""1000""$(printf '54%.0s' {1..16}) >"$out/challenge_response_data/xfreerdp_like"

# xfreerdp's HWID for client hostname "vm" (the captures' machine name): LE32(0x04010000) ‖
# MD5("vm").
{ hex 00000104 && hex "$(printf 'vm' | md5sum | cut -c1-32)"; } >"$out/hwid/xfreerdp_vm"

# Synthetic: ERRINFO_LICENSE_NO_LICENSE in an uncompressed Share Data Header from pduSource
# 1003, shareId 0x000103ea, STREAM_MED.
hex 1600""1700""eb03""ea030100""00""02""0800""2f""00""0000""02010000 >"$out/set_error_info/no_license"

# frame: every licensing capture on the wire. Server messages as a Windows server frames them
# (Indication from its channel 1002, shortest length form); client messages as xfreerdp does
# (Request from user 1007, two-byte length form). The captures without a security header get
# the basic one every licensing PDU carries (SEC_LICENSE_PKT).
sec_windows_request=$(mktemp)
trap 'rm -f "$sec_windows_request"' EXIT
{ hex 80000000 && cat "$windows_request"; } >"$sec_windows_request"
frame 68 0001 0 "$sec_windows_request" >"$out/frame/windows_license_request"
frame 68 0001 0 "$windows_upgrade" >"$out/frame/windows_upgrade_license"
frame 68 0001 0 "$xrdp_request" >"$out/frame/xrdp_license_request"
frame 68 0001 0 "$xrdp_alert" >"$out/frame/xrdp_error_alert"
frame 64 0006 1 "$xf_request" >"$out/frame/xfreerdp_new_license_request"
frame 64 0006 1 "$xf_response" >"$out/frame/xfreerdp_platform_challenge_response"
frame 64 0006 1 "$xf_info" >"$out/frame/xfreerdp_license_info"

# security_exchange: xfreerdp's Security Exchange PDU userData (the TPKT at stream offset 578,
# behind TPKT, X.224 and a Send Data Request header of 8 bytes: 272 bytes).
bytes "$rdpsec" 593 272 >"$out/security_exchange/xfreerdp"
# rdp_security: xfreerdp's encrypted Client Info userData (stream offset 865; plain MAC, then
# salted), its encrypted New License Request (offset 1214) and a fast-path input PDU (2155).
bytes "$rdpsec" 880 334 >"$out/rdp_security/xfreerdp_client_info"
bytes "$rdpsec_salted" 880 334 >"$out/rdp_security/xfreerdp_client_info_salted"
bytes "$rdpsec" 1229 156 >"$out/rdp_security/xfreerdp_new_license_request"
bytes "$rdpsec" 2155 16 >"$out/rdp_security/xfreerdp_fast_path_input"
# ... and whole PDUs as the host's transport opens them: the Client Info and Confirm Active.
bytes "$rdpsec" 865 349 >"$out/rdp_security/xfreerdp_client_info_pdu"
bytes "$rdpsec" 1385 562 >"$out/rdp_security/xfreerdp_confirm_active_pdu"

# cal: the 2008 CAL of the captures and the 2019 one (moving from the CAL tests' testdata to
# captures/; taken from wherever it is), each bare and in its NEW_LICENSE_INFO.
windows2019=$captures
if [[ ! -f $windows2019/windows2019_cal_temporary.p7b ]]; then
    windows2019=$root/proto/src/cal/testdata
fi
cp "$captures/cal_temporary.p7b" "$out/cal/windows2008_cal"
cp "$windows_info" "$out/cal/windows2008_new_license_info"
cp "$windows2019/windows2019_cal_temporary.p7b" "$out/cal/windows2019_cal"
cp "$windows2019/windows2019_new_license_info.bin" "$out/cal/windows2019_new_license_info"

# server_machine: scenario (0-2: a recorded connection's seed), clock offset in days, then
# (operation 0, index) per recorded client PDU: 0 New License Request, 1 Challenge Response,
# 2 License Info (temporary CAL), 3 Challenge Response, 4 License Info (permanent CAL).
hex 00""00""0000""0001 >"$out/server_machine/first_contact"
hex 01""00""0002""0003 >"$out/server_machine/upgrade"
hex 02""0a""0004 >"$out/server_machine/valid"
hex 01""5b""0002 >"$out/server_machine/expired"           # day 91: the temporary CAL expired
hex 02""37""0004""0003 >"$out/server_machine/renewal"     # day 55: renew, then a stale response
hex 03""2a00000000000000""00""0000""0001 >"$out/server_machine/other_seed" # the MAC fails
# client_machine: scenario (0-2: a recorded connection's seed and store), then (operation 0,
# index) per recorded server PDU: 0 License Request, 1 Platform Challenge, 2 New License,
# 3 License Request, 4 Platform Challenge, 5 Upgrade License, 6 License Request,
# 7 STATUS_VALID_CLIENT.
hex 00""0000""0001""0002 >"$out/client_machine/first_contact"
hex 01""0003""0004""0005 >"$out/client_machine/upgrade"
hex 02""0006""0007 >"$out/client_machine/valid"
hex 03""2a00000000000000""00""0000""0001 >"$out/client_machine/other_seed" # the MAC fails

# host_connection: xfreerdp's /sec:rdp sessions with xrdp ($rdpsec, $rdpsec_salted) in the
# harness's layout (emulator/src/session_host/fuzzing.rs), for both of its hosts. Opening them
# takes xrdp's RSA key and RC4, so emulator/tests/fuzz_host_connection.rs makes them and checks
# the copies in fuzz/harness-seeds/ (RDPELE_WRITE_SEEDS=1 rewrites them).
cp "$root"/fuzz/harness-seeds/host_connection/* "$out/host_connection/"
