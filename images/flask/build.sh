#!/usr/bin/env bash
# Build the native Flask sample without Docker Hub: a Debian rootfs from Debian packages
# (mmdebstrap, cached), imported into the Docker engine, then the app on top.
#
#   images/flask/build.sh [--tag NAME] [--user UID] [--push REGISTRY/REPO:TAG]
#
# Needs: mmdebstrap, a running Docker engine. Prints the image name on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=sconify-samples/native-flask:latest
user=root
push=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    *) echo "usage: $0 [--tag NAME] [--user UID] [--push REGISTRY/REPO:TAG]" >&2; exit 2 ;;
  esac
done
packages="python3,python3-flask"
base=sconify-samples/python-flask-base:bookworm
cache=${SCONIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sconify}/rootfs
mkdir -p "$cache"
rootfs="$cache/bookworm-minbase-$(echo "$packages" | sha256sum | cut -c1-12).tar"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  if [ ! -s "$rootfs" ]; then
    echo "building a Debian bookworm rootfs with $packages (mmdebstrap, about 20 s)" >&2
    mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "${rootfs%.tar}.partial.tar" >&2
    mv "${rootfs%.tar}.partial.tar" "$rootfs"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$rootfs" "$base" >/dev/null
fi
DOCKER_BUILDKIT=0 docker build --quiet --build-arg BASE="$base" --build-arg APP_USER="$user" \
  -t "$tag" "$here" >/dev/null
if [ -n "$push" ]; then
  docker tag "$tag" "$push"
  docker push "$push" >/dev/null
  tag=$push
fi
echo "$tag"
