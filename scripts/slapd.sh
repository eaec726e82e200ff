# shellcheck shell=bash
# The OpenLDAP directory behind the LDAP sign-in tests (`make test`) and `make dev`: Debian's own slapd and
# ldap-utils packages, downloaded with `apt-get download` and unpacked into .local/slapd/root (nothing is installed
# system-wide and no system slapd is started), run as the current user on the ports it is given.
# Source it from the repo root (bash, `set -euo pipefail` is fine); it only defines functions and variables.
# SLAPD_HOME (default .local/slapd) must be set, if at all, before sourcing and stay set.
#
#   install_slapd                                  download and unpack once (a stamp file makes it a no-op after)
#   start_slapd LDAP_PORT LDAPS_PORT STATE_DIR [demo]
#                                                  a fresh directory in STATE_DIR; exports SLAPD_PID and
#                                                  KEYGATE_TEST_LDAP_*; `demo` also adds the `make dev` user;
#                                                  a port given as `auto` is a free one (retried if taken)
#   stop_slapd                                     stops it (errors ignored)
#   ldap_tool NAME ARGS...                         runs an unpacked tool (ldapsearch, ldapadd, slapcat, ...)
#   free_port                                      prints a free TCP port on 127.0.0.1
#
# The directory: suffix dc=corp,dc=test; people under ou=people (alice, the AD-style "Bob AD", and with `demo` the
# demo user); the service account keygate binds as under ou=services; see local/ldap/*.ldif. TLS: a throwaway CA
# made at every start signs a certificate for 127.0.0.1 and localhost (StartTLS on the ldap port, and ldaps), and
# a second, unrelated CA is made for "a certificate from the wrong CA is refused" tests.

SLAPD_HOME=${SLAPD_HOME:-$PWD/.local/slapd}
SLAPD_ROOT=$SLAPD_HOME/root
# Always fetched: the programs and the libraries whose versions must match them. Any other library ldd cannot
# find after unpacking is fetched by _slapd_soname_package below (on this kind of machine: libltdl7, libwrap0).
SLAPD_PACKAGES="slapd ldap-utils libldap-2.5-0 libsasl2-2"
# Bump when the install layout changes so existing .local/slapd/root trees are rebuilt.
SLAPD_INSTALL_VERSION=1

SLAPD_SUFFIX="dc=corp,dc=test"
SLAPD_ADMIN_DN="cn=admin,$SLAPD_SUFFIX"
SLAPD_ADMIN_PASSWORD="admin-directory-password"
SLAPD_SERVICE_DN="cn=keygate,ou=services,$SLAPD_SUFFIX"
SLAPD_SERVICE_PASSWORD="keygate-service-password"
SLAPD_PEOPLE_DN="ou=people,$SLAPD_SUFFIX"

