"""What the real PBXs can read in the recipes (run by deploy/validate.sh; issue 30).

1. Asterisk (asterisk/extensions.conf): no JSON_DECODE in the dialplan (it crashes or
   misreads on JSON nulls on many releases); the lookup asks for format=text; FILTER's
   allowed sets hold no backslash (its escapes depend on the config parser) and a literal
   "-" only first (anywhere else it makes a range).
2. FreeSWITCH (freeswitch/*.lua): every mod_curl request passes `secure` (mod_curl skips
   certificate checks without it, and the token is in the query string).
3. 3CX (3cx/cidgate.xml): the lookup asks for format=compact, so an unknown caller has no
   `id` key for the template's rule to meet.

Exit status 0 when clean; each problem on its own line otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def check_asterisk(text: str) -> list[str]:
    errors = []
    code = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith(";")]
    for line in code:
        if "JSON_DECODE" in line:
            errors.append(f"asterisk: JSON_DECODE in `{line}`")
        for allowed in re.findall(r"FILTER\(([^,]*),", line):
            if "\\" in allowed:
                errors.append(f"asterisk: FILTER({allowed},…) holds a backslash")
            if "-" in allowed.lstrip("-") and not re.fullmatch(r"-?(?:[^-](?:-[^-])?)*", allowed):
                errors.append(f"asterisk: FILTER({allowed},…) has a '-' that is neither first nor a range")
    lookups = [l for l in code if "${CURL(${CIDGATE_URL}" in l]
    if not lookups or any("?format=text&" not in l for l in lookups):
        errors.append("asterisk: the lookup does not ask for format=text")
    return errors


def check_freeswitch(scripts: dict[str, str]) -> list[str]:
    errors = []
    for name, text in scripts.items():
        for line in text.splitlines():
            if "connect-timeout %d" in line and " secure " not in line:
                errors.append(f"freeswitch/{name}: a curl request without `secure`")
    return errors


def check_3cx(text: str) -> list[str]:
    urls = re.findall(r'Url="([^"]*)"', text)
    if not urls or any("format=compact" not in u for u in urls):
        return ["3cx: the lookup does not ask for format=compact"]
    return []


def main(argv: list[str]) -> int:
    pbx = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    errors = check_asterisk((pbx / "asterisk/extensions.conf").read_text())
    scripts = {p.name: p.read_text() for p in sorted((pbx / "freeswitch").glob("cidgate_*.lua"))}
    errors += check_freeswitch(scripts)
    errors += check_3cx((pbx / "3cx/cidgate.xml").read_text())
    # The checks must catch what they are for: broken copies are refused.
    broken = check_asterisk("exten => s,1,Set(v=${JSON_DECODE(resp,name)})\n same => n,Set(x=${FILTER(A-Za-z\\\\-,${v})})")
    broken += check_freeswitch({"x.lua": 'string.format("%s json connect-timeout %d timeout %d")'})
    broken += check_3cx('<Request Url="[ApiUrl]/api/lookup?telephone=[Number]"/>')
    if len(broken) != 6:
        errors.append(f"self-test: broken copies gave {broken}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
