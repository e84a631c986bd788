"""What deploy/ logs, trusts and dials (run by validate.sh; the Kubernetes side is in
kubernetes/validate.py):

1. HAProxy (haproxy/haproxy.cfg): no log format writes the request line, the query string
   (PBXs send the lookup token there) or a /pop/ link (the screen pop's credential); the
   path is logged through txn.log_path, which is the path of /api/ requests only, /pop/-
   for screen pops and - for anything else. With haproxy installed, a copy of the file is
   also run in front of a stub and its log of real requests is read back.
2. Compose (compose.yaml): the gateway believes X-Forwarded-For from HAProxy's fixed
   address only, and that address lies in the project network's fixed, private subnet.
3. PBX recipes: a CRM's direct_line is dialled only inside a dedicated agents context
   whose pattern admits agents' extensions only (Asterisk, FreeSWITCH, Kamailio): a dial
   string in a CRM field must not become toll fraud.
4. Exposure: HAProxy's allowed prefixes, the Ingress's paths and deploy/README.md's table
   "Which path serves whom" name exactly the client-facing prefixes (EXPOSED): each on
   purpose, none forgotten (a feature unreachable behind them), none extra (/metrics).

`--self-test` first checks that broken copies are rejected. Exit status 0 when clean.
"""

from __future__ import annotations

import http.server
import ipaddress
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
HAPROXY = "haproxy/haproxy.cfg"
COMPOSE = "compose.yaml"
ASTERISK = "pbx/asterisk/extensions.conf"
FS_DIALPLAN = "pbx/freeswitch/dialplan.xml"
FS_AGENTS = "pbx/freeswitch/cidgate_agents.xml"
FS_LUA = "pbx/freeswitch/cidgate_lookup.lua"
KAMAILIO = "pbx/kamailio/kamailio.cfg"
INGRESS = "kubernetes/ingress.yaml"
README = "README.md"
FILES = [HAPROXY, COMPOSE, ASTERISK, FS_DIALPLAN, FS_AGENTS, FS_LUA, KAMAILIO, INGRESS, README]

# The prefixes clients reach through the shipped proxies, and nothing else.
EXPOSED = ["/api/", "/pop/", "/rest/api/v1/historic-data/", "/agent/", "/admin/", "/phones/"]

# HAProxy log variables and fetches that write the request line, URI, path or query.
HAPROXY_LEAKS = re.compile(r"%(\{[^}]*\})?(r|HU|HP|HPO|HQ)(?![A-Za-z])")
HAPROXY_FETCH_LEAKS = re.compile(r"%\[\s*(url|path|pathq|query|base|capture\.req\.(uri|hdr)|req\.hdr|urlp|url_param)\b")
# What an agents pattern must refuse, and the extension it must take.
NOT_AGENTS = ["+449001234567", "00449001234567", "0900123456", "1234567", "sofia/gateway/pstn/0900", "101@evil", "_X.", ""]
AN_AGENT = "101"


def strip_comment(line: str, marker: str) -> str:
    return line.split(marker, 1)[0] if marker in line else line


def check_haproxy(text: str, errors: list[str]) -> None:
    lines = [strip_comment(line, "#").strip() for line in text.splitlines()]
    formats = [line for line in lines if line.startswith(("log-format", "error-log-format"))]
    if not formats:
        errors.append(f"{HAPROXY}: no log-format: HAProxy's own format would apply")
    for line in formats:
        if HAPROXY_LEAKS.search(line) or HAPROXY_FETCH_LEAKS.search(line):
            errors.append(f"{HAPROXY}: `{line}` logs the request line, URI, path or query (lookup tokens, /pop/ links)")
    for line in lines:
        if re.match(r"option\s+https?log\b", line) or line.startswith("capture request header"):
            errors.append(f"{HAPROXY}: `{line}` logs the request line or a header")
    if any("var(txn.log_path)" in line for line in formats):
        setters = [line for line in lines if "set-var(txn.log_path)" in line]
        if not setters:
            errors.append(f"{HAPROXY}: the log format uses txn.log_path, which nothing sets")
        for line in setters:
            value = line.split("set-var(txn.log_path)", 1)[1].strip()
            if not (re.fullmatch(r"str\([^)$%]*\)( if .*)?", value) or value == "path if { path_beg /api/ }"):
                errors.append(f"{HAPROXY}: `{line}`: txn.log_path may hold a constant, or the path of /api/ requests only")


