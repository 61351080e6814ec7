#!/usr/bin/env python3
"""Offline validation of the Kubernetes deployment under deploy/kubernetes (run by scripts/validate_deploy.sh).

1. Renders every kustomization (each folder with a kustomization.yaml) with a small renderer that implements only the
   kustomize fields these manifests use: `resources` (files and folders), `namespace`, `labels` (pairs,
   includeTemplates; not includeSelectors) and `patches` given by `path` whose strategic-merge patch is either
   `$patch: delete` or holds maps only (no lists). Any other field is refused. Where `kubectl` is installed, the
   output of `kubectl kustomize` must equal the renderer's.
2. Validates every rendered built-in object, secret.example.yaml and the Kubernetes objects in the YAML blocks of
   the deployment docs with kubernetes-validate's strict schemas (unknown fields are errors), against each version in
   RISKSERVE_K8S_VERSIONS (default: 1.30.0, the oldest these manifests support, and 1.37.0).
3. Validates KEDA ScaledObjects against the pydantic models that cloudcoil.models.keda generates from KEDA's CRDs
   (strict types, required fields, and unknown fields refused by a walk of the input), then what KEDA's scalers
   require of the triggers' metadata; the PromQL query is parsed by promtool where it is installed.
4. Checks cross-references (selectors, autoscaler targets, ports, probes, Secret and ConfigMap keys), the security
   settings, and the ConfigMap's TOML (keys, types, and the serde structs of the Rust source).

Exits 1 with one `FAIL` line per problem.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
DOCS = [ROOT / "docs" / "kubernetes.md", *sorted((DEPLOY / "examples").glob("*.md"))]
SECRET_EXAMPLE = DEPLOY / "base" / "secret.example.yaml"
VERSIONS = os.environ.get("RISKSERVE_K8S_VERSIONS", "1.30.0 1.37.0").split()

# The top-level keys a riskserve.toml may have (docs/server.md; `max_artifact_bytes` is in ServerConfig too).
TOML_KEYS = {
    "listen",
    "data_dir",
    "max_body_bytes",
    "max_artifact_bytes",
    "queue_depth",
    "max_instances",
    "region",
    "account_id",
    "metrics_listen",
    "log_format",
    "autoscaling",
    "prices",
    "auth",
}
# The table keys and the Rust structs (serde, deny_unknown_fields) they are read into.
TOML_TABLES = {"autoscaling": "AutoscalingSettings", "prices": "PriceTable", "auth": "AuthConfig"}

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "CustomResourceDefinition",
    "PersistentVolume",
}
NAMESPACED = {
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "Role",
    "RoleBinding",
    "Ingress",
    "ScaledObject",
    "TriggerAuthentication",
}
WORKLOADS_WITH_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
CRD_GROUPS = {"keda.sh"}

failures: list[str] = []
passed = 0


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL {message}")


def check(condition: bool, message: str) -> bool:
    """Counts a check; prints FAIL with the message when it does not hold."""
    global passed
    if condition:
        passed += 1
    else:
        fail(message)
    return condition


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_documents(path: Path) -> list[dict]:
    try:
        documents = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
    except (OSError, yaml.YAMLError) as error:
        raise RenderError(f"{rel(path)}: cannot read YAML: {error}") from error
    for document in documents:
        if not isinstance(document, dict):
            raise RenderError(f"{rel(path)}: a document is not a mapping")
    return documents


def ident(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{obj.get('kind')}/{meta.get('name')}" + (f" (namespace {namespace})" if namespace else "")


def key(obj: dict) -> tuple:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))


# ---------------------------------------------------------------------------------------------------------------
# 1. The kustomize subset.


class RenderError(Exception):
    pass


KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "patches"}


def render(folder: Path, used: set[Path], stack: tuple[Path, ...] = ()) -> list[dict]:
    """Renders folder/kustomization.yaml as kustomize does for the supported fields; records the files it read."""
    folder = folder.resolve()
    if folder in stack:
        raise RenderError(f"{rel(folder)}: kustomization cycle")
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{rel(folder)}: no kustomization.yaml")
    used.add(path)
    documents = load_documents(path)
    if len(documents) != 1:
        raise RenderError(f"{rel(path)}: expected one document")
    kustomization = documents[0]
    unsupported = set(kustomization) - KUSTOMIZATION_FIELDS
    if unsupported:
        raise RenderError(
            f"{rel(path)}: fields {sorted(unsupported)} are not implemented by scripts/validate_deploy.py's "
            "renderer (supported: resources, namespace, labels, patches)"
        )
    if (
        kustomization.get("apiVersion") != "kustomize.config.k8s.io/v1beta1"
        or kustomization.get("kind") != "Kustomization"
    ):
        raise RenderError(f"{rel(path)}: apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization")

    objects: list[dict] = []
    for entry in kustomization.get("resources") or []:
        target = (folder / entry).resolve()
        if target.is_dir():
            objects += render(target, used, stack + (folder,))
        elif target.is_file():
            used.add(target)
            objects += copy.deepcopy(load_documents(target))
        else:
            raise RenderError(f"{rel(path)}: resource {entry!r} does not exist")

    for entry in kustomization.get("patches") or []:
        if not isinstance(entry, dict) or set(entry) != {"path"}:
            raise RenderError(f"{rel(path)}: only patches given by `path` alone are implemented, got {entry!r}")
        patch_path = (folder / entry["path"]).resolve()
        used.add(patch_path)
        patches = load_documents(patch_path)
        for patch in patches:
            objects = apply_patch(objects, patch, rel(patch_path))

    namespace = kustomization.get("namespace")
    if namespace is not None:
        for obj in objects:
            kind = obj.get("kind")
            meta = obj.setdefault("metadata", {})
            if kind == "Namespace":
                meta["name"] = namespace  # kustomize renames Namespace objects to the kustomization's namespace
            elif kind in CLUSTER_SCOPED:
                continue
            elif kind in NAMESPACED:
                meta["namespace"] = namespace
            else:
                raise RenderError(f"{rel(path)}: the renderer does not know whether {kind} is namespaced")

    for entry in kustomization.get("labels") or []:
        if not isinstance(entry, dict) or not set(entry) <= {"pairs", "includeSelectors", "includeTemplates"}:
            raise RenderError(f"{rel(path)}: labels entry {entry!r}: only pairs, includeSelectors, includeTemplates")
        if entry.get("includeSelectors"):
            raise RenderError(f"{rel(path)}: labels.includeSelectors: true is not implemented (write selectors out)")
        pairs = entry.get("pairs") or {}
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates") and obj.get("kind") in WORKLOADS_WITH_TEMPLATE:
                template = obj.setdefault("spec", {}).setdefault("template", {})
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)

    seen: set[tuple] = set()
    for obj in objects:
        if key(obj) in seen:
            raise RenderError(f"{rel(path)}: {ident(obj)} appears twice")
        seen.add(key(obj))
    return objects


def apply_patch(objects: list[dict], patch: dict, source: str) -> list[dict]:
    """A strategic-merge patch, for the subset where it equals a recursive map merge (no lists) or a delete."""
    name = (patch.get("metadata") or {}).get("name")
    namespace = (patch.get("metadata") or {}).get("namespace")
    if not (patch.get("apiVersion") and patch.get("kind") and name):
        raise RenderError(f"{source}: a patch needs apiVersion, kind and metadata.name")

    def matches(obj: dict) -> bool:
        meta = obj.get("metadata") or {}
        return (
            obj.get("apiVersion") == patch["apiVersion"]
            and obj.get("kind") == patch["kind"]
            and meta.get("name") == name
            and (namespace is None or meta.get("namespace") == namespace)
        )

    targets = [obj for obj in objects if matches(obj)]
    if len(targets) != 1:
        raise RenderError(f"{source}: the patch of {patch['kind']}/{name} matches {len(targets)} objects, not 1")
    body = dict(patch)
    directive = body.pop("$patch", None)
    if directive == "delete":
        return [obj for obj in objects if not matches(obj)]
    if directive is not None:
        raise RenderError(f"{source}: $patch: {directive} is not implemented")

    def merge(into: dict, change: dict, where: str) -> None:
        for field, value in change.items():
            if field.startswith("$"):
                raise RenderError(f"{source}: directive {where}{field} is not implemented")
            if isinstance(value, list):
                raise RenderError(f"{source}: {where}{field} is a list: list merges are not implemented")
            if value is None:
                into.pop(field, None)
            elif isinstance(value, dict) and isinstance(into.get(field), dict):
                merge(into[field], value, f"{where}{field}.")
            else:
                into[field] = copy.deepcopy(value)

    merge(targets[0], body, "")
    return objects


def first_difference(mine, theirs, where: str) -> str | None:
    """The first path where two rendered objects differ, with both values; None when they are equal."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for field in sorted(set(mine) | set(theirs)):
            if field not in mine or field not in theirs:
                return f"{where}{field}: renderer {mine.get(field)!r}, kubectl {theirs.get(field)!r}"
            found = first_difference(mine[field], theirs[field], f"{where}{field}.")
            if found:
                return found
        return None
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for index, (left, right) in enumerate(zip(mine, theirs, strict=True)):
            found = first_difference(left, right, f"{where}{index}.")
            if found:
                return found
        return None
    return None if mine == theirs else f"{where.rstrip('.')}: renderer {mine!r}, kubectl {theirs!r}"


