#!/usr/bin/env bash
# Start dockerd in the background where it is installed but not running, and wait for it.
set -uo pipefail
command -v dockerd >/dev/null || { echo "gati: no Docker engine (oci modules unavailable)" >&2; exit 0; }
docker info >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "gati: dockerd is not running and only root can start it here (oci modules unavailable)" >&2
    exit 0
fi
mkdir -p /var/log
nohup dockerd >/var/log/gati-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
done
echo "gati: dockerd did not start; see /var/log/gati-dockerd.log (oci modules unavailable)" >&2
exit 0
