"""Find and redact AWS credentials in text, in executed notebooks and in run records.

Why its own module: the notebook runner and the Bedrock error messages must agree on what a
credential looks like, and every probe so far found a way round a scan of one plain string:
- text hides values in encodings, so each string is also scanned decoded (ANSI colours gone,
  HTML tags and entities, escaped quotes `{\\"SecretAccessKey\\": ...}` and URL encoding undone),
  and a value found there is redacted in every form the original can hold it;
- a value wraps over lines (textwrap, adjacent literals `'…'\\n '…'`), so it goes on over line breaks;
- a secret hides anywhere in a notebook: sources, outputs, output metadata, notebook metadata
  (papermill's parameters, saved widget state), so every string of the notebook is scanned;
- the credentials boto3 would use are known by value (environment and AWS files; no network);
- "redacted" is said only after the file on disk is read back and neither a value found nor a
  pattern is left in it; otherwise the copy is deleted.
"""
from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote, unquote

REDACTED = "[REDACTED]"

#: Access key ids: long-term (AKIA), temporary (ASIA), and the other documented id prefixes.
#: (It starts with the literal "A" so that `re` skips to each "A": 30 times faster over a figure.)
KEY_ID = re.compile(r"A(?<![A-Z0-9]A)(?:KIA|SIA|BIA|CCA|IDA|ROA|GPA|NPA|NVA|IPA|3T[A-Z0-9])"
                    r"[A-Z0-9]{16}(?![A-Z0-9])")
_B64 = r"[A-Za-z0-9/+=]"
#: A base64 value that may go on over line breaks, as textwrap or adjacent literals ('…'\n '…') wrap it.
_VALUE = _B64 + r"+(?:['\"]?[ \t]*\r?\n[ \t]*['\"]?" + _B64 + r"+)*"
#: A labelled secret or token, as Python, JSON, INI, shell or a table prints it:
#: aws_secret_access_key="…", 'SecretAccessKey': '…', X-Amz-Security-Token=…, SessionToken │ …
LABELLED = re.compile(
    r"(?i)(?P<label>aws[_-]?secret[_-]?access[_-]?key|secret[_-]?access[_-]?key|secret[_-]?key|"
    r"aws[_-]?session[_-]?token|session[_-]?token|security[_-]?token)"
    r"[\s'\"`:=,;|]{1,40}?[rbu]?['\"]?(?P<value>(?=" + _B64 + r"{16})" + _VALUE + ")")
#: Session tokens start with the base64 of their own header: "IQoJb3JpZ2lu…" today, "FwoGZXIvYXdz…",
#: "FQoGZXIvYXdz…" and "AQoDYXdz…" before; a long run after the short prefix counts too.
TOKEN = re.compile(r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdz)(?=" + _B64 + r"{16})" + _VALUE
                   + r"|(?<![A-Za-z0-9/+=])(?:AQo[DE]|FQoG|FwoG|IQoJ)(?=" + _B64 + r"{80})" + _VALUE)
_TOKEN_STARTS = ("IQoJ", "FwoG", "FQoG", "AQoD", "AQoE")  # cheap tests before the slower patterns
#: A bare secret key is a run of exactly 40 base64 characters, only counted in a text that also
#: holds a key id. (Whole runs, not a lookbehind at each position: a figure is one long run.)
_B64_RUN = re.compile(_B64 + r"{40,}")
_KEY_WHAT = "an AWS access key id"
_ENV_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# credential providers that call the network or run a program: never used for a scan
_NETWORK_PROVIDERS = ("assume-role", "assume-role-with-web-identity", "sso", "login", "custom-process",
                      "container-role", "iam-role")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAG = re.compile(r"<[^<>]{0,200}>")
_ESCAPE = re.compile(r"\\+(?=[\"'/])")


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


# --------------------------------------------------------------------------- text