def kubectl_kustomize(folder: Path) -> list[dict] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        fail(f"kubectl kustomize {rel(folder)}: {result.stderr.strip()}")
        return []
    return [document for document in yaml.safe_load_all(result.stdout) if document is not None]


# ---------------------------------------------------------------------------------------------------------------
# 2. Built-in objects against the Kubernetes schemas.


def validate_builtin(obj: dict, where: str) -> None:
    import kubernetes_validate

    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            check(True, "")
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(top level)"
            fail(f"{where}: {ident(obj)} is invalid for Kubernetes {error.version}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            fail(f"{where}: {ident(obj)}: {error.message}")
        except kubernetes_validate.VersionNotSupportedError:
            fail(f"kubernetes-validate {kubernetes_validate.__version__} does not know Kubernetes {version}")


# ---------------------------------------------------------------------------------------------------------------
# 3. KEDA.


def validate_scaled_object(obj: dict, where: str) -> None:
    import pydantic
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    try:
        model = ScaledObject.model_validate(obj, strict=True)
    except pydantic.ValidationError as error:
        for item in error.errors():
            path = ".".join(str(part) for part in item["loc"])
            fail(f"{where}: {ident(obj)} does not match KEDA's ScaledObject schema: {path}: {item['msg']}")
        return
    unknown = unknown_fields(model, obj, "")
    check(not unknown, f"{where}: {ident(obj)} has fields KEDA's ScaledObject does not define: {', '.join(unknown)}")

    spec = obj["spec"]
    check(
        spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100),
        f"{where}: {ident(obj)}: minReplicaCount exceeds maxReplicaCount",
    )
    for index, trigger in enumerate(spec.get("triggers") or []):
        metadata = trigger.get("metadata") or {}
        label = f"{where}: {ident(obj)} trigger {index} ({trigger.get('type')})"
        if trigger.get("type") == "prometheus":
            missing = [field for field in ("serverAddress", "query", "threshold") if not metadata.get(field)]
            check(not missing, f"{label}: KEDA's prometheus scaler requires {missing}")
            check(is_number(metadata.get("threshold")), f"{label}: threshold must be a number (as a string)")
            check(
                re.match(r"^https?://", metadata.get("serverAddress", "")) is not None,
                f"{label}: serverAddress must be an http(s) URL",
            )
            check(
                "riskserve_invocations_per_instance_per_minute" in metadata.get("query", ""),
                f"{label}: the query must use riskserve_invocations_per_instance_per_minute",
            )
            check_promql(metadata.get("query", ""), label)
        elif trigger.get("type") in ("cpu", "memory"):
            check(
                trigger.get("metricType") in ("Utilization", "AverageValue"),
                f"{label}: metricType must be Utilization or AverageValue",
            )
            check(is_number(metadata.get("value")), f"{label}: metadata.value must be a number (as a string)")
        else:
            fail(f"{label}: trigger type not checked by this script")


