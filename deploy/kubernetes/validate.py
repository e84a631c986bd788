"""Offline validation of deploy/kubernetes/ (run through validate.sh, which provides the venv).

1. Schema: every built-in resource against the Kubernetes OpenAPI schemas bundled with the
   kubernetes-validate package, in strict mode (unknown fields fail), for each Kubernetes
   version in K8S_VERSIONS; the CloudNativePG Cluster against schemas/cnpg-cluster-v1.json
   (a subset of the operator's CRD: kubernetes-validate has no CRD schemas). A kind with no
   schema is an error, never silently skipped.
2. kustomization.yaml: every resource it lists exists, every manifest here is listed, the
   image it rewrites is the one the pods use.
3. Consistency and policy: references between objects (Secret/ConfigMap names and keys,
   Service/PDB selectors, HPA target, the database Services CloudNativePG creates), ConfigMap
   keys documented in deploy/cidgate.env.example, and the pod hardening this project promises
   (non-root, read-only root, no capabilities, RuntimeDefault seccomp, resources, probes).
4. Exposure (exposure.py): the gateway trusts only a proxy tier's addresses (CIDGATE_TRUSTED_PROXIES:
   private, no wider than a /24 or an IPv6 /112), a NetworkPolicy admits traffic to its
   pods only from named pods of named namespaces (the ingress controller, Prometheus) on
   its port, and no access log writes a lookup token or a /pop/ link: the Ingress turns the
   controller's access log off, and ingress-nginx/logging.yaml (the format to use instead)
   has no query string and cuts /pop/ paths.

`--self-test` first checks that broken copies of the manifests are rejected.
Exit status: 0 valid, 1 invalid, 2 usage or environment error.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kv

from exposure import NGINX_LOGGING, check_exposure

HERE = Path(__file__).resolve().parent
ENV_EXAMPLE = HERE.parent / "cidgate.env.example"
CNPG_SCHEMA = HERE / "schemas" / "cnpg-cluster-v1.json"
K8S_VERSIONS = os.environ.get("K8S_VERSIONS", "1.29.0 1.37.0").split()
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")


def load_manifests(directory: Path, report: Report) -> tuple[dict, list[tuple[str, dict]]]:
    kustomization_path = directory / "kustomization.yaml"
    if not kustomization_path.is_file():
        report.error("kustomization.yaml", "missing")
        return {}, []
    kustomization = yaml.safe_load(kustomization_path.read_text()) or {}
    docs: list[tuple[str, dict]] = []
    for path in sorted(directory.glob("*.y*ml")):
        if path.name == "kustomization.yaml":
            continue
        try:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    docs.append((path.name, doc))
        except yaml.YAMLError as e:
            report.error(path.name, f"not YAML: {e}")
    return kustomization, docs


def name_of(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def check_schemas(docs: list[tuple[str, dict]], report: Report) -> None:
    cnpg_schema = json.loads(CNPG_SCHEMA.read_text())
    cnpg_validator = jsonschema.Draft202012Validator(cnpg_schema)
    for filename, doc in docs:
        where = f"{filename} {name_of(doc)}"
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            report.error(filename, "a document without apiVersion/kind")
            continue
        if doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            if (doc["apiVersion"], doc["kind"]) != ("postgresql.cnpg.io/v1", "Cluster"):
                report.error(where, "no local schema for this CloudNativePG kind")
                continue
            for e in sorted(cnpg_validator.iter_errors(doc), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in e.path)
                report.error(where, f"CloudNativePG schema: {path}: {e.message}")
            continue
        for version in K8S_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                report.error(where, f"Kubernetes {version} schema: {path}: {e.message}")
            except kv.SchemaNotFoundError as e:
                report.error(where, e.message)
            except kv.VersionNotSupportedError as e:
                report.error(where, e.message)


def check_kustomization(kustomization: dict, docs: list[tuple[str, dict]], directory: Path, report: Report) -> None:
    where = "kustomization.yaml"
    if kustomization.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or kustomization.get("kind") != "Kustomization":
        report.error(where, "apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization")
    listed = kustomization.get("resources") or []
    for resource in listed:
        if not (directory / resource).is_file():
            report.error(where, f"lists {resource}, which does not exist")
    files = sorted({filename for filename, _ in docs})
    for filename in files:
        if filename not in listed:
            report.error(where, f"does not list {filename}")
    if len(set(listed)) != len(listed):
        report.error(where, "lists a resource twice")
    if "commonLabels" in kustomization:
        report.error(where, "commonLabels rewrites selectors (immutable on Deployments); use labels with includeSelectors: false")
    image_names = {i.get("name") for i in kustomization.get("images") or []}
    for filename, doc in docs:
        for container in containers_of(doc):
            image = container.get("image", "")
            base = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
            if base not in image_names:
                report.error(f"{filename} {name_of(doc)}", f"image {image} is not rewritten by kustomization.yaml images")


def pod_spec_of(doc: dict) -> dict | None:
    if doc.get("kind") in POD_KINDS:
        return (((doc.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return None


def containers_of(doc: dict) -> list[dict]:
    spec = pod_spec_of(doc)
    if spec is None:
        return []
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def documented_settings() -> set[str]:
    text = ENV_EXAMPLE.read_text()
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def check_policy(docs: list[tuple[str, dict]], report: Report) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc.get("kind", ""), {})[(doc.get("metadata") or {}).get("name", "")] = doc
    secrets = by_kind.get("Secret", {})
    configmaps = by_kind.get("ConfigMap", {})
    clusters = by_kind.get("Cluster", {})
    deployments = by_kind.get("Deployment", {})
    settings = documented_settings()

    for filename, doc in docs:
        where = f"{filename} {name_of(doc)}"
        kind = doc.get("kind")
        spec = doc.get("spec") or {}

        if kind == "ConfigMap":
            for key in (doc.get("data") or {}):
                if key not in settings:
                    report.error(where, f"{key} is not a setting documented in deploy/cidgate.env.example")

        if kind == "Cluster":
            secret_name = (((spec.get("bootstrap") or {}).get("initdb") or {}).get("secret") or {}).get("name")
            secret = secrets.get(secret_name)
            if secret is None:
                report.error(where, f"bootstrap secret {secret_name} is not among the manifests")
            elif secret.get("type") != "kubernetes.io/basic-auth":
                report.error(where, f"bootstrap secret {secret_name} must be of type kubernetes.io/basic-auth")
            elif (secret.get("stringData") or {}).get("username") != ((spec.get("bootstrap") or {}).get("initdb") or {}).get("owner"):
                report.error(where, "the bootstrap secret's username must be the database owner")

        pod = pod_spec_of(doc)
        if pod is not None:
            check_pod(where, kind, pod, secrets, configmaps, clusters, report)

        if kind == "Service":
            selector = spec.get("selector") or {}
            if not any(matches(selector, pod_labels(d)) for d in deployments.values()):
                report.error(where, f"selector {selector} matches no Deployment's pods")
        if kind == "PodDisruptionBudget":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            if not any(matches(selector, pod_labels(d)) for d in deployments.values()):
                report.error(where, f"selector {selector} matches no Deployment's pods")
        if kind == "HorizontalPodAutoscaler":
            target = spec.get("scaleTargetRef") or {}
            if target.get("kind") != "Deployment" or target.get("name") not in deployments:
                report.error(where, f"scaleTargetRef {target} is not a Deployment among the manifests")
            deployment = deployments.get(target.get("name"), {})
            bounds = (spec.get("minReplicas", 1), (deployment.get("spec") or {}).get("replicas", 1), spec.get("maxReplicas", 0))
            if not all(isinstance(b, int) for b in bounds) or not bounds[0] <= bounds[1] <= bounds[2]:
                report.error(where, "the Deployment's replicas lie outside minReplicas..maxReplicas")

    for name, deployment in deployments.items():
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not matches(selector, pod_labels(deployment)):
            report.error(f"Deployment/{name}", "selector does not match its own pod template labels")
        for other_kind in ("Job",):
            for other in by_kind.get(other_kind, {}).values():
                if selector and matches(selector, pod_labels(other)):
                    report.error(f"Deployment/{name}", f"selector also matches the pods of {name_of(other)}")


def pod_labels(doc: dict) -> dict:
    return ((((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_pod(where, kind, pod, secrets, configmaps, clusters, report) -> None:
    pod_sc = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        report.error(where, "automountServiceAccountToken must be false (cidgate never talks to the API server)")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        report.error(where, "pod securityContext.seccompProfile.type must be RuntimeDefault")
    if pod_sc.get("runAsNonRoot") is not True:
        report.error(where, "pod securityContext.runAsNonRoot must be true")
    for c in list(pod.get("initContainers") or []) + list(pod.get("containers") or []):
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            report.error(cw, "securityContext.readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            report.error(cw, "securityContext.allowPrivilegeEscalation must be false")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"] or (sc.get("capabilities") or {}).get("add"):
            report.error(cw, "securityContext.capabilities must drop ALL and add none")
        if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0:
            report.error(cw, "must not run as root")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    report.error(cw, f"resources.{part}.{r} must be set")
        env = {e.get("name"): e for e in c.get("env") or []}
        for e in env.values():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = secrets.get(ref.get("name"))
                data = {**((secret or {}).get("stringData") or {}), **((secret or {}).get("data") or {})}
                if secret is None or ref.get("key") not in data:
                    report.error(cw, f"env {e.get('name')}: secret {ref.get('name')} key {ref.get('key')} not among the manifests")
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and ref.get("key") not in ((configmaps.get(ref.get("name")) or {}).get("data") or {}):
                report.error(cw, f"env {e.get('name')}: configmap key {ref.get('name')}/{ref.get('key')} not among the manifests")
        for source in c.get("envFrom") or []:
            for ref_kind, pool in (("configMapRef", configmaps), ("secretRef", secrets)):
                ref = source.get(ref_kind)
                if ref and ref.get("name") not in pool:
                    report.error(cw, f"envFrom {ref_kind} {ref.get('name')} not among the manifests")
        for var, suffix in (("DATABASE_URL", "-rw"), ("DATABASE_READ_URL", "-ro")):
            value = (env.get(var) or {}).get("value")
            if value is None:
                continue
            host = re.sub(r"^[a-z]+://([^@]*@)?([^:/]+).*$", r"\2", value)
            if not any(host == f"{name}{suffix}" for name in clusters):
                report.error(cw, f"{var} must point at a CloudNativePG {suffix} Service, not {host}")
        if "DATABASE_URL" not in env and kind in ("Deployment", "Job"):
            report.error(cw, "DATABASE_URL is not set")
        if kind == "Deployment":
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                if got != path:
                    report.error(cw, f"{probe} must GET {path} (got {got})")


def validate(directory: Path) -> tuple[Report, list[tuple[str, dict]]]:
    report = Report()
    kustomization, docs = load_manifests(directory, report)
    check_schemas(docs, report)
    check_kustomization(kustomization, docs, directory, report)
    try:
        check_policy(docs, report)
        check_exposure(directory, docs, report, K8S_VERSIONS)
    except (AttributeError, KeyError, TypeError, IndexError, ValueError) as e:
        # Only reachable with manifests the schemas already reject.
        report.error("policy checks", f"could not run on malformed manifests: {e!r}")
    return report, docs


def self_test(directory: Path) -> list[str]:
    """Broken variants of the real manifests must each be rejected."""
    import tempfile

    def set_path(doc, path, value):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    container = ["spec", "template", "spec", "containers", 0]
    cases = [
        ("replicas is a string", "deployment.yaml", lambda d: set_path(d, ["spec", "replicas"], "three")),
        ("misspelt field", "deployment.yaml", lambda d: set_path(d, ["spec", "replicaz"], 3)),
        ("writable root", "deployment.yaml", lambda d: set_path(d, container + ["securityContext", "readOnlyRootFilesystem"], False)),
        ("readiness on /healthz", "deployment.yaml", lambda d: set_path(d, container + ["readinessProbe", "httpGet", "path"], "/healthz")),
        ("HPA v2 field from v1", "hpa.yaml", lambda d: set_path(d, ["spec", "targetCPUUtilizationPercentage"], 70)),
        ("CNPG misspelt field", "postgres-cluster.yaml", lambda d: set_path(d, ["spec", "instance"], 3)),
        ("CNPG numeric parameter", "postgres-cluster.yaml", lambda d: set_path(d, ["spec", "postgresql", "parameters", "max_connections"], 300)),
        ("undocumented setting", "configmap.yaml", lambda d: set_path(d, ["data", "CIDGATE_NO_SUCH_SETTING"], "1")),
        ("Service selects nothing", "service.yaml", lambda d: set_path(d, ["spec", "selector"], {"app": "other"})),
        ("trusts the whole pod network", "configmap.yaml", lambda d: set_path(d, ["data", "CIDGATE_TRUSTED_PROXIES"], "10.0.0.0/8")),
        ("trusts a public range", "configmap.yaml", lambda d: set_path(d, ["data", "CIDGATE_TRUSTED_PROXIES"], "10.0.255.0/28,8.8.8.0/28")),
        ("trusts no proxy", "configmap.yaml", lambda d: d["data"].pop("CIDGATE_TRUSTED_PROXIES")),
        ("NetworkPolicy admits every source", "networkpolicy.yaml", lambda d: set_path(d, ["spec", "ingress", 0], {"ports": [{"port": "http"}]})),
        ("NetworkPolicy admits a whole namespace", "networkpolicy.yaml", lambda d: d["spec"]["ingress"][0]["from"][0].pop("podSelector")),
        ("NetworkPolicy selects other pods", "networkpolicy.yaml", lambda d: set_path(d, ["spec", "podSelector", "matchLabels"], {"app": "other"})),
        ("access log logs $request", str(NGINX_LOGGING), lambda d: set_path(d, ["data", "log-format-upstream"], '$remote_addr "$request" $status')),
        ("access log logs the token parameter", str(NGINX_LOGGING), lambda d: set_path(d, ["data", "log-format-upstream"], "$remote_addr $cidgate_log_path $arg_token")),
        ("access log keeps /pop/ links", str(NGINX_LOGGING), lambda d: set_path(d, ["data", "http-snippet"], "map $uri $cidgate_log_path {\n  default $uri;\n}\n")),
    ]
    failures = []
    for label, filename, fn in cases:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            for path in list(directory.glob("*.y*ml")) + list(directory.glob("ingress-nginx/*.y*ml")):
                relative = path.relative_to(directory)
                text = path.read_text()
                if str(relative) == filename:
                    docs = [d for d in yaml.safe_load_all(text) if d]
                    fn(docs[0])
                    text = yaml.safe_dump_all(docs, sort_keys=False)
                (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / relative).write_text(text)
            report, _ = validate(tmp_path)
            if not report.errors:
                failures.append(f"self-test: a manifest with '{label}' ({filename}) was accepted")
    return failures


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    directory = Path(args[0]).resolve() if args else HERE
    if "--self-test" in argv:
        failures = self_test(directory)
        for f in failures:
            print(f"ERROR {f}")
        if failures:
            return 1
        print("self-test: every broken manifest was rejected")
    report, docs = validate(directory)
    for e in report.errors:
        print(f"ERROR {e}")
    resources = len(docs)
    if report.errors:
        print(f"manifests: {len(report.errors)} errors in {resources} resources (Kubernetes {', '.join(K8S_VERSIONS)})")
        return 1
    print(f"manifests: {resources} resources valid against Kubernetes {', '.join(K8S_VERSIONS)} schemas (strict), CloudNativePG Cluster subset schema, kustomization, policy and exposure checks (trusted proxies, NetworkPolicy, access logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
