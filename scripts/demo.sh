#!/usr/bin/env bash
# Demo: the groupid_auth sidecar (Caddyfile.example) in front of the GroupID
# simulator. A "legacy app" (plain curl, no credentials) calls the User and
# Group APIs through the sidecar. With DEMO_EXIT=1 it exits after the
# scripted calls (status 0 only if all of them behaved as expected);
# otherwise it stays up for manual calls until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_ADDR=${SIM_ADDR:-127.0.0.1:14443}
SIDECAR_PORT=${SIDECAR_PORT:-18080}
work=.demo
rm -rf "$work" && mkdir -p "$work/secrets" bin
# Caddy's admin API is a Unix socket in the demo's working directory, mode
# 0600, as in Caddyfile.example (a TCP admin port would let any local process
# load a config that reads the secret files). Socket paths are limited to
# 107 bytes, so a deep checkout falls back to a private temporary directory.
admin_sock=$PWD/$work/admin.sock
tmp_admin=
if [ "${#admin_sock}" -gt 100 ]; then
	tmp_admin=$(mktemp -d)
	admin_sock=$tmp_admin/admin.sock
fi
CADDY_ADMIN=${CADDY_ADMIN:-unix/$admin_sock|0600}

echo "==> building caddy (with groupid_auth) and the GroupID simulator"
go build -o bin/caddy ./cmd/caddy
go build -o bin/groupid-sim ./cmd/groupid-sim

# The sidecar reads its secrets from files, as it would from a Kubernetes
# Secret volume. These are the simulator's demo credentials.
printf '%s' 'sim-Passw0rd!' >"$work/secrets/password"
printf '%s' 'sim-client-secret' >"$work/secrets/client_secret"
chmod 600 "$work/secrets/"*

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$tmp_admin" ] || rm -rf "$tmp_admin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> starting the GroupID simulator on https://$SIM_ADDR"
bin/groupid-sim -addr "$SIM_ADDR" -ca-out "$work/groupid-ca.pem" -ready-file "$work/sim.url" >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/sim.url" ] && break; sleep 0.1; done
[ -s "$work/sim.url" ] || { echo "simulator did not start:"; cat "$work/sim.log"; exit 1; }
origin=$(cat "$work/sim.url")

echo "==> starting the sidecar from Caddyfile.example on http://127.0.0.1:$SIDECAR_PORT"
export CADDY_ADMIN SIDECAR_PORT SIDECAR_BIND=127.0.0.1 GROUPID_ORIGIN="$origin" GROUPID_IDENTITY_STORE_ID=2 \
	GROUPID_CA_FILE="$PWD/$work/groupid-ca.pem" GROUPID_SECRETS_DIR="$PWD/$work/secrets" \
	GROUPID_USERNAME=svc-groupid GROUPID_CLIENT_ID=caddy-groupid
bin/caddy run --config Caddyfile.example --adapter caddyfile >"$work/caddy.log" 2>&1 &
pids+=($!)
sidecar=http://127.0.0.1:$SIDECAR_PORT
for _ in $(seq 100); do curl -s -o /dev/null "$sidecar/" && break; sleep 0.1; done

