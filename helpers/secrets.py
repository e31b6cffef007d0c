"""Find and redact AWS credentials in text and in executed notebooks.

Why its own module: the notebook runner and the Bedrock error messages must agree on what a
credential looks like, and both used to miss some. A notebook's JSON escapes quotes, so a
pattern run over the file text misses `aws_secret_access_key="..."`; the active credentials
usually come from a profile, not from $AWS_SECRET_ACCESS_KEY; and a secret printed without a
label (`{'AccessKeyId': ..., 'SecretAccessKey': ...}`) has no name to match. So this module
scans the *decoded* outputs, knows the values of the credentials boto3 would use (read from
the environment and the AWS files only: no network call), and says "redacted" only after a
second scan finds nothing left.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

REDACTED = "[REDACTED]"

#: Access key ids: long-term (AKIA), temporary (ASIA), and the user/role/group id prefixes.
KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
_B64 = r"[A-Za-z0-9/+=]"
#: A labelled secret or token, as Python, JSON, INI or shell prints it:
#: aws_secret_access_key="…", 'SecretAccessKey': '…', "SessionToken": "…", AWS_SESSION_TOKEN=…
LABELLED = re.compile(
    r"(?i)(?P<label>aws_?secret_?access_?key|secret_?access_?key|secret_?key|aws_?session_?token|"
    r"session_?token|security_?token)['\"]?\s*[:=]+\s*[rbu]?['\"]?(?P<value>" + _B64 + r"{16,})")
#: Session tokens start with the base64 of their own header ("IQoJb3JpZ2lu…", older "FwoGZXIvYXdz…").
TOKEN = re.compile(r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz)" + _B64 + r"{16,}")
#: A bare 40-character secret key: only counted next to a key id (see `_near_key_id`).
_BARE_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])" + _B64 + r"{40}(?![A-Za-z0-9/+=])")
_NEAR = 300  # characters either side of a key id searched for an unlabelled secret
_ENV_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# credential providers that call the network or run a program: never used for a scan
_NETWORK_PROVIDERS = ("assume-role", "assume-role-with-web-identity", "sso", "login", "custom-process",
                      "container-role", "iam-role")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Finding:
    """One credential found: what it is and where (never the value itself)."""

    what: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.what} in {self.where}" if self.where else self.what


def _looks_random(value: str) -> bool:
    """A 40-character run of base64 is a secret key only if it mixes cases and digits like
    one; lower-case hex (a sha1, a git commit) and words do not."""
    return (any(c.islower() for c in value) and any(c.isupper() for c in value)
            and any(c.isdigit() or c in "/+" for c in value))


def known_secrets(env: Mapping[str, str] | None = None, profile: str | None = None) -> dict[str, str]:
    """Credential values to look for, value -> description: the AWS_* variables, the
    credentials boto3 would use (environment, shared credentials and config files, for the
    default profile, `profile` and $AWS_PROFILE), and every static key in those files.

    No network call: the providers that would make one (SSO, assume-role, instance and
    container roles, credential_process) are removed before the chain is resolved."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for name in _ENV_NAMES:
        value = env.get(name, "")
        if len(value) >= 8:
            out.setdefault(value, f"value of ${name}")
    try:
        import botocore.session
    except ImportError:  # pragma: no cover - boto3 is in the lock
        return out
    profiles = [None, profile, env.get("AWS_PROFILE") or None, env.get("AWS_DEFAULT_PROFILE") or None]
    for name in dict.fromkeys(profiles):
        try:
            session = botocore.session.Session(profile=name)
            resolver = session.get_component("credential_provider")
            for method in _NETWORK_PROVIDERS:
                resolver.remove(method)
            creds = session.get_credentials()
            if creds is None:
                continue
            frozen = creds.get_frozen_credentials()
        except Exception:  # noqa: BLE001 - a broken profile only means fewer values to look for
            continue
        label = f"profile {session.profile or 'default'!r}"
        if frozen.secret_key and len(frozen.secret_key) >= 8:
            out.setdefault(frozen.secret_key, f"secret key of {label}")
        if frozen.token and len(frozen.token) >= 8:
            out.setdefault(frozen.token, f"session token of {label}")
    try:
        all_profiles = botocore.session.Session().full_config.get("profiles", {})
    except Exception:  # noqa: BLE001 - an unreadable config file: the chain above still ran
        all_profiles = {}
    for pname, values in all_profiles.items():
        for field in ("aws_secret_access_key", "aws_session_token", "aws_security_token"):
            value = str(values.get(field) or "")
            if len(value) >= 8:
                out.setdefault(value, f"{field} of profile {pname!r}")
    return out


def _near_key_id(text: str) -> Iterator[re.Match]:
    """Unlabelled 40-character secrets within a few hundred characters of a key id."""
    for key in KEY_ID.finditer(text):
        lo, hi = max(0, key.start() - _NEAR), key.end() + _NEAR
        for m in _BARE_SECRET.finditer(text, lo, hi):
            if _looks_random(m.group()):
                yield m