def unknown_fields(model, raw, where: str) -> list[str]:
    """Fields of raw (the input) that the validated pydantic model has no field for (pydantic drops them)."""
    import pydantic

    found: list[str] = []
    if isinstance(model, pydantic.BaseModel) and isinstance(raw, dict):
        by_key = {}
        for name, field in type(model).model_fields.items():
            by_key[field.alias or name] = name
            by_key[name] = name
        for field, value in raw.items():
            if field not in by_key:
                found.append(f"{where}{field}")
            else:
                found += unknown_fields(getattr(model, by_key[field]), value, f"{where}{field}.")
    elif isinstance(model, pydantic.RootModel):
        found += unknown_fields(model.root, raw, where)
    elif isinstance(model, list) and isinstance(raw, list):
        for index, (item, raw_item) in enumerate(zip(model, raw, strict=False)):
            found += unknown_fields(item, raw_item, f"{where}{index}.")
    elif isinstance(model, dict) and isinstance(raw, dict):
        for field, value in raw.items():
            found += unknown_fields(model.get(field), value, f"{where}{field}.")
    return found


def check_promql(query: str, label: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        print(f"note: promtool is not installed: the PromQL of {label} is not parsed")
        return
    with tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules.yaml"
        rules.write_text(
            yaml.safe_dump({"groups": [{"name": "keda", "rules": [{"record": "riskserve:keda_query", "expr": query}]}]})
        )
        result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    output = " ".join(f"{result.stdout} {result.stderr}".replace(str(rules), "rules.yaml").split())
    check(result.returncode == 0, f"{label}: promtool cannot parse the query: {output}")


def is_number(text) -> bool:
    try:
        float(text)
        return isinstance(text, str)
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------
# 4. Cross-references, security, the TOML file.


def selects(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return False
    return all(labels.get(name) == value for name, value in selector.items())


def container_ports(container: dict) -> dict:
    return {port.get("name"): port.get("containerPort") for port in container.get("ports") or []}


def port_declared(port, ports: dict) -> bool:
    return port in ports if isinstance(port, str) else port in ports.values()


def check_rendered(name: str, objects: list[dict], secret: dict) -> None:
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    where = f"[{name}]"
    deployments = by_kind.get("Deployment", [])
    check(len(deployments) >= 1, f"{where} renders no Deployment")
    namespaces = {obj["metadata"]["name"] for obj in by_kind.get("Namespace", [])}
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if namespace is not None:
            check(namespace in namespaces, f"{where} {ident(obj)} is in a namespace the kustomization does not create")
    config_maps = {
        (obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj for obj in by_kind.get("ConfigMap", [])
    }
    service_accounts = {
        (obj["metadata"].get("namespace"), obj["metadata"]["name"]) for obj in by_kind.get("ServiceAccount", [])
    }
    used_config_keys: set[tuple] = set()
    used_secret_keys: set[str] = set()
    secret_name = secret["metadata"]["name"]
    secret_keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})

    for deployment in deployments:
        label = f"{where} {ident(deployment)}"
        namespace = deployment["metadata"].get("namespace")
        spec = deployment["spec"]
        template = spec["template"]
        pod_labels = template["metadata"].get("labels") or {}
        pod = template["spec"]
        check(
            selects(spec["selector"].get("matchLabels"), pod_labels),
            f"{label}: spec.selector.matchLabels does not match the pod template's labels",
        )
        check(spec.get("replicas", 1) >= 2, f"{label}: fewer than 2 replicas")
        check(
            secret["metadata"].get("namespace") == namespace,
            f"{label}: secret.example.yaml is for namespace {secret['metadata'].get('namespace')!r}, not {namespace!r}",
        )
        account = pod.get("serviceAccountName")
        if account:
            check((namespace, account) in service_accounts, f"{label}: ServiceAccount {account} is not rendered")

        # Services, PDBs, autoscalers that belong to it.
        services = [
            s
            for s in by_kind.get("Service", [])
            if s["metadata"].get("namespace") == namespace and selects(s["spec"].get("selector"), pod_labels)
        ]
        check(len(services) >= 1, f"{label}: no Service selects its pods")
        for service in by_kind.get("Service", []):
            check(
                selects(service["spec"].get("selector"), pod_labels),
                f"{where} {ident(service)}: its selector matches no pod of {ident(deployment)}",
            )
        pdbs = [
            p
            for p in by_kind.get("PodDisruptionBudget", [])
            if p["metadata"].get("namespace") == namespace
            and selects((p["spec"].get("selector") or {}).get("matchLabels"), pod_labels)
        ]
        check(len(pdbs) == 1, f"{label}: {len(pdbs)} PodDisruptionBudgets select its pods, not 1")
        for pdb in pdbs:
            if "maxUnavailable" in pdb["spec"]:
                check(pdb["spec"]["maxUnavailable"] in (1, "1"), f"{where} {ident(pdb)}: maxUnavailable should be 1")
            else:
                check(
                    pdb["spec"].get("minAvailable", 0) < spec.get("replicas", 1),
                    f"{where} {ident(pdb)}: minAvailable leaves no replica to evict",
                )
        autoscalers = []
        for obj in by_kind.get("HorizontalPodAutoscaler", []) + by_kind.get("ScaledObject", []):
            target = obj["spec"]["scaleTargetRef"]
            if (
                obj["metadata"].get("namespace") == namespace
                and target.get("name") == deployment["metadata"]["name"]
                and target.get("kind", "Deployment") == "Deployment"
            ):
                autoscalers.append(obj)
                check(
                    target.get("apiVersion", "apps/v1") == "apps/v1", f"{where} {ident(obj)}: scaleTargetRef.apiVersion"
                )
                low = obj["spec"].get("minReplicas", obj["spec"].get("minReplicaCount", 1))
                high = obj["spec"].get("maxReplicas", obj["spec"].get("maxReplicaCount", 100))
                check(
                    low <= spec.get("replicas", 1) <= high,
                    f"{where} {ident(obj)}: the Deployment's replicas ({spec.get('replicas')}) "
                    f"are outside {low}..{high}",
                )
                check(low >= 2, f"{where} {ident(obj)}: scales below 2 replicas")
        check(
            len(autoscalers) == 1,
            f"{label}: {len(autoscalers)} autoscalers drive it "
            f"({', '.join(ident(a) for a in autoscalers) or 'none'}); KEDA and an HPA must "
            "not both drive one Deployment",
        )
        for obj in by_kind.get("HorizontalPodAutoscaler", []) + by_kind.get("ScaledObject", []):
            names = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in deployments}
            target = obj["spec"]["scaleTargetRef"]
            check(
                (obj["metadata"].get("namespace"), target.get("name")) in names,
                f"{where} {ident(obj)}: scaleTargetRef {target.get('name')} is not a rendered Deployment",
            )

        # Scheduling spread.
        for constraint in pod.get("topologySpreadConstraints") or []:
            check(
                selects((constraint.get("labelSelector") or {}).get("matchLabels"), pod_labels),
                f"{label}: a topologySpreadConstraint's labelSelector does not match its pods",
            )
        for term in ((pod.get("affinity") or {}).get("podAntiAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution"
        ) or []:
            check(
                selects((term["podAffinityTerm"].get("labelSelector") or {}).get("matchLabels"), pod_labels),
                f"{label}: a podAntiAffinity term's labelSelector does not match its pods",
            )
        check(
            bool(pod.get("topologySpreadConstraints") or (pod.get("affinity") or {}).get("podAntiAffinity")),
            f"{label}: no topologySpreadConstraints or podAntiAffinity",
        )

        # Pod security (the namespace enforces the restricted Pod Security Standard).
        pod_security = pod.get("securityContext") or {}
        check(pod_security.get("runAsNonRoot") is True, f"{label}: pod securityContext.runAsNonRoot is not true")
        check(pod_security.get("runAsUser", 1) != 0, f"{label}: runs as user 0")
        check(
            (pod_security.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
            f"{label}: seccompProfile is not RuntimeDefault",
        )
        grace = pod.get("terminationGracePeriodSeconds")
        check(grace == 30, f"{label}: terminationGracePeriodSeconds is {grace}, not 30")
        volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}

        for container in pod["containers"]:
            clabel = f"{label} container {container['name']}"
            ports = container_ports(container)
            check("http" in ports and "metrics" in ports, f"{clabel}: ports named http and metrics are required")
            security = container.get("securityContext") or {}
            check(security.get("allowPrivilegeEscalation") is False, f"{clabel}: allowPrivilegeEscalation is not false")
            check(security.get("readOnlyRootFilesystem") is True, f"{clabel}: readOnlyRootFilesystem is not true")
            check(
                (security.get("capabilities") or {}).get("drop") == ["ALL"], f"{clabel}: capabilities.drop is not [ALL]"
            )
            resources = container.get("resources") or {}
            check({"cpu", "memory"} <= set(resources.get("requests") or {}), f"{clabel}: cpu/memory requests missing")
            check("memory" in (resources.get("limits") or {}), f"{clabel}: memory limit missing")

            # Probes.
            for probe_name, path in (
                ("startupProbe", "/healthz"),
                ("readinessProbe", "/ping"),
                ("livenessProbe", "/healthz"),
            ):
                probe = container.get(probe_name)
                if not check(probe is not None and "httpGet" in probe, f"{clabel}: {probe_name} (httpGet) is missing"):
                    continue
                check(probe["httpGet"].get("path") == path, f"{clabel}: {probe_name} must GET {path}")
                check(
                    port_declared(probe["httpGet"].get("port"), ports),
                    f"{clabel}: {probe_name} port {probe['httpGet'].get('port')!r} is not a declared container port",
                )
                check(
                    ports.get("http") is not None and probe["httpGet"].get("port") in ("http", ports.get("http")),
                    f"{clabel}: {probe_name} must probe the http port",
                )
            pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
            sleep = (pre_stop.get("sleep") or {}).get("seconds")
            check(
                isinstance(sleep, int) and 0 < sleep < (grace or 30),
                f"{clabel}: preStop must sleep a few seconds, within terminationGracePeriodSeconds",
            )

            # Services' target ports.
            for service in services:
                for port in service["spec"].get("ports") or []:
                    check(
                        port_declared(port.get("targetPort", port.get("port")), ports),
                        f"{where} {ident(service)} port {port.get('name')}: targetPort {port.get('targetPort')!r} "
                        f"is not a port of {clabel}",
                    )
            service_targets = {
                port.get("targetPort") for service in services for port in service["spec"].get("ports") or []
            }
            check(
                {"http", "metrics"} <= service_targets, f"{label}: the Service must expose the http and metrics ports"
            )

            # Environment.
            env = {item["name"]: item for item in container.get("env") or []}
            listen = (env.get("RISKSERVE_LISTEN") or {}).get("value", "")
            check(
                listen == f"0.0.0.0:{ports.get('http')}",
                f"{clabel}: RISKSERVE_LISTEN is {listen!r}, not 0.0.0.0:{ports.get('http')} (the http port)",
            )
            for required in ("RISKSERVE_STORE", "RISKSERVE_ARTIFACTS", "RISKSERVE_MASTER_KEY", "AWS_REGION"):
                check(required in env, f"{clabel}: {required} is not set (the deployment needs PostgreSQL and S3)")
            check("RISKSERVE_DATA_DIR" not in env, f"{clabel}: RISKSERVE_DATA_DIR would keep state in the pod")
            for name_, item in env.items():
                source = item.get("valueFrom") or {}
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    check(
                        ref.get("name") == secret_name,
                        f"{clabel}: env {name_} reads Secret {ref.get('name')!r}, "
                        f"not {secret_name!r} (secret.example.yaml)",
                    )
                    check(
                        ref.get("key") in secret_keys or ref.get("optional") is True,
                        f"{clabel}: env {name_} reads key {ref.get('key')!r}, which secret.example.yaml does not have",
                    )
                    used_secret_keys.add(ref.get("key"))
                    check(item.get("value") is None, f"{clabel}: env {name_} has both value and valueFrom")
                elif "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    config_map = config_maps.get((namespace, ref.get("name")))
                    if not check(
                        config_map is not None,
                        f"{clabel}: env {name_} reads ConfigMap {ref.get('name')!r}, which is not rendered",
                    ):
                        continue
                    present = ref.get("key") in (config_map.get("data") or {})
                    check(
                        present or ref.get("optional") is True,
                        f"{clabel}: env {name_} reads key {ref.get('key')!r}, which {ident(config_map)} does not have",
                    )
                    if not present:
                        print(
                            f"note: {where} env {name_}: optional key {ref.get('key')} is absent "
                            "(so the variable is unset)"
                        )
                    used_config_keys.add((ref.get("name"), ref.get("key")))
                elif source:
                    fail(f"{clabel}: env {name_}: valueFrom {sorted(source)} is not checked by this script")

            # Volumes: the TOML file from the ConfigMap, /tmp writable.
            mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts") or []}
            for mount in mounts.values():
                check(mount["name"] in volumes, f"{clabel}: volumeMount {mount['name']} has no volume")
            tmp = mounts.get("/tmp")
            check(tmp is not None and "emptyDir" in volumes.get(tmp["name"], {}), f"{clabel}: /tmp is not an emptyDir")
            config_file = None
            args = container.get("args") or []
            if "--config" in args and args.index("--config") + 1 < len(args):
                config_file = args[args.index("--config") + 1]
            if not check(config_file is not None, f"{clabel}: riskserve serve is not given --config"):
                continue
            directory, file_name = config_file.rsplit("/", 1)
            mount = mounts.get(directory)
            if not check(
                mount is not None and "configMap" in volumes.get(mount["name"], {}),
                f"{clabel}: {directory} (of --config {config_file}) is not mounted from a ConfigMap",
            ):
                continue
            volume = volumes[mount["name"]]["configMap"]
            config_map = config_maps.get((namespace, volume.get("name")))
            if not check(
                config_map is not None,
                f"{clabel}: the config volume's ConfigMap {volume.get('name')!r} is not rendered",
            ):
                continue
            items = {item["path"]: item["key"] for item in volume.get("items") or []} or {
                k: k for k in config_map.get("data") or {}
            }
            config_key = items.get(file_name)
            if not check(
                config_key in (config_map.get("data") or {}),
                f"{clabel}: {config_file} maps to no key of {ident(config_map)}",
            ):
                continue
            for item_key in items.values():
                used_config_keys.add((volume.get("name"), item_key))
            check_toml(
                config_map["data"][config_key], f"{where} {ident(config_map)} key {config_key}", ports, mounts, volumes
            )

    for config_map in config_maps.values():
        for data_key in config_map.get("data") or {}:
            check(
                (config_map["metadata"]["name"], data_key) in used_config_keys,
                f"{where} {ident(config_map)}: key {data_key} is used by no container",
            )
    for secret_key in secret_keys:
        check(secret_key in used_secret_keys, f"{where} secret.example.yaml: key {secret_key} is used by no container")


def socket_address(text) -> tuple[str, int] | None:
    if not isinstance(text, str) or ":" not in text:
        return None
    host, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        port_number = int(port)
    except ValueError:
        return None
    return (host, port_number) if 0 < port_number < 65536 else None


def rust_struct_fields(name: str) -> set[str] | None:
    """The serde field names of `pub struct name` in the crates' sources (#[serde(skip)] fields left out)."""
    pattern = re.compile(r"pub struct " + re.escape(name) + r"\s*\{(.*?)\n\}", re.S)
    for path in sorted((ROOT / "crates").glob("*/src/**/*.rs")):
        match = pattern.search(path.read_text())
        if match:
            fields, skip = set(), False
            for line in match.group(1).splitlines():
                line = line.strip()
                if line.startswith("#[serde(") and "skip" in line:
                    skip = True
                field = re.match(r"pub (\w+):", line)
                if field:
                    if not skip:
                        fields.add(field.group(1))
                    skip = False
            return fields
    return None


def check_toml(text: str, where: str, ports: dict, mounts: dict, volumes: dict) -> None:
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        fail(f"{where}: the TOML does not parse: {error}")
        return
    check(True, "")
    unknown = set(config) - TOML_KEYS
    check(not unknown, f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(TOML_KEYS)})")
    server_fields = rust_struct_fields("ServerConfig")
    if check(server_fields is not None, "cannot find `pub struct ServerConfig` under crates/ to check the TOML keys"):
        check(
            set(config) <= server_fields,
            f"{where}: keys {sorted(set(config) - server_fields)} are not fields of ServerConfig (deny_unknown_fields)",
        )
    for table, struct in TOML_TABLES.items():
        if table not in config:
            continue
        if not check(isinstance(config[table], dict), f"{where}: {table} must be a table"):
            continue
        fields = rust_struct_fields(struct)
        if check(fields is not None, f"cannot find `pub struct {struct}` under crates/ to check [{table}]"):
            check(
                set(config[table]) <= fields,
                f"{where}: [{table}] keys {sorted(set(config[table]) - fields)} are not fields of {struct}",
            )

    for field in ("max_body_bytes", "max_artifact_bytes", "queue_depth", "max_instances"):
        if field in config:
            check(isinstance(config[field], int) and config[field] >= 1, f"{where}: {field} must be an integer ≥ 1")
    if "account_id" in config:
        check(
            re.fullmatch(r"\d{12}", str(config["account_id"])) is not None and isinstance(config["account_id"], str),
            f"{where}: account_id must be a string of twelve digits",
        )
    if "region" in config:
        check(isinstance(config["region"], str) and config["region"] != "", f"{where}: region must be a string")
    if "listen" in config:
        check(
            socket_address(config["listen"]) == ("0.0.0.0", ports.get("http")),
            f"{where}: listen {config['listen']!r} is not 0.0.0.0 on the http port",
        )
    check(config.get("log_format") in ("text", "json"), f'{where}: log_format must be "text" or "json"')
    metrics = socket_address(config.get("metrics_listen"))
    check(
        metrics is not None and metrics[0] == "0.0.0.0" and metrics[1] == ports.get("metrics"),
        f"{where}: metrics_listen {config.get('metrics_listen')!r} must be 0.0.0.0 on the container's metrics port "
        f"({ports.get('metrics')})",
    )
    data_dir = config.get("data_dir")
    writable = [path for path, mount in mounts.items() if "emptyDir" in volumes.get(mount["name"], {})]
    check(
        isinstance(data_dir, str)
        and any(data_dir == path or data_dir.startswith(path.rstrip("/") + "/") for path in writable),
        f"{where}: data_dir {data_dir!r} is not on a writable (emptyDir) mount: the root filesystem is read-only",
    )
    autoscaling = config.get("autoscaling") or {}
    for field, low, high in (("interval_seconds", 0.01, 3600), ("window_seconds", 0.1, 3600)):
        if field in autoscaling:
            check(
                isinstance(autoscaling[field], (int, float)) and low <= autoscaling[field] <= high,
                f"{where}: autoscaling.{field} must be {low} to {high}",
            )
    if "tolerance" in autoscaling:
        check(
            isinstance(autoscaling["tolerance"], float) and 0 <= autoscaling["tolerance"] < 0.5,
            f"{where}: autoscaling.tolerance must be a float in [0, 0.5)",
        )
    prices = config.get("prices") or {}
    for field in ("instance_hour", "million_invocations"):
        if field in prices:
            check(
                isinstance(prices[field], float) and prices[field] >= 0, f"{where}: prices.{field} must be a float ≥ 0"
            )
    auth = config.get("auth") or {}
    check(
        auth.get("insecure_disable_for_benchmark", False) is False,
        f"{where}: auth.insecure_disable_for_benchmark must not be set in a deployment",
    )
    check(
        "master_key_file" not in auth, f"{where}: auth.master_key_file: the master key comes from RISKSERVE_MASTER_KEY"
    )