def _views(text: str) -> list[str]:
    """`text` as stored, without colours, and decoded (tags, entities, escapes, URL encoding)."""
    plain = _ANSI.sub("", text) if "\x1b" in text else text
    decoded = _ESCAPE.sub("", plain) if "\\" in plain else plain
    decoded = _TAG.sub(" ", decoded) if "<" in decoded else decoded
    decoded = html.unescape(decoded) if "&" in decoded else decoded
    decoded = unquote(decoded) if "%" in decoded else decoded
    return list(dict.fromkeys((text, plain, decoded)))


def _matches(text: str, known: Mapping[str, str], key_seen: bool = False) -> list[tuple[str, str]]:
    """(description, value) of every credential in `text` or in one of its decoded views;
    `key_seen`: a key id was printed elsewhere (another output), so bare secrets count here too."""
    out: list[tuple[str, str]] = []
    for view in _views(text):
        out += [(desc, value) for value, desc in known.items() if value in view]
        keys = [m.group() for m in KEY_ID.finditer(view)]
        out += [(_KEY_WHAT, key) for key in keys]
        lower = view.lower()
        if "secret" in lower or "token" in lower:
            out += [(f"a labelled {m.group('label')}", m.group("value")) for m in LABELLED.finditer(view)]
        if any(start in view for start in _TOKEN_STARTS):
            out += [("an AWS session token", m.group()) for m in TOKEN.finditer(view)]
        if keys or key_seen:  # anywhere in the same text: 400 dashes between them hide nothing
            out += [("an unlabelled 40-character secret beside a key id", m.group())
                    for m in _B64_RUN.finditer(view) if len(m.group()) == 40 and _looks_random(m.group())]
    return list(dict.fromkeys(out))


def _forms(value: str) -> set[str]:
    """The ways `value` can stand in a string or a JSON file: as is, URL- or HTML-encoded,
    JSON-escaped, and each long piece of a value wrapped over lines."""
    forms = {value, quote(value, safe=""), quote(value), html.escape(value), json.dumps(value)[1:-1]}
    forms.update(p for p in re.split(r"[^A-Za-z0-9/+=]+", value) if len(p) >= 12)
    return {f for f in forms if f}


def find_in_text(text: str, known: Mapping[str, str] | None = None) -> list[str]:
    """Descriptions (no values) of every credential-like thing in `text`."""
    known = known_secrets() if known is None else known
    return list(dict.fromkeys(what for what, _ in _matches(text, known)))


def _redact(value: str, context: str, known: Mapping[str, str], mark: str,
            found: Iterable[str] = (), key_seen: bool = False) -> str:
    """`value` with every credential in `context` (value plus its label), and every value
    `found` elsewhere in the same file, replaced by `mark`: in the original if that removes
    all, else in its plain or decoded view, else the whole string."""
    values = {v for _, v in _matches(context, known, key_seen)} | set(found) | set(known)
    forms = sorted({f for v in values for f in _forms(v)}, key=len, reverse=True)

    def clean(text: str) -> bool:
        return not _matches(text, known, key_seen) and not any(form in text for form in forms)

    if clean(context):
        return value
    for view in _views(value):
        out = view
        for form in forms:
            out = out.replace(form, mark)
        if clean(context.replace(value, out)):
            return out
    return mark


def redact_text(text: str, known: Mapping[str, str] | None = None, mark: str = REDACTED) -> str:
    """`text` with every credential found by `find_in_text` replaced by `mark`."""
    known = known_secrets() if known is None else known
    return _redact(text, text, known, mark)


# --------------------------------------------------------------------------- JSON: notebooks, records

