#!/usr/bin/env bash
# Validates the Kubernetes deployment (deploy/kubernetes) offline: renders every kustomization, validates each object
# against the Kubernetes schemas that kubernetes-validate bundles (strict) and the ScaledObject against KEDA's CRD
# models, and checks the cross-references, the security settings and the ConfigMap's riskserve.toml. Creates or
# updates the virtual environment of the pinned scripts/requirements-deploy.txt; the checks are in
# scripts/validate_deploy.py. Kubernetes versions: RISKSERVE_K8S_VERSIONS (default "1.30.0 1.37.0").
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RISKSERVE_DEPLOY_VENV:-$HOME/.cache/riskserve/venv-deploy}"
requirements=scripts/requirements-deploy.txt

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "validate_deploy: python3 is $(python3 --version 2>&1); 3.11 or later is needed (tomllib)" >&2
    exit 1
fi

source scripts/venv.sh
ensure_venv "$venv" "$requirements" deploy

echo "== deploy/kubernetes (scripts/validate_deploy.py)"
exec "$venv/bin/python" scripts/validate_deploy.py "$@"