def check_secret_example(secret: dict) -> None:
    where = rel(SECRET_EXAMPLE)
    check(secret.get("kind") == "Secret" and secret.get("type") == "Opaque", f"{where}: must be an Opaque Secret")
    check("data" not in secret, f"{where}: use stringData (readable placeholders), not data")
    values = secret.get("stringData") or {}
    for name in (
        "RISKSERVE_STORE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "RISKSERVE_ADMIN_TOKEN",
        "RISKSERVE_ADMIN_ACCESS_KEY_ID",
        "RISKSERVE_ADMIN_SECRET_ACCESS_KEY",
        "RISKSERVE_MASTER_KEY",
    ):
        check(name in values, f"{where}: key {name} is missing")
    for name, value in values.items():
        check(isinstance(value, str) and "CHANGE_ME" in value, f"{where}: {name} is not a CHANGE_ME placeholder")
    check(
        str(values.get("RISKSERVE_STORE", "")).startswith("postgres://"),
        f"{where}: RISKSERVE_STORE must be a postgres:// URL",
    )
    # Placeholders the server refuses, so that an unedited copy cannot start.
    check(
        re.fullmatch(r"[0-9a-fA-F]{64}", str(values.get("RISKSERVE_MASTER_KEY", ""))) is None,
        f"{where}: the RISKSERVE_MASTER_KEY placeholder must not be a usable key",
    )
    for name in ("RISKSERVE_ADMIN_TOKEN", "RISKSERVE_ADMIN_ACCESS_KEY_ID", "RISKSERVE_ADMIN_SECRET_ACCESS_KEY"):
        check(
            " " in str(values.get(name, " ")),
            f"{where}: the {name} placeholder must contain a space (refused by the server)",
        )


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if current is None and line.strip() == "```yaml":
            current, start = [], number
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


