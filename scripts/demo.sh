#!/usr/bin/env bash
# `make demo`: set up what is missing (Docker engine, CAS, LAS, registry), build the native Flask
# sample, convert it with SCONE's command line, run the result and show it serving.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
state="${XDG_STATE_HOME:-$HOME/.local/state}/sconify"
mkdir -p "$state"
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

for tool in docker dockerd mmdebstrap docker-registry go; do
  command -v "$tool" >/dev/null || {
    say "installing Debian packages (docker.io docker-registry mmdebstrap golang-go)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      docker.io docker-registry skopeo golang-go mmdebstrap >/dev/null
    break
  }
done

say "Docker engine"
python -c "from pathlib import Path; from sconify.dev.engine import ensure_engine; ensure_engine(log_dir=Path('$state'))"
docker version --format 'engine {{.Server.Version}}' >&2

say "CAS, LAS and registry (sconify dev up)"
sconify dev up >&2

say "building the native Flask sample (Debian packages via mmdebstrap, no Docker Hub)"
images/flask/build.sh --tag sconify-samples/native-flask:latest \
  --push localhost:5000/my-native-flask:latest >&2

say "sconify_image: lift and shift"
set -x
sconify_image --from=localhost:5000/my-native-flask --to=localhost:5000/my-encrypted-flask \
  --binary=/usr/bin/python3 --cas=localhost:8081 --las=localhost:18766 \
  --service-name=my-flask-service --name=my-flask-session \
  --namespace=my-workflow-namespace-123 --create-namespace \
  --heap=1G --stack=4M --dlopen=2 --dir=/app --env PORT=8089 --cas-debug --push-image
{ set +x; } 2>/dev/null

say "docker run --network host localhost:5000/my-encrypted-flask"
docker rm -f sconify-demo >/dev/null 2>&1 || true
docker run -d --name sconify-demo --network host localhost:5000/my-encrypted-flask >/dev/null
trap 'docker rm -f sconify-demo >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 60); do
  if answer=$(curl -fsS http://127.0.0.1:8089/ 2>/dev/null); then
    docker logs sconify-demo 2>&1 | sed 's/^/  container: /' >&2
    say "the converted app answers on http://127.0.0.1:8089/"
    echo "$answer"
    exit 0
  fi
  if [ "$(docker inspect -f '{{.State.Running}}' sconify-demo)" != true ]; then break; fi
  sleep 0.5
done
docker logs sconify-demo >&2 || true
echo "the converted container did not answer" >&2
exit 1