# admin <path> [curl args...]: a call to Caddy's admin API at CADDY_ADMIN
# (a unix/<path>[|mode] socket, or host:port if set to one).
admin() {
	local path=$1
	shift
	case $CADDY_ADMIN in
	unix/*)
		local sock=${CADDY_ADMIN#unix/}
		curl -sS --unix-socket "${sock%%|*}" "$@" "http://localhost$path"
		;;
	*) curl -sS "$@" "http://$CADDY_ADMIN$path" ;;
	esac
}

api=/GroupIDDataService/api/IdentityStores/2
user=3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f01
group=b71e4d2a-9c35-4f80-8e16-5a2d0c9f4301
failed=0
forwarded=0 # calls that must reach GroupID (the 200s)

# call <expected status> <description> <curl args...>
call() {
	local want=$1 what=$2
	shift 2
	local out status
	out=$(curl -sS -o "$work/last-body" -w '%{http_code}' "$@" 2>&1) || true
	status=${out: -3}
	local body
	body=$(head -c 110 "$work/last-body" 2>/dev/null | tr -d '\n' || true)
	[ "$want" != 200 ] || forwarded=$((forwarded + 1))
	if [ "$status" = "$want" ]; then
		printf '  ok   %-44s -> %s  %s\n' "$what" "$status" "$body"
	else
		printf '  FAIL %-44s -> %s (want %s)  %s\n' "$what" "$status" "$want" "$body"
		failed=1
	fi
}

echo "==> legacy calls through the sidecar (no credentials in the client)"
call 200 "get one user" "$sidecar$api/Users/$user"
call 200 "get users (JSON body on GET)" -X GET -H 'Content-Type: application/json' \
	--data '{"objectIdentities":["'$user'"],"attributesToLoad":["displayName","mail"]}' "$sidecar$api/Users"
call 200 "create user" -H 'Content-Type: application/json' \
	--data '{"samAccountName":"legacy.demo","DisplayName":"Legacy Demo"}' "$sidecar$api/Users"
call 200 "update user" -X PATCH -H 'Content-Type: application/json' \
	--data '{"objectIdFromIdentityStore":"'$user'","Title":"Demo"}' "$sidecar$api/Users"
call 200 "get group (JSON array body)" -X GET -H 'Content-Type: application/json' \
	--data '["displayName","members"]' "$sidecar$api/Groups/$group"
call 200 "create static group" -H 'Content-Type: application/json' \
	--data '{"name":"Legacy Demo Team","groupType":"Security"}' "$sidecar$api/Groups/StaticGroup"
call 200 "join on behalf" -H 'Content-Type: application/json' \
	--data '["'$user'"]' "$sidecar$api/Groups/$group/JoinOnBehalf"
call 200 "my groups, page 2 of 20" "$sidecar$api/Users/$user/Groups/All?pageNo=2&pageSize=20"
call 200 "forged Authorization is replaced" -H 'Authorization: Bearer stolen' "$sidecar$api/Users/$user"
call 200 "delete users (JSON array body)" -X DELETE -H 'Content-Type: application/json' \
	--data '["00000000-0000-0000-0000-000000000000"]' "$sidecar$api/Users"
call 403 "token endpoint is not reachable via sidecar" -X POST "$sidecar/GroupIDSecurityService/connect/token"
call 403 "other paths are refused" "$sidecar/GroupIDDataService/api/Logs/Download"
call 405 "OPTIONS on the User API is refused" -X OPTIONS -D "$work/last-headers" "$sidecar$api/Users/$user"
if ! grep -qi '^Allow: GET, POST, PUT, PATCH, DELETE' "$work/last-headers"; then
	echo "  FAIL 405 without 'Allow: GET, POST, PUT, PATCH, DELETE'"
	failed=1
fi
call 405 "HEAD on the User API is refused" -I "$sidecar$api/Users/$user"
call 405 "TRACE on the Group API is refused" -X TRACE "$sidecar$api/Groups/$group"
call 405 "PROPFIND on the Group API is refused" -X PROPFIND "$sidecar$api/Groups"

tokens=$(curl -s "$origin/_sim/counters" --cacert "$work/groupid-ca.pem")
echo "==> simulator counters: $tokens"
if ! grep -q '"password/ok":1' <<<"$tokens"; then
	echo "  FAIL expected exactly one password grant"
	failed=1
fi
# The 403s and 405s never reach GroupID: it saw only the calls answered 200.
if ! grep -q '"APICalls":{"200":'"$forwarded"'}' <<<"$tokens"; then
	echo "  FAIL expected GroupID to see exactly the $forwarded calls answered 200"
	failed=1
fi

echo "==> GroupID revokes every token (as after a signing-key rotation); the next legacy call still works"
curl -s -X POST "$origin/_sim/revoke" --cacert "$work/groupid-ca.pem" >/dev/null
call 200 "get one user after the revocation" "$sidecar$api/Users/$user"
tokens=$(curl -s "$origin/_sim/counters" --cacert "$work/groupid-ca.pem")
echo "==> simulator counters: $tokens"
# The sidecar sent the call with the revoked token (401), fetched one fresh
# token and replayed it once inside the proxy's round trip.
if ! grep -q '"APICalls":{"200":'"$forwarded"',"401":1}' <<<"$tokens" || ! grep -q '"password/ok":2' <<<"$tokens"; then
	echo "  FAIL expected one 401, one more password grant and one replay answered 200"
	failed=1
fi

echo "==> the credential's status, through the admin socket ($CADDY_ADMIN)"
status=$(admin /groupid/status 2>&1 || true)
echo "  $(head -c 200 <<<"$status")"
if ! grep -q '"state":"valid"' <<<"$status"; then
	echo "  FAIL expected state valid from GET /groupid/status"
	failed=1
fi

if [ "${DEMO_EXIT:-0}" = "1" ]; then
	[ "$failed" = 0 ] && echo "==> demo passed" || { echo "==> demo FAILED; logs in $work/"; tail -20 "$work/caddy.log"; }
	exit "$failed"
fi
case $CADDY_ADMIN in
unix/*)
	admin_try=${CADDY_ADMIN#unix/}
	admin_try="curl --unix-socket ${admin_try%%|*} http://localhost/groupid/status"
	;;
*) admin_try="curl http://$CADDY_ADMIN/groupid/status" ;;
esac
cat <<MSG
==> sidecar running. Try, with no credentials:
      curl $sidecar$api/Users/$user
    Admin API: $admin_try
    Simulator controls: curl --cacert $work/groupid-ca.pem -X POST '$origin/_sim/fault?kind=down'
    Logs: $work/caddy.log, $work/sim.log. Ctrl-C to stop.
MSG
wait