def find_in_text(text: str, known: Mapping[str, str] | None = None) -> list[str]:
    """Descriptions (no values) of every credential-like thing in `text`."""
    known = known_secrets() if known is None else known
    found: list[str] = []
    found += [desc for value, desc in known.items() if value in text]
    if KEY_ID.search(text):
        found.append("an AWS access key id")
    found += [f"a labelled {m.group('label')}" for m in LABELLED.finditer(text)]
    if TOKEN.search(text):
        found.append("an AWS session token")
    if any(True for _ in _near_key_id(text)):
        found.append("an unlabelled 40-character secret next to a key id")
    return list(dict.fromkeys(found))


def redact_text(text: str, known: Mapping[str, str] | None = None, mark: str = REDACTED) -> str:
    """`text` with every credential found by `find_in_text` replaced by `mark`."""
    known = known_secrets() if known is None else known
    for value in sorted(known, key=len, reverse=True):
        text = text.replace(value, mark)
    spans = [m.span() for m in _near_key_id(text)]
    for start, end in reversed(spans):
        text = text[:start] + mark + text[end:]
    text = LABELLED.sub(lambda m: m.group()[:m.start("value") - m.start()] + mark, text)
    text = TOKEN.sub(mark, text)
    return KEY_ID.sub(mark, text)


# --------------------------------------------------------------------------- notebooks

def _output_strings(nb: Any) -> Iterator[tuple[str, Any, Any]]:
    """(where, container, key) for every text a cell output holds, decoded: stream text,
    every str-valued MIME entry of results and displays, error name/value/traceback lines."""
    for c, cell in enumerate(nb.get("cells", []), start=1):
        for o, output in enumerate(cell.get("outputs", []) or [], start=1):
            kind = output.get("output_type", "?")
            where = f"cell {c}, output {o} ({kind})"
            if kind == "stream":
                yield where, output, "text"
            elif kind in ("execute_result", "display_data", "update_display_data"):
                data = output.get("data", {})
                for mime in list(data):
                    yield f"{where} {mime}", data, mime
            elif kind == "error":
                yield where, output, "ename"
                yield where, output, "evalue"
                for i in range(len(output.get("traceback", []))):
                    yield where, output["traceback"], i


def _as_text(value: Any) -> str:
    if isinstance(value, list):  # multi-line strings as nbformat stores them on disk
        return "".join(map(str, value))
    if isinstance(value, (dict, int, float, bool)) or value is None:
        import json

        return json.dumps(value)
    return str(value)


def scan_notebook(nb: Any, known: Mapping[str, str] | None = None) -> list[Finding]:
    """Every credential in the decoded outputs of a notebook node (nbformat, version 4)."""
    known = known_secrets() if known is None else known
    found: list[Finding] = []
    for where, container, key in _output_strings(nb):
        text = _ANSI.sub("", _as_text(container[key]))
        found += [Finding(what, where) for what in find_in_text(text, known)]
    return found


def redact_notebook(nb: Any, known: Mapping[str, str] | None = None) -> list[Finding]:
    """Redact every output of `nb` in place; return what a fresh scan still finds (nothing,
    normally). Structured outputs (JSON data) are redacted as text and kept as text."""
    known = known_secrets() if known is None else known
    for _, container, key in _output_strings(nb):
        value = container[key]
        text = _as_text(value)
        plain = _ANSI.sub("", text)
        if not find_in_text(plain, known):
            continue
        container[key] = redact_text(plain, known)  # colours go: they could split a secret
    return scan_notebook(nb, known)


def check_file(path: Path | str, known: Mapping[str, str] | None = None) -> tuple[list[Finding], str]:
    """Scan an executed notebook; if it holds credentials, redact the file in place.

    Returns (findings, outcome): outcome is "" when nothing was found, "redacted" when a
    second scan of the rewritten file finds nothing, and "deleted" when something remained
    (the file is then removed: a copy that still holds a secret must not stay on disk)."""
    import nbformat

    path = Path(path)
    known = known_secrets() if known is None else known
    nb = nbformat.read(path, as_version=4)
    found = scan_notebook(nb, known)
    if not found:
        return [], ""
    redact_notebook(nb, known)
    nbformat.write(nb, path)
    left = scan_notebook(nbformat.read(path, as_version=4), known)
    if left or any(value in path.read_text(encoding="utf-8") for value in known):
        path.unlink(missing_ok=True)
        return found, "deleted"
    return found, "redacted"


_CACHE: dict[tuple, dict[str, str]] = {}


def known_secrets_cached(profile: str | None = None) -> dict[str, str]:
    """`known_secrets()` for this process's environment, re-read only when an AWS_* variable
    or an AWS credentials/config file changes: error messages scrub on every failure, and a
    batch can fail a thousand times."""
    def stamp(var: str, default: str) -> tuple[str, float]:
        p = Path(os.environ.get(var) or Path.home() / ".aws" / default).expanduser()
        try:
            return str(p), p.stat().st_mtime
        except OSError:
            return str(p), -1.0

    key = (profile, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))),
           stamp("AWS_SHARED_CREDENTIALS_FILE", "credentials"), stamp("AWS_CONFIG_FILE", "config"))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = known_secrets(profile=profile)
    return _CACHE[key]