# Prints a TCP port that is free on 127.0.0.1 right now (as scripts/local-env.sh picks moto's).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The unpacked library directories, for LD_LIBRARY_PATH (the multiarch triplet is whatever the packages used).
_slapd_libpath() {
  local root=$1 dir path=""
  for dir in "$root"/usr/lib/*-linux-gnu* "$root"/lib/*-linux-gnu*; do
    if [ -d "$dir" ]; then path=${path:+$path:}$dir; fi
  done
  printf '%s\n' "$path"
}

# Runs an unpacked program with the unpacked libraries. LDAPNOINIT keeps /etc/ldap/ldap.conf and ~/.ldaprc out.
_slapd_run() {
  local root=$1 program=$2
  shift 2
  LDAPNOINIT=1 LD_LIBRARY_PATH=$(_slapd_libpath "$root") "$root/$program" "$@"
}

# Runs one of the unpacked LDAP tools: `ldap_tool ldapsearch -x -H "$KEYGATE_TEST_LDAP_URL" ...`. Unlike the other
# helpers it reads LDAPTLS_* from the environment (LDAPTLS_CACERT, LDAPTLS_REQCERT), as the tools normally do.
ldap_tool() {
  local name=$1 program
  shift
  if [ -x "$SLAPD_ROOT/usr/bin/$name" ]; then program=usr/bin/$name; else program=usr/sbin/$name; fi
  LD_LIBRARY_PATH=$(_slapd_libpath "$SLAPD_ROOT") LDAPCONF=/dev/null LDAPRC=/dev/null "$SLAPD_ROOT/$program" "$@"
}

# The Debian package that provides a shared library slapd or the tools need but a minimal machine may lack.
_slapd_soname_package() {
  case $1 in
    libltdl.so.7) echo libltdl7 ;;
    libwrap.so.0) echo libwrap0 ;;
    libnsl.so.2) echo libnsl2 ;;
    libtirpc.so.3) echo libtirpc3 ;;
    libgssapi_krb5.so.2) echo libgssapi-krb5-2 ;;
    libkrb5.so.3) echo libkrb5-3 ;;
    libk5crypto.so.3) echo libk5crypto3 ;;
    libkrb5support.so.0) echo libkrb5support0 ;;
    libkeyutils.so.1) echo libkeyutils1 ;;
    libcom_err.so.2) echo libcom-err2 ;;
    libsasl2.so.2) echo libsasl2-2 ;;
    liblber-2.5.so.0 | libldap-2.5.so.0) echo libldap-2.5-0 ;;
    libgnutls.so.30) echo libgnutls30 ;;
    libcrypt.so.1) echo libcrypt1 ;;
    *) return 1 ;;
  esac
}

# Shared libraries that the unpacked slapd, its mdb module or the tools cannot find.
_slapd_missing_libs() {
  local root=$1
  { LD_LIBRARY_PATH=$(_slapd_libpath "$root") ldd "$root/usr/sbin/slapd" "$root/usr/lib/ldap/back_mdb.so" \
      "$root"/usr/bin/ldap* 2>/dev/null || true; } | awk '/=> not found/ { print $1 }' | sort -u
}

# apt-get download PACKAGES into DEBS and unpack them into ROOT. APT::Sandbox::User=root silences apt's warning
# that user _apt cannot write to DEBS when this runs as root; as any other user apt ignores it.
_slapd_fetch() {
  local debs=$1 root=$2 out package deb
  shift 2
  # A machine whose package lists are missing or stale gets them refreshed once (root only: that installs
  # nothing, it only reads the registry's index).
  if ! out=$(cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$@" 2>&1) \
    && ! { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 \
           && out=$(cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$@" 2>&1); }; then
    printf '%s\n' "$out" >&2
    echo "slapd.sh: could not download $* from the package registry (are the apt lists current? 'apt-get update' as root)" >&2
    return 1
  fi
  for package in "$@"; do
    for deb in "$debs/${package}"_*.deb; do
      dpkg -x "$deb" "$root" || return 1
    done
  done
}

# Downloads Debian's slapd and ldap-utils (and any library they need that this machine lacks) into
# .local/slapd/root, once; quiet when it works. Safe to call from runs that start at the same time.
install_slapd() {
  local want="v$SLAPD_INSTALL_VERSION $SLAPD_PACKAGES"
  if [ -x "$SLAPD_ROOT/usr/sbin/slapd" ] && [ "$(cat "$SLAPD_ROOT/.installed" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  mkdir -p "$SLAPD_HOME" || return 1
  (
    # Explicit exits: callers may run this where `set -e` is ignored (`install_slapd || ...`).
    flock 9 || exit 1
    if [ -x "$SLAPD_ROOT/usr/sbin/slapd" ] && [ "$(cat "$SLAPD_ROOT/.installed" 2>/dev/null)" = "$want" ]; then
      exit 0
    fi
    work=$(mktemp -d "$SLAPD_HOME/install.XXXXXX") || exit 1
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/debs" "$work/root" || exit 1
    # shellcheck disable=SC2086 # a list of package names
    _slapd_fetch "$work/debs" "$work/root" $SLAPD_PACKAGES || exit 1
    # Each round can uncover the dependencies of the libraries the previous one fetched.
    for _ in 1 2 3 4; do
      missing=$(_slapd_missing_libs "$work/root") || exit 1
      [ -n "$missing" ] || break
      packages=""
      for soname in $missing; do
        if ! package=$(_slapd_soname_package "$soname"); then
          echo "slapd.sh: slapd needs $soname, which this machine lacks and slapd.sh does not know how to fetch" >&2
          exit 1
        fi
        packages="$packages $package"
      done
      # shellcheck disable=SC2086 # a list of package names
      _slapd_fetch "$work/debs" "$work/root" $packages || exit 1
    done
    missing=$(_slapd_missing_libs "$work/root") || exit 1
    if [ -n "$missing" ]; then
      echo "slapd.sh: still missing after download: $missing" >&2
      exit 1
    fi
    echo "$want" >"$work/root/.installed" || exit 1
    rm -rf "$SLAPD_ROOT" && mv "$work/root" "$SLAPD_ROOT" || exit 1
  ) 9>"$SLAPD_HOME/.lock"
}

# Escapes a value for the right-hand side of a sed s|||.
_slapd_sed_escape() {
  printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# A sed expression that replaces @NAME@ with an {SSHA} hash of PASSWORD, made by the unpacked slappasswd.
_slapd_hash_subst() {
  local name=$1 password=$2 hash
  hash=$(_slapd_run "$SLAPD_ROOT" usr/sbin/slappasswd -h '{SSHA}' -s "$password") || return 1
  case $hash in
    '{SSHA}'*) printf 's|@%s@|%s|g\n' "$name" "$(_slapd_sed_escape "$hash")" ;;
    *) return 1 ;;
  esac
}

# Whether PID is a live (not zombie) process.
_slapd_alive() {
  local state
  state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# A self-signed CA: DIR/NAME.pem and DIR/NAME.key.
_slapd_make_ca() {
  local dir=$1 name=$2 cn=$3
  openssl req -x509 -new -nodes -config "$dir/openssl.cnf" -extensions ca -days 30 -subj "/CN=$cn" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$dir/$name.key" -out "$dir/$name.pem" 2>/dev/null
}

# The test CA, the server certificate it signs for 127.0.0.1 and localhost, and an unrelated second CA.
_slapd_make_tls() {
  local dir=$1
  cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  _slapd_make_ca "$dir" ca "keygate test directory CA" || return 1
  _slapd_make_ca "$dir" wrong-ca "an unrelated CA" || return 1
  openssl req -new -nodes -config "$dir/openssl.cnf" -subj "/CN=localhost" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null \
    || return 1
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/openssl.cnf" -extensions server -out "$dir/server.pem" 2>/dev/null || return 1
  chmod 600 "$dir"/*.key
}

# Starts a fresh directory: state (config, data, certificates, log) in STATE_DIR, which is wiped first if it is
# an earlier run's; refuses a directory that is not, or whose slapd still runs. Exports SLAPD_PID,
# SLAPD_STATE_DIR and the KEYGATE_TEST_LDAP_* variables; returns once slapd answers on LDAP_PORT.
# A port given as `auto` is picked free, and picked again (three tries) if another process takes it first.
start_slapd() {
  local ldap_port=$1 ldaps_port=$2 state=$3 demo=${4:-} attempt rc
  install_slapd || return 1
  if [ "$ldap_port" != auto ] && [ "$ldaps_port" != auto ]; then
    _slapd_start "$ldap_port" "$ldaps_port" "$state" "$demo"
    return
  fi
  for attempt in 1 2 3; do
    if [ "$1" = auto ]; then ldap_port=$(free_port); fi
    if [ "$2" = auto ]; then
      ldaps_port=$(free_port)
      while [ "$ldaps_port" = "$ldap_port" ]; do ldaps_port=$(free_port); done
    fi
    rc=0
    _slapd_start "$ldap_port" "$ldaps_port" "$state" "$demo" || rc=$?
    if [ "$rc" != 2 ] || [ "$attempt" = 3 ]; then return "$rc"; fi
    echo "slapd.sh: trying other ports" >&2
  done
}

# start_slapd's work; returns 2 when a port was taken.
_slapd_start() {
  local ldap_port=$1 ldaps_port=$2 state=$3 demo=$4 old_pid ldif
  if [ -e "$state" ]; then
    old_pid=$(cat "$state/slapd.pid" 2>/dev/null || true)
    if [ -n "$old_pid" ] && _slapd_alive "$old_pid" && [ "$(cat "/proc/$old_pid/comm" 2>/dev/null)" = slapd ]; then
      echo "slapd.sh: a slapd (pid $old_pid) still runs from $state; stop it first" >&2
      return 1
    fi
    if [ -n "$(ls -A "$state")" ] && [ ! -f "$state/.keygate-slapd" ]; then
      echo "slapd.sh: $state is not empty and not a slapd state directory; refusing to wipe it" >&2
      return 1
    fi
    rm -rf "$state"
  fi
  mkdir -p "$state" && state=$(cd "$state" && pwd) || return 1
  touch "$state/.keygate-slapd" && mkdir "$state/tls" "$state/slapd.d" "$state/data" || return 1
  _slapd_make_tls "$state/tls" || {
    echo "slapd.sh: could not make the test certificates" >&2
    return 1
  }

  # The sed script that fills in the templates' @NAME@ placeholders.
  {
    printf 's|@STATE_DIR@|%s|g\n' "$(_slapd_sed_escape "$state")"
    printf 's|@MODULE_DIR@|%s|g\n' "$(_slapd_sed_escape "$SLAPD_ROOT/usr/lib/ldap")"
    printf 's|@SUFFIX@|%s|g\n' "$(_slapd_sed_escape "$SLAPD_SUFFIX")"
    printf 's|@ADMIN_DN@|%s|g\n' "$(_slapd_sed_escape "$SLAPD_ADMIN_DN")"
    printf 's|@SERVICE_DN@|%s|g\n' "$(_slapd_sed_escape "$SLAPD_SERVICE_DN")"
    _slapd_hash_subst ADMIN_PASSWORD_HASH "$SLAPD_ADMIN_PASSWORD" &&
      _slapd_hash_subst SERVICE_PASSWORD_HASH "$SLAPD_SERVICE_PASSWORD" &&
      _slapd_hash_subst ALICE_PASSWORD_HASH alice-directory-password &&
      _slapd_hash_subst BOB_PASSWORD_HASH bob-directory-password &&
      _slapd_hash_subst DEMO_PASSWORD_HASH demo-directory-password
  } >"$state/subst.sed" || {
    echo "slapd.sh: could not hash the directory's passwords with slappasswd" >&2
    return 1
  }
  local subst=$state/subst.sed

  # cn=config: the template, with the schemas spliced in at its @SCHEMAS@ line.
  {
    sed -n '1,/^# @SCHEMAS@/p' local/ldap/config.ldif | sed -f "$subst"
    for ldif in "$SLAPD_ROOT"/etc/ldap/schema/{core,cosine,inetorgperson}.ldif local/ldap/ad-lite.ldif; do
      echo
      cat "$ldif"
    done
    echo
    sed '1,/^# @SCHEMAS@/d' local/ldap/config.ldif | sed -f "$subst"
  } >"$state/config.ldif"
  {
    sed -f "$subst" local/ldap/users.ldif
    if [ "$demo" = demo ]; then
      echo
      sed -f "$subst" local/ldap/demo.ldif
    fi
  } >"$state/users.ldif"
  if ! _slapd_run "$SLAPD_ROOT" usr/sbin/slapadd -n0 -F "$state/slapd.d" -l "$state/config.ldif" \
    >"$state/slapadd.log" 2>&1 ||
    ! _slapd_run "$SLAPD_ROOT" usr/sbin/slapadd -n1 -F "$state/slapd.d" -l "$state/users.ldif" \
      >>"$state/slapadd.log" 2>&1; then
    cat "$state/slapadd.log" >&2
    echo "slapd.sh: could not load the directory's configuration or entries (above)" >&2
    return 1
  fi

  # In the foreground (-d) so $! is slapd itself; SLAPD_DEBUG=stats (or any -d level) logs to slapd.log.
  LDAPNOINIT=1 LD_LIBRARY_PATH=$(_slapd_libpath "$SLAPD_ROOT") "$SLAPD_ROOT/usr/sbin/slapd" \
    -h "ldap://127.0.0.1:$ldap_port/ ldaps://127.0.0.1:$ldaps_port/" -F "$state/slapd.d" \
    -d "${SLAPD_DEBUG:-none}" >"$state/slapd.log" 2>&1 &
  SLAPD_PID=$!
  # slapd writes its pid file only once it holds both ports, so an answer from another server on a port this one
  # could not take does not count.
  local ready=""
  for _ in $(seq 1 100); do
    if ! _slapd_alive "$SLAPD_PID"; then break; fi
    if [ "$(cat "$state/slapd.pid" 2>/dev/null)" = "$SLAPD_PID" ] &&
      _slapd_run "$SLAPD_ROOT" usr/bin/ldapsearch -x -o nettimeout=2 -H "ldap://127.0.0.1:$ldap_port" \
        -b "" -s base >/dev/null 2>&1 && _slapd_alive "$SLAPD_PID"; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    stop_slapd
    if grep -q 'errno=98' "$state/slapd.log"; then
      echo "slapd.sh: port $ldap_port or $ldaps_port on 127.0.0.1 is already in use" >&2
      return 2
    fi
    cat "$state/slapd.log" >&2
    echo "slapd.sh: slapd did not start on 127.0.0.1:$ldap_port and :$ldaps_port (log above, in $state)" >&2
    return 1
  fi

  export SLAPD_PID SLAPD_STATE_DIR=$state
  export KEYGATE_TEST_LDAP_URL="ldap://127.0.0.1:$ldap_port"
  export KEYGATE_TEST_LDAPS_URL="ldaps://127.0.0.1:$ldaps_port"
  export KEYGATE_TEST_LDAP_CA="$state/tls/ca.pem"
  export KEYGATE_TEST_LDAP_WRONG_CA="$state/tls/wrong-ca.pem"
  export KEYGATE_TEST_LDAP_ADMIN_DN="$SLAPD_ADMIN_DN"
  export KEYGATE_TEST_LDAP_ADMIN_PASSWORD="$SLAPD_ADMIN_PASSWORD"
  export KEYGATE_TEST_LDAP_BIND_DN="$SLAPD_SERVICE_DN"
  export KEYGATE_TEST_LDAP_BIND_PASSWORD="$SLAPD_SERVICE_PASSWORD"
  export KEYGATE_TEST_LDAP_BASE_DN="$SLAPD_PEOPLE_DN"
}

# Stops the slapd start_slapd started (waits up to 5 s for it to exit, then kills it); never fails.
stop_slapd() {
  local pid=${SLAPD_PID:-}
  [ -n "$pid" ] || return 0
  SLAPD_PID=""
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    _slapd_alive "$pid" || break
    sleep 0.1
  done
  if _slapd_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  return 0
}