def check_compose(text: str, errors: list[str]) -> None:
    doc = yaml.safe_load(text) or {}
    services = doc.get("services") or {}
    lb_address = ((((services.get("lb") or {}).get("networks") or {}).get("default") or {}) or {}).get("ipv4_address")
    subnets = [c.get("subnet") for c in ((((doc.get("networks") or {}).get("default") or {}).get("ipam") or {}).get("config") or [])]
    if not lb_address or not subnets:
        errors.append(f"{COMPOSE}: HAProxy (lb) needs a fixed ipv4_address in a fixed subnet of the default network")
        return
    address = ipaddress.ip_address(lb_address)
    if not any(address in ipaddress.ip_network(s) and ipaddress.ip_network(s).is_private for s in subnets):
        errors.append(f"{COMPOSE}: lb's address {address} is not in the network's private subnet {subnets}")
    gateways = {name: s for name, s in services.items() if "cidgate" in str(s.get("image", ""))}
    for name, service in gateways.items():
        if name == "migrate":
            continue
        trusted = str((service.get("environment") or {}).get("CIDGATE_TRUSTED_PROXIES", ""))
        networks = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted.split(",") if p.strip()]
        if networks != [ipaddress.ip_network(f"{address}/{address.max_prefixlen}")]:
            errors.append(f"{COMPOSE}: {name} trusts {trusted or 'no proxy'}; it must trust HAProxy's address {address} alone")


def refuses_all_but_agents(matches, where: str, errors: list[str]) -> None:
    for value in NOT_AGENTS:
        if matches(value):
            errors.append(f"{where}: the agents pattern accepts {value!r} (a CRM value that is no agent's extension)")
    if not matches(AN_AGENT):
        errors.append(f"{where}: the agents pattern refuses the extension {AN_AGENT}")


