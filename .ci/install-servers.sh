#!/usr/bin/env bash
# Installs the real servers the integration tests start themselves (test/support/servers.ts):
# PostgreSQL, Redis, OpenLDAP (+ client tools) and tshark. Debian 12, as root.
# Services are not started: the tests run their own instances on free ports.
set -euo pipefail

install_servers() {
  local wanted=(postgresql redis-server slapd ldap-utils tshark)
  local missing=() pkg
  for pkg in "${wanted[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-servers: all present (${wanted[*]})"
    return 0
  fi
  echo "install-servers: installing ${missing[*]}"

  # Debian's way to keep maintainer scripts from starting services: policy-rc.d exiting 101.
  # Only ours is removed afterwards; an existing one (Docker images ship one) is left alone.
  local own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  # slapd's postinst would ask for a domain and admin password; the tests bring their own config.
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
  # tshark asks whether non-root users may capture; the tests capture as root.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections

  local status=0
  {
    apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  } || status=$?
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  return "$status"
}

install_servers
