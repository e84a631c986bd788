"""Exposure checks of deploy/kubernetes/ (imported by validate.py): the gateway trusts only
a proxy tier's addresses, a NetworkPolicy admits traffic to its pods only from named pods
of named namespaces on its port, and no access log writes a lookup token or a /pop/ link.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

NGINX_LOGGING = Path("ingress-nginx") / "logging.yaml"
# The narrowest network a trusted proxy tier plausibly needs; anything wider trusts a network.
TRUSTED_MAX = {4: 24, 6: 112}
# nginx variables that hold the query string, the raw path (a /pop/ link), or a credential.
NGINX_SECRET_VARIABLES = {
    "request", "request_uri", "query_string", "args", "is_args", "uri", "document_uri",
    "request_body", "http_referer", "http_authorization", "http_cookie",
}


def pod_labels(doc: dict) -> dict:
    return ((((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def name_of(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def check_trusted_proxies(where: str, value, report) -> None:
    if not isinstance(value, str) or not value.strip():
        report.error(where, "CIDGATE_TRUSTED_PROXIES must name the ingress controller's addresses")
        return
    for part in value.split(","):
        try:
            network = ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            report.error(where, f"CIDGATE_TRUSTED_PROXIES: {part.strip()!r} is not a network")
            continue
        widest = TRUSTED_MAX[network.version]
        if not network.is_private:
            report.error(where, f"CIDGATE_TRUSTED_PROXIES: {network} is not a private range")
        if network.prefixlen < widest:
            report.error(where, f"CIDGATE_TRUSTED_PROXIES: {network} is wider than a /{widest}: trust the ingress controller's addresses, not a network")


def check_network_policy(docs: list[tuple[str, dict]], report) -> None:
    gateways = [d for _, d in docs if d.get("kind") == "Deployment"]
    policies = [(f, d) for f, d in docs if d.get("kind") == "NetworkPolicy"]
    for deployment in gateways:
        labels = pod_labels(deployment)
        guarding = [(f, p) for f, p in policies if matches(((p.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}, labels)]
        if not guarding:
            report.error(name_of(deployment), "no NetworkPolicy selects its pods: any pod in the cluster could reach them (and pose as the proxy)")
        ports = {p.get("name") for c in ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", []) for p in c.get("ports") or []}
        ports |= {p.get("containerPort") for c in ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", []) for p in c.get("ports") or []}
        for filename, policy in guarding:
            where = f"{filename} {name_of(policy)}"
            spec = policy.get("spec") or {}
            if "Ingress" not in (spec.get("policyTypes") or []):
                report.error(where, "policyTypes must include Ingress")
            rules = spec.get("ingress")
            if not rules:
                report.error(where, "admits nothing: the ingress controller must be let in")
            for n, rule in enumerate(rules or []):
                peers = rule.get("from") or []
                if not peers:
                    report.error(where, f"ingress rule {n} admits every source")
                for peer in peers:
                    if "ipBlock" in peer:
                        report.error(where, f"ingress rule {n}: an ipBlock admits addresses, not the ingress controller's pods")
                        continue
                    namespaces = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    if not namespaces or not pods:
                        report.error(where, f"ingress rule {n}: a peer must name both its namespace and its pods by labels")
                rule_ports = rule.get("ports") or []
                if not rule_ports:
                    report.error(where, f"ingress rule {n} admits every port")
                for port in rule_ports:
                    if port.get("port") not in ports:
                        report.error(where, f"ingress rule {n}: port {port.get('port')} is not the gateway's")


def check_access_logs(directory: Path, docs: list[tuple[str, dict]], report, versions: list[str]) -> None:
    logging_path = directory / NGINX_LOGGING
    if not logging_path.is_file():
        report.error(str(NGINX_LOGGING), "missing")
        return
    where = str(NGINX_LOGGING)
    try:
        doc = yaml.safe_load(logging_path.read_text()) or {}
    except yaml.YAMLError as e:
        report.error(where, f"not YAML: {e}")
        return
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as e:
            report.error(where, f"Kubernetes {version} schema: {e.message}")
    data = doc.get("data") or {}
    fmt = data.get("log-format-upstream") or ""
    if not fmt:
        report.error(where, "log-format-upstream is missing: the controller would use its default, which logs $request")
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", fmt))
    leaking = sorted(v for v in used if v in NGINX_SECRET_VARIABLES or v.startswith(("arg_", "cookie_")))
    if leaking:
        report.error(where, f"log-format-upstream logs {', '.join('$' + v for v in leaking)}: the query string (lookup tokens), a /pop/ link or a credential")
    if "cidgate_log_path" in used:
        snippet = data.get("http-snippet") or ""
        found = re.search(r"map\s+\$uri\s+\$cidgate_log_path\s*\{([^}]*)\}", snippet)
        entries = dict(line.strip().rstrip(";").split(None, 1) for line in (found.group(1) if found else "").splitlines() if len(line.split()) >= 2)
        cut = entries.get("~^/pop/")
        if cut is None or "$" in cut:
            report.error(where, "$cidgate_log_path must map ~^/pop/ to a constant (http-snippet: map $uri $cidgate_log_path)")
    for filename, ingress in docs:
        if ingress.get("kind") != "Ingress":
            continue
        annotations = ((ingress.get("metadata") or {}).get("annotations")) or {}
        if annotations.get("nginx.ingress.kubernetes.io/enable-access-log") != "false" and not fmt:
            report.error(f"{filename} {name_of(ingress)}", "the controller's access log is on with its default format ($request: the lookup token)")


def check_exposure(directory: Path, docs: list[tuple[str, dict]], report, versions: list[str]) -> None:
    for filename, doc in docs:
        if doc.get("kind") == "ConfigMap" and "CIDGATE_LISTEN" in (doc.get("data") or {}):
            check_trusted_proxies(f"{filename} {name_of(doc)}", (doc.get("data") or {}).get("CIDGATE_TRUSTED_PROXIES"), report)
    check_network_policy(docs, report)
    check_access_logs(directory, docs, report, versions)