def asterisk_pattern(pattern: str, value: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == value
    regex = ""
    for part in re.findall(r"\[[^]]*\]|.", pattern[1:]):
        regex += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(part, part if part.startswith("[") else re.escape(part))
    return re.fullmatch(regex, value) is not None


def check_asterisk(text: str, errors: list[str]) -> None:
    context = None
    patterns: list[str] = []
    for raw in text.splitlines():
        line = strip_comment(raw, ";").strip()
        header = re.fullmatch(r"\[([^]]+)\]", line)
        if header:
            context = header.group(1)
            continue
        uses_line = "${CIDGATE_DIRECT_LINE}" in line or "${agent}" in line
        if uses_line and re.search(r"\b(Dial|Goto|Originate|Exec)\(", line):
            errors.append(f"{ASTERISK}: `{line}` dials or jumps to a CRM-controlled value")
        if uses_line and "Gosub(" in line and not re.search(r"Gosub\((cidgate-agents|cidgate-queue,s,1)\b", line):
            errors.append(f"{ASTERISK}: `{line}` calls into a context other than [cidgate-agents]")
        if context == "cidgate-agents":
            if line.startswith("include"):
                errors.append(f"{ASTERISK}: [cidgate-agents] includes another context: `{line}`")
            found = re.match(r"exten\s*=>\s*([^,]+),", line)
            if found:
                patterns.append(found.group(1).strip())
            if "Dial(" in line and not re.search(r"Dial\(PJSIP/\$\{EXTEN\},", line):
                errors.append(f"{ASTERISK}: [cidgate-agents] dials something else than PJSIP/<extension>: `{line}`")
    if not patterns:
        errors.append(f"{ASTERISK}: no [cidgate-agents] context with extensions")
    refuses_all_but_agents(lambda v: any(asterisk_pattern(p, v) for p in patterns), f"{ASTERISK} [cidgate-agents]", errors)


def check_freeswitch(dialplan: str, agents: str, lua: str, errors: list[str]) -> None:
    for found in re.finditer(r'application="transfer" data="\$\{cidgate_transfer_to\} XML ([^"]+)"', dialplan):
        if found.group(1) != "${cidgate_transfer_context}":
            errors.append(f"{FS_DIALPLAN}: a direct line is transferred into context {found.group(1)}, not cidgate_agents")
    if "cidgate_transfer_to" in dialplan and "${cidgate_transfer_context}" not in dialplan:
        errors.append(f"{FS_DIALPLAN}: the transfer does not use cidgate_transfer_context")
    contexts = re.findall(r'<context name="([^"]+)"', agents)
    if contexts != ["cidgate_agents"]:
        errors.append(f"{FS_AGENTS}: must define the context cidgate_agents alone (has {contexts})")
    dialling = [e for e in re.findall(r'expression="([^"]*)">((?:(?!</condition>).)*)', agents, re.S) if "bridge" in e[1]]
    if not dialling:
        errors.append(f"{FS_AGENTS}: no extension bridges to an agent")
    for expression, body in dialling:
        refuses_all_but_agents(lambda v, e=expression: re.search(e, v) is not None, f"{FS_AGENTS} `{expression}`", errors)
        for target in re.findall(r'application="bridge" data="([^"]*)"', body):
            if not target.startswith("user/"):
                errors.append(f"{FS_AGENTS}: bridges to {target}, not to a registered user (user/…)")
    found = re.search(r'target:match\("([^"]+)"\)', lua)
    if not found:
        errors.append(f"{FS_LUA}: no agent-extension check on the direct line")
    elif "cidgate_agents" not in lua:
        errors.append(f"{FS_LUA}: a direct line is not sent to the cidgate_agents context")


def check_kamailio(text: str, errors: list[str]) -> None:
    checks = re.findall(r'\$var\(cg_user\) =~ "([^"]+)"', text)
    if len(checks) != 1:
        errors.append(f"{KAMAILIO}: expected one agent-extension check of $var(cg_user)")
    for pattern in checks:
        refuses_all_but_agents(lambda v, p=pattern: re.search(p, v) is not None, f"{KAMAILIO} `{pattern}`", errors)
    for line in text.splitlines():
        line = line.strip()
        # The checked extension, or the operator's own SCREENING_ROUTE (never a CRM value).
        if line.startswith("$rU") and line not in ("$rU = $var(cg_user);", '$rU = "SCREENING_ROUTE";'):
            errors.append(f"{KAMAILIO}: `{line}` sets the Request-URI from something other than the checked extension")
        if line.startswith('append_hf("X-Direct-Line') and "$var(cg_user)" not in line:
            errors.append(f"{KAMAILIO}: `{line}` passes on the CRM's direct_line unchecked")
    if '$du = "AGENTS_HOP"' not in text:
        errors.append(f"{KAMAILIO}: rewritten calls must go to AGENTS_HOP, the PBX's agents-only entry")


def check_exposed(files: dict[str, str], errors: list[str]) -> None:
    want = sorted(EXPOSED)
    deny = re.search(r"http-request deny deny_status 404 unless \{ path_beg ([^}]*)\}", files[HAPROXY])
    haproxy = sorted(deny.group(1).split()) if deny else []
    if haproxy != want:
        errors.append(f"{HAPROXY}: exposes {haproxy}, expected {want}")
    try:
        ingress = yaml.safe_load(files[INGRESS]) or {}
        paths = sorted(p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"])
    except (KeyError, TypeError, yaml.YAMLError) as e:
        errors.append(f"{INGRESS}: unreadable: {e}")
        paths = []
    if paths and paths != want:
        errors.append(f"{INGRESS}: routes {paths}, expected {want}")
    section = files[README].split("### Which path serves whom", 1)
    rows = re.findall(r"(?m)^\| `(/[^`]*)` \|", section[1].split("\n## ", 1)[0]) if len(section) == 2 else []
    if sorted(rows) != want:
        errors.append(f"{README}: 'Which path serves whom' lists {sorted(rows)}, expected {want}")


def check(files: dict[str, str]) -> list[str]:
    errors: list[str] = []
    check_exposed(files, errors)
    check_haproxy(files[HAPROXY], errors)
    try:
        check_compose(files[COMPOSE], errors)
    except (ValueError, AttributeError, yaml.YAMLError) as e:
        errors.append(f"{COMPOSE}: unreadable: {e}")
    check_asterisk(files[ASTERISK], errors)
    check_freeswitch(files[FS_DIALPLAN], files[FS_AGENTS], files[FS_LUA], errors)
    check_kamailio(files[KAMAILIO], errors)
    return errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_haproxy(text: str) -> list[str]:
    """Runs a copy of haproxy.cfg (local ports, one stub backend) and reads its log of
    requests carrying a token and screen-pop links."""

    class Stub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the handler's API)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    front, stats = free_port(), free_port()
    config = re.sub(r"(?ms)^resolvers docker.*?(?=^\S)", "", text)
    config = re.sub(r"(?m)^    bind :8080$", f"    bind 127.0.0.1:{front}", config)
    config = re.sub(r"(?m)^    bind :8404$", f"    bind 127.0.0.1:{stats}", config)
    config = re.sub(r"(?m)^    default-server .*$", "", config)
    config = re.sub(r"(?m)^    server cidgate-2 .*$", "", config)
    config = re.sub(r"(?m)^    server cidgate-1 .*$", f"    server cidgate-1 127.0.0.1:{stub.server_port}", config)
    secrets = ["cgl_LIVESECRET1", "LIVECAPABILITY2", "LIVECAPABILITY3", "LIVESECRET4", "LIVESESSION5", "LIVEREPORTKEY6"]
    paths = [
        f"/api/lookup?telephone=0700000000&token={secrets[0]}",
        f"/pop/2.1.1.{secrets[1]}",
        f"/%70op/2.1.1.{secrets[2]}",
        f"/api/v1/events/call-end?call_id=1&key={secrets[3]}",
        f"/agent/login?session=cgsess_{secrets[4]}",
        f"/rest/api/v1/historic-data/{secrets[5]}",
    ]
    refused = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "haproxy.cfg"
        path.write_text(config)
        proxy = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", front), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for p in paths:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{front}{p}", timeout=5).read()
                except urllib.error.HTTPError as e:
                    # An encoded prefix (/%70op/) is no exposed path: refusing it is right.
                    if not p.startswith("/%"):
                        refused.append(f"{p.split('?')[0]} ({e.code})")
                except OSError:
                    pass
            time.sleep(0.5)
        finally:
            proxy.terminate()
            log = proxy.communicate(timeout=10)[0]
            stub.shutdown()
    errors = [f"{HAPROXY} (live): the log holds {s}" for s in secrets if s in log]
    errors += [f"{HAPROXY} (live): an exposed path was refused: {r}" for r in refused]
    if log.count("GET ") < len(paths):
        errors.append(f"{HAPROXY} (live): expected a log line per request, got:\n{log}")
    return errors


def self_test(files: dict[str, str]) -> list[str]:
    cases = [
        ("logs the path", HAPROXY, "%[var(txn.log_path)]", "%HPO"),
        ("logs /pop/ links", HAPROXY, "str(/pop/-) if { path_beg /pop/ }", "path if { path_beg /pop/ }"),
        ("forgets /agent/", HAPROXY, "/rest/api/v1/historic-data/ /agent/ /admin/", "/rest/api/v1/historic-data/ /admin/"),
        ("exposes /metrics", INGRESS, "          - path: /phones/", "          - path: /metrics\n            pathType: Prefix\n            backend: {service: {name: cidgate, port: {name: http}}}\n          - path: /phones/"),
        ("option httplog", HAPROXY, "    option dontlognull", "    option httplog"),
        ("trusts a network", COMPOSE, "CIDGATE_TRUSTED_PROXIES: 172.30.87.10/32", "CIDGATE_TRUSTED_PROXIES: 172.30.87.0/24"),
        ("lb outside the subnet", COMPOSE, "ipv4_address: 172.30.87.10", "ipv4_address: 172.31.0.10"),
        ("dials direct_line", ASTERISK, "n(agent),Gosub(cidgate-agents,${agent},1)", "n(agent),Dial(${CIDGATE_DIRECT_LINE},30)"),
        ("agents context dials anything", ASTERISK, "exten => _[1-8]XX,1", "exten => _X.,1"),
        ("agents context dials a trunk", ASTERISK, "Dial(PJSIP/${EXTEN},30", "Dial(PJSIP/${EXTEN}@trunk,30"),
        ("transfer into default", FS_DIALPLAN, "XML ${cidgate_transfer_context}", "XML default"),
        ("agents context takes any number", FS_AGENTS, 'expression="^([1-8][0-9]{2})$"', 'expression="^(\\d+)$"'),
        ("agents context bridges a gateway", FS_AGENTS, 'data="user/$1@${domain_name}"', 'data="sofia/gateway/pstn/$1"'),
        ("Kamailio takes any user", KAMAILIO, '=~ "^[0-9]{2,6}$"', '=~ "^[A-Za-z0-9._+-]+$"'),
        ("Kamailio passes the CRM value", KAMAILIO, 'append_hf("X-Direct-Line: $var(cg_user)', 'append_hf("X-Direct-Line: $avp(cg_direct)'),
    ]
    failures = []
    for label, name, old, new in cases:
        if old not in files[name]:
            failures.append(f"self-test: '{label}': {old!r} is not in {name}")
            continue
        broken = dict(files, **{name: files[name].replace(old, new)})
        if not check(broken):
            failures.append(f"self-test: a copy with '{label}' ({name}) was accepted")
    return failures


def main(argv: list[str]) -> int:
    directory = Path(next((a for a in argv if not a.startswith("--")), HERE)).resolve()
    files = {name: (directory / name).read_text() for name in FILES}
    errors = []
    if "--self-test" in argv:
        errors += self_test(files)
    errors += check(files)
    if shutil.which("haproxy"):
        errors += live_haproxy(files[HAPROXY])
    else:
        print("(haproxy not installed: its log was checked as text only)")
    for e in errors:
        print(f"ERROR {e}")
    if errors:
        return 1
    print("exposure: log formats, trusted proxy and direct_line dialling are as they must be")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