# ---------------------------------------------------------------------------------------------------------------


def main() -> int:
    import kubernetes_validate

    print(f"kubernetes-validate {kubernetes_validate.__version__}, strict schemas of Kubernetes {', '.join(VERSIONS)}")
    try:
        secret = load_documents(SECRET_EXAMPLE)[0]
    except (RenderError, IndexError) as error:
        fail(f"{rel(SECRET_EXAMPLE)}: {error}")
        return finish()
    check_secret_example(secret)
    validate_builtin(secret, rel(SECRET_EXAMPLE))

    folders = sorted(path.parent for path in DEPLOY.rglob("kustomization.yaml"))
    check(len(folders) >= 2, f"expected kustomizations under {rel(DEPLOY)}")
    used: set[Path] = {SECRET_EXAMPLE.resolve()}
    kubectl_note = shutil.which("kubectl") is None
    rendered_all = True
    for folder in folders:
        name = rel(folder)
        try:
            objects = render(folder, used)
        except RenderError as error:
            fail(f"[{name}] cannot render: {error}")
            rendered_all = False
            continue
        print(f"[{name}] {len(objects)} objects: {', '.join(ident(obj) for obj in objects)}")
        reference = kubectl_kustomize(folder)
        if reference:
            mine = {key(obj): obj for obj in objects}
            theirs = {key(obj): obj for obj in reference}
            check(
                set(mine) == set(theirs),
                f"[{name}] kubectl kustomize renders {sorted(map(str, set(theirs) - set(mine)))} "
                f"that the renderer does not, and the renderer {sorted(map(str, set(mine) - set(theirs)))}",
            )
            for item in set(mine) & set(theirs):
                difference = first_difference(mine[item], theirs[item], "")
                check(
                    difference is None,
                    f"[{name}] {ident(mine[item])} differs from kubectl kustomize's output at {difference}",
                )
        for obj in objects:
            group = obj.get("apiVersion", "").split("/")[0] if "/" in obj.get("apiVersion", "") else ""
            if group in CRD_GROUPS:
                if obj.get("kind") == "ScaledObject":
                    validate_scaled_object(obj, f"[{name}]")
                else:
                    fail(f"[{name}] {ident(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
            else:
                validate_builtin(obj, f"[{name}]")
        check_rendered(name, objects, secret)
    if kubectl_note:
        print("note: kubectl is not installed: the renderer's output is not compared with kubectl kustomize")
    else:
        print("kubectl kustomize's output compared with the renderer's")

    if rendered_all:  # after a failed render the files it would have read are unknown
        for path in sorted(DEPLOY.rglob("*.y*ml")):
            check(path.resolve() in used, f"{rel(path)} is used by no kustomization (resource or patch)")

    for doc in DOCS:
        if not check(doc.is_file(), f"{rel(doc)} is missing"):
            continue
        for line, block in yaml_blocks(doc):
            try:
                documents = [document for document in yaml.safe_load_all(block) if document is not None]
            except yaml.YAMLError as error:
                fail(f"{rel(doc)}:{line}: the YAML block does not parse: {error}")
                continue
            for document in documents:
                if not isinstance(document, dict) or "kind" not in document:
                    continue
                if document.get("apiVersion", "").startswith("kustomize.config.k8s.io/"):
                    unsupported = set(document) - KUSTOMIZATION_FIELDS
                    check(
                        not unsupported,
                        f"{rel(doc)}:{line}: kustomization fields {sorted(unsupported)} are not "
                        "implemented by the renderer",
                    )
                    continue
                if (
                    document.get("kind") == "Secret"
                    and (document.get("metadata") or {}).get("name") == secret["metadata"]["name"]
                ):
                    check(
                        set(document.get("stringData") or {}) == set(secret.get("stringData") or {}),
                        f"{rel(doc)}:{line}: the example Secret's keys differ from secret.example.yaml's",
                    )
                validate_builtin(document, f"{rel(doc)}:{line}")
    return finish()


def finish() -> int:
    if failures:
        print(f"validate_deploy: {passed} passed, {len(failures)} failed")
        print(f"deploy/kubernetes is INVALID: {len(failures)} problem(s), listed above as FAIL lines", file=sys.stderr)
        return 1
    print(f"validate_deploy: {passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