def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any, Any]]:
    """(path, container, key) for every string in a JSON tree (a notebook node is one)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, str):
            yield path + (key,), node, key
        elif isinstance(value, (dict, list)):
            yield from _leaves(value, path + (key,))


def _where(path: tuple) -> str:
    """("cells", 2, "outputs", 0, "text") -> "cell 3 output 1 text"."""
    words: list[str] = []
    for parent, key in zip(("",) + path, path):
        if isinstance(key, int) and parent in ("cells", "outputs"):
            words[-1] = f"{parent[:-1]} {key + 1}"
        else:
            words.append(str(key))
    return " ".join(words)


def _context(container: Any, key: Any) -> str:
    """A string with its name when it has one: a dict key is the label of its value."""
    return f"{key}: {container[key]}" if isinstance(key, str) else container[key]


def _names(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path, name) for every dict key of a JSON tree: a name can hold a secret too."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(node, dict):
            yield path, str(key)
        yield from _names(value, path + (key,))


def _scan_tree(tree: Any, known: Mapping[str, str], key_seen: bool = False) -> list[tuple[Finding, str]]:
    """(finding, value) for every credential in the strings and the names of a JSON tree. A key
    id anywhere makes a bare secret count everywhere: it may be printed in the next cell."""
    found = [(Finding(what, _where(path)), value) for path, container, key in _leaves(tree)
             for what, value in _matches(_context(container, key), known, key_seen)]
    found += [(Finding(what, f"a name in {_where(path) or 'the file'}"), value)
              for path, name in _names(tree) for what, value in _matches(name, known, key_seen)]
    if not key_seen and any(f.what == _KEY_WHAT for f, _ in found):
        return _scan_tree(tree, known, key_seen=True)
    return found


def scan_notebook(nb: Any, known: Mapping[str, str] | None = None) -> list[Finding]:
    """Every credential anywhere in a notebook: sources, outputs, output, cell and notebook
    metadata (papermill's parameters, widget state)."""
    known = known_secrets() if known is None else known
    return [finding for finding, _ in _scan_tree(nb, known)]


def scan_parameters(parameters: Mapping[str, Any], known: Mapping[str, str] | None = None) -> list[Finding]:
    """Parameters that look like a credential, or whose name labels one ("parameter token")."""
    known = known_secrets() if known is None else known
    return [Finding(f.what, f"parameter {f.where}") for f, _ in _scan_tree(dict(parameters), known)]


def redact_notebook(nb: Any, known: Mapping[str, str] | None = None) -> list[Finding]:
    """Redact every string of `nb` (any JSON tree) in place, removing each value found anywhere
    from every string; return what a fresh scan still finds (nothing, normally)."""
    known = known_secrets() if known is None else known
    _redact_tree(nb, known, _scan_tree(nb, known))
    return scan_notebook(nb, known)


def _redact_tree(tree: Any, known: Mapping[str, str], found: list[tuple[Finding, str]]) -> None:
    values, key_seen = {value for _, value in found}, any(f.what == _KEY_WHAT for f, _ in found)
    for _, container, key in list(_leaves(tree)):
        container[key] = _redact(container[key], _context(container, key), known, REDACTED, values, key_seen)


def _left_on_disk(path: Path, values: set[str], known: Mapping[str, str]) -> bool:
    """True if the file as written still holds a pattern or any form of a value."""
    text = path.read_text(encoding="utf-8")
    if any(form in text for value in values for form in _forms(value)):
        return True
    tree = json.loads(text)
    if path.suffix == ".ipynb":
        import nbformat

        tree = nbformat.reads(text, as_version=4)  # joins the lines each string is stored as
    return bool(_scan_tree(tree, known))


def check_file(path: Path | str, known: Mapping[str, str] | None = None) -> tuple[list[Finding], str]:
    """Scan a JSON file (an executed notebook, a run summary); if it holds credentials, redact
    it in place.

    Returns (findings, outcome): outcome is "" when nothing was found, "redacted" when the file
    read back from disk holds no value found, no known credential and no pattern, and "deleted"
    when something remained (the file is then removed: a copy holding a secret must not stay)."""
    import nbformat

    path = Path(path)
    known = known_secrets() if known is None else known
    notebook, text = path.suffix == ".ipynb", path.read_text(encoding="utf-8")
    tree = nbformat.reads(text, as_version=4) if notebook else json.loads(text)
    found = _scan_tree(tree, known)
    if not found:
        return [], ""
    _redact_tree(tree, known, found)
    if notebook:
        nbformat.write(tree, path)
    else:
        path.write_text(json.dumps(tree, indent=2), encoding="utf-8")
    if _left_on_disk(path, {value for _, value in found} | set(known), known):
        path.unlink(missing_ok=True)
        return [f for f, _ in found], "deleted"
    return [f for f, _ in found], "redacted"


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
