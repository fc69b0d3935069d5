#!/usr/bin/env bash
# Installs what the integration tests' private servers need (Dovecot IMAP + LMTP, Postfix,
# openssl, and Debian's PostgreSQL server) when any of it is missing. Idempotent; safe to call
# from many tests at once (flock).
#
# It never starts or stops the system services: while it installs, a temporary
# /usr/sbin/policy-rc.d forbids service starts (unless one already exists), and Postfix is
# preseeded as "No configuration". The tests run their own private instances on high loopback
# ports, so system services that are already running on 25/143/993/5432 are simply left alone.
# The postgresql package's postinst creates a "main" cluster under /etc/postgresql/NN/main; it is
# left in place but never started (invoke-rc.d and deb-systemd-invoke both obey policy-rc.d). As
# a second guard, a system cluster that was not running before and runs after the installation
# (a pre-existing policy-rc.d that allows starts) is stopped again with pg_ctlcluster.
#
# Usage: tests/support/install.sh            (exit 0 = everything present)
set -euo pipefail

PACKAGES=(dovecot-imapd dovecot-lmtpd postfix openssl postgresql)
LOCK_FILE="${INTAKE311_INSTALL_LOCK:-/tmp/intake311-mailservers-install.lock}"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { printf 'install.sh: ERROR: %s\n' "$*" >&2; exit 1; }

missing() {
    local m=()
    [[ -x /usr/sbin/dovecot ]] || m+=("/usr/sbin/dovecot")
    [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/imap-login ]] || m+=("/usr/lib/dovecot/imap")
    [[ -x /usr/lib/dovecot/lmtp ]] || m+=("/usr/lib/dovecot/lmtp")
    [[ -x /usr/sbin/postfix ]] || m+=("/usr/sbin/postfix")
    command -v openssl >/dev/null 2>&1 || m+=("openssl")
    have_postgres || m+=("/usr/lib/postgresql/*/bin/{initdb,postgres}")
    printf '%s\n' "${m[@]}"
}

# Some /usr/lib/postgresql/NN/bin holds both initdb and the server binary.
have_postgres() {
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        [[ -x $bin/initdb && -x $bin/postgres ]] && return 0
    done
    return 1
}

# System clusters running now, as "VERSION NAME" lines (pg_lsclusters is postgresql-common's).
running_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" { print $1, $2 }' || true
}

if [[ -z "$(missing)" ]]; then
    log "dovecot (imap, lmtp), postfix, openssl and postgresql are present; nothing to install"
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    die "missing: $(missing | tr '\n' ' ')- installing needs root (run: apt-get install ${PACKAGES[*]})"
fi
command -v apt-get >/dev/null 2>&1 || die "missing: $(missing | tr '\n' ' ')- and apt-get is not available; install ${PACKAGES[*]} by hand"

# Serialise concurrent callers (parallel tests, parallel test binaries).
exec 9>>"$LOCK_FILE" || die "cannot open lock file $LOCK_FILE"
if command -v flock >/dev/null 2>&1; then
    log "waiting for lock $LOCK_FILE"
    flock -w 900 9 || die "timed out after 900 s waiting for $LOCK_FILE"
else
    log "warning: flock not found; continuing without a lock"
fi

# Someone else may have installed everything while we waited.
if [[ -z "$(missing)" ]]; then
    log "already installed by a concurrent caller"
    exit 0
fi
log "missing: $(missing | tr '\n' ' ')"

# Keep the system services from starting during installation.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [[ $created_policy == 1 ]]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [[ ! -e $POLICY ]]; then
    log "creating temporary $POLICY (exit 101) so that no system service starts"
    printf '#!/bin/sh\n# temporary, created by intake311 tests/support/install.sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
if command -v debconf-set-selections >/dev/null 2>&1; then
    # No system-wide Postfix configuration: we only run private instances.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || true
fi

clusters_before="$(running_clusters)"

log "running: apt-get update"
apt-get -o DPkg::Lock::Timeout=300 update >&2 || die "apt-get update failed"

log "running: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${PACKAGES[@]}" >&2 \
    || die "apt-get install ${PACKAGES[*]} failed"

# Second guard: a system cluster the installation started (it should not have) is stopped.
while read -r version name; do
    [[ -n $version ]] || continue
    if ! grep -qx "$version $name" <<<"$clusters_before"; then
        log "the installation started system cluster $version/$name; stopping it"
        pg_ctlcluster "$version" "$name" stop -m fast >&2 || die "could not stop system cluster $version/$name"
    fi
done <<<"$(running_clusters)"

still="$(missing)"
[[ -z "$still" ]] || die "still missing after installation: $(echo "$still" | tr '\n' ' ')"
log "installed ${PACKAGES[*]}"
exit 0
