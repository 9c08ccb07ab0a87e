"""Secrets out of every text that reaches a commit, a log or an error.

:func:`redact` is the one function the rest of the package calls on text before it is
committed, logged or raised: a secret becomes ``[REDACTED:<kind>]`` (``[REDACTED:aws-access-key]``).
The store calls it on every document it renders and every file it commits
(``Store._render_files``), :class:`~mdsessions.errors.MdsessionsError` on its message, and
:class:`RedactingFilter` on log records, so no other part redacts by hand.

What is a secret (:class:`Redactor`):

* the pattern plugins of `detect-secrets <https://github.com/Yelp/detect-secrets>`_ (its
  ``RegexBasedDetector`` classes: AWS, GitHub, GitLab, Slack, Stripe, JWT, private keys,
  passwords in URLs, …) — never its entropy plugins nor its keyword heuristic, which flag
  ordinary hashes and code, and not its public-IP plugin (an address is no secret);
* patterns of our own for what it lacks (:data:`OWN_PATTERNS`: ``sk-proj-``/``sk-…`` OpenAI
  keys, ``sk-ant-`` Anthropic keys, GCP API keys and OAuth tokens, GitHub fine-grained
  tokens, whole private-key blocks, Hugging Face tokens …);
* patterns a store adds in ``mdsessions.toml`` (``[redaction.patterns]``, kind = regex),
  see :func:`configured`.

A match is widened to the end of its token (detect-secrets' Stripe pattern matches the first
24 characters of a longer key; its JWT pattern stops after the second dot), overlapping
matches are merged, and the whole span is replaced, so no part of a secret remains.

detect-secrets costs ~150 ms to import (it imports ``requests``); its compiled patterns are
kept in a small JSON file under the user's cache folder (``$XDG_CACHE_HOME/mdsessions/``,
keyed by the plugin files' sizes and times), so a process pays the import only when
detect-secrets changed.

This module is below every other (it imports nothing of mdsessions), so the error root and
the git layer may use it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER_RE",
    "OWN_PATTERNS",
    "Finding",
    "RedactingFilter",
    "Redactor",
    "configured",
    "default_redactor",
    "detect_secrets_patterns",
    "redact",
    "register_patterns",
]

#: A marker left where a secret was: ``[REDACTED:<kind>]``.
MARKER_RE = re.compile(r"\[REDACTED:[a-z0-9][a-z0-9-]*\]")

_KIND_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

#: Our own patterns, for what detect-secrets' pattern plugins miss: kind → regex. The
#: whole match is the secret (then widened to the end of its token).
OWN_PATTERNS: dict[str, str] = {
    "private-key": (
        r"-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,20000}?-----END [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:\r?\n[A-Za-z0-9+/=:,. -]*)*)"
    ),
    "anthropic-api-key": r"\bsk-ant-[A-Za-z0-9_-]{20,}",
    "openai-api-key": (
        r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}"
        r"|\bsk-(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{32,}"
    ),
    "gcp-api-key": r"\bAIza[0-9A-Za-z_-]{35}",
    "gcp-oauth-token": r"\bya29\.[0-9A-Za-z_-]{20,}",
    "gcp-oauth-client-secret": r"\bGOCSPX-[0-9A-Za-z_-]{20,}",
    "github-token": r"\b(?:gh[pousr]_[A-Za-z0-9_]{30,}|github_pat_[A-Za-z0-9_]{22,})",
    "slack-token": r"\bxapp-\d-[A-Za-z0-9-]{20,}",
    "stripe-key": r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{20,}",
    "huggingface-token": r"\bhf_[A-Za-z0-9]{34,}",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
}

# detect-secrets plugins left out: an IP address is no secret; the rest are left to them.
_SKIPPED_PLUGINS = {"IPPublicDetector"}
# Plugins whose first group is the secret (the rest of the match is its context, kept).
_GROUP_IS_SECRET = {
    "AWSKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "SoftlayerDetector",
}
# Kinds named by us rather than derived from the plugin's secret_type.
_KIND_NAMES = {
    "BasicAuthDetector": "password-in-url",
    "JwtTokenDetector": "jwt",
    "AWSKeyDetector": "aws-access-key",
    "NpmDetector": "npm-token",
}
# A password in a URL that only stands in for one, as documentation and templates write it
# (``user:pass@host``, ``user:<password>@host``, ``user:${DB_PASSWORD}@host``): not a secret.
_STAND_IN_PASSWORD = re.compile(
    r"(?:<[^>]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{?[^}]*\}?\}|%s|%\([a-z_]+\)s|\*+|x+|\.\.\."
    r"|pass|password|passwd|pwd|secret|changeme|example|your[-_]?password|p@ssw0rd)",
    re.IGNORECASE,
)
# A token goes on over these characters (base64url, then padding); a match is widened
# over them, not over '/' (a path or URL goes on after a token).
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-]*=*")
_CACHE_FORMAT = 1
_TOKEN_BYTES = (string.ascii_letters + string.digits + "_-").encode()
_SHAPE = bytes(ord("a") if b in _TOKEN_BYTES else ord(" ") for b in range(256))

# Gates: a pattern runs only when the text holds a run of at least N token characters and
# one needle of each group (a lowercase needle is looked for in the lowercased text, one with
# capitals as written) — conditions every match of the pattern meets, checked in
# microseconds (most texts hold no secret, and running ~50 regexes over them costs
# milliseconds). A pattern without a gate always runs.
_KEYWORDS = ("key", "pw", "pass", "token")
_GATES: dict[tuple[str, int | str], tuple[tuple[tuple[str, ...], ...], int]] = {
    ("AWSKeyDetector", 0): ((("A3T", "ABIA", "ACCA", "AKIA", "ASIA"),), 20),
    ("AWSKeyDetector", 1): ((("aws",),), 0),
    ("ArtifactoryDetector", 0): ((("AKC",),), 13),
    ("ArtifactoryDetector", 1): ((), 11),
    ("AzureStorageKeyDetector", 0): ((("accountkey=",),), 0),
    ("BasicAuthDetector", 0): ((("://",),), 0),
    ("CloudantDetector", 0): ((("cl",), _KEYWORDS), 64),
    ("CloudantDetector", 1): ((("cl",), _KEYWORDS), 24),
    ("CloudantDetector", 2): ((("cloudant.com",),), 64),
    ("CloudantDetector", 3): ((("cloudant.com",),), 24),
    ("DiscordBotTokenDetector", 0): ((("M", "N", "O"),), 27),
    ("GitHubTokenDetector", 0): ((("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),), 40),
    ("GitLabTokenDetector", 0): ((("glpat-", "gldt-", "glft-", "glsoat-", "glrt-"),), 20),
    ("GitLabTokenDetector", 1): ((("gr1348941",),), 29),
    ("GitLabTokenDetector", 2): ((("glcbt-",),), 20),
    ("GitLabTokenDetector", 3): ((("glimt-",),), 25),
    ("GitLabTokenDetector", 4): ((("glptt-",),), 40),
    ("GitLabTokenDetector", 5): ((("glagent-",),), 50),
    ("GitLabTokenDetector", 6): ((("gloas-",),), 64),
    ("IbmCloudIamDetector", 0): ((_KEYWORDS,), 44),
    ("IbmCosHmacDetector", 0): ((("secret",),), 48),
    ("JwtTokenDetector", 0): ((("eyj",),), 0),
    ("MailchimpDetector", 0): ((("-us",),), 32),
    ("NpmDetector", 0): ((("_authtoken=",),), 0),
    ("OpenAIDetector", 0): ((("t3blbkfj",),), 20),
    ("PrivateKeyDetector", 0): ((("private key",),), 0),
    ("PrivateKeyDetector", 1): ((("private key",),), 0),
    ("PrivateKeyDetector", 2): ((("private key",),), 0),
    ("PrivateKeyDetector", 3): ((("private key",),), 0),
    ("PrivateKeyDetector", 4): ((("private key",),), 0),
    ("PrivateKeyDetector", 5): ((("private key",),), 0),
    ("PrivateKeyDetector", 6): ((("private key",),), 0),
    ("PrivateKeyDetector", 7): ((("putty-user-key-file-2",),), 0),
    ("PypiTokenDetector", 0): ((("pypi-ag",),), 70),
    ("PypiTokenDetector", 1): ((("pypi-ag",),), 70),
    ("SendGridDetector", 0): ((("sg.",),), 43),
    ("SlackDetector", 0): ((("xox",),), 0),
    ("SlackDetector", 1): ((("hooks.slack.com",),), 0),
    ("SoftlayerDetector", 0): ((("sl",), _KEYWORDS), 64),
    ("SoftlayerDetector", 1): ((("api.softlayer.com",),), 64),
    ("SquareOAuthDetector", 0): ((("sq0csp-",),), 0),
    ("StripeDetector", 0): ((("k_live_",),), 32),
    ("TelegramBotTokenDetector", 0): (((":",),), 35),
    ("TwilioKeyDetector", 0): ((("AC",),), 34),
    ("TwilioKeyDetector", 1): ((("SK",),), 34),
    ("own", "private-key"): ((("-----begin ",),), 0),
    ("own", "anthropic-api-key"): ((("sk-ant-",),), 27),
    ("own", "openai-api-key"): ((("sk-",),), 20),
    ("own", "gcp-api-key"): ((("AIza",),), 39),
    ("own", "gcp-oauth-token"): ((("ya29.",),), 20),
    ("own", "gcp-oauth-client-secret"): ((("GOCSPX-",),), 27),
    ("own", "github-token"): ((("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),), 26),
    ("own", "slack-token"): ((("xapp-",),), 20),
    ("own", "stripe-key"): ((("_live_", "_test_"),), 28),
    ("own", "huggingface-token"): ((("hf_",),), 37),
    ("own", "jwt"): ((("eyj",),), 0),
}

# Context patterns (a keyword before the value) have no literal prefix and cost ~0.5 ms per
# 8 KB; they run only when this cheap search (a literal prefix) finds their keyword in the
# lowercased text (in the text as written when the regex has capitals).
_NEAR: dict[tuple[str, int], str] = {
    ("ArtifactoryDetector", 1): r"AP[\dA-F][a-zA-Z0-9]{8}",
    ("CloudantDetector", 0): r"cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)",
    ("CloudantDetector", 1): r"cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)",
    ("IbmCosHmacDetector", 0): r"secret[-_]?(?:access)?[-_]?key",
    ("SoftlayerDetector", 0): r"(?:softlayer|sl)[_-]?(?:api)?[_-]?(?:key|pwd|pass|token)",
}

# Shapes every match of a pattern has, in the text with token characters as "a" and the rest
# as " " (a Telegram token: 8 digits, ":", 35 token characters).
_SHAPES: dict[tuple[str, int], bytes] = {
    ("TelegramBotTokenDetector", 0): b"a" * 8 + b" " + b"a" * 35,
    ("DiscordBotTokenDetector", 0): b"a" * 24 + b" " + b"a" * 6 + b" " + b"a" * 27,
}
# Patterns whose secret is a whole run of exactly N token characters (bounded on both sides).
_EXACT: dict[tuple[str, int], int] = {("IbmCloudIamDetector", 0): 44, ("IbmCosHmacDetector", 0): 48}


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    group: bool  # the first group is the secret, not the whole match
    needles: tuple[tuple[str, ...], ...] = ()
    run: int = 0  # a match holds a run of at least this many token characters
    near: re.Pattern[bytes] | None = None  # found in the lowercased UTF-8 by every match
    near_raw: bool = False  # ... in the UTF-8 as written (the regex has capitals)
    exact: int = 0  # a match is a whole run of exactly this many token characters
    shape: bytes = b""  # found in the text's shape (see _SHAPES) by every match
    shapes: tuple[bytes, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        shapes = [b"a" * self.run] if self.run else []
        if self.exact:
            shapes.append(b" " + b"a" * self.exact + b" ")
        if self.shape:
            shapes.append(self.shape)
        object.__setattr__(self, "shapes", tuple(shapes))


@dataclass(frozen=True)
class Finding:
    """A secret found in a text (its place and kind; never the secret itself).

    Attributes:
        kind: The marker's kind (``aws-access-key``).
        start: Offset of its first character in the text (characters).
        end: Offset just after it (characters).
        line: Its line number in the text (1-based).
    """

    kind: str
    start: int
    end: int
    line: int


def _kind_of(plugin: str, secret_type: str, index: int) -> str:
    if plugin == "AWSKeyDetector" and index > 0:
        return "aws-secret-key"
    name = _KIND_NAMES.get(plugin)
    if name is None:
        name = re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")
    return name


def _plugin_files() -> list[Path]:
    spec = importlib.util.find_spec("detect_secrets")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "plugins"
    return sorted(folder.glob("*.py"))


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mdsessions" / "detect-secrets-patterns.json"


def _import_patterns() -> list[list[Any]]:
    """Each pattern of detect-secrets' pattern plugins: [plugin, kind, regex, flags, group]."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    out: list[list[Any]] = []
    classes: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
    for cls in sorted(classes, key=lambda c: c.__name__):
        name = cls.__name__
        if not issubclass(cls, RegexBasedDetector) or name in _SKIPPED_PLUGINS:
            continue
        for index, regex in enumerate(cls().denylist):
            kind = _kind_of(name, str(cls.secret_type), index)
            group = name in _GROUP_IS_SECRET and regex.groups >= 1
            out.append([name, kind, regex.pattern, int(regex.flags), group])
    return out


def detect_secrets_patterns() -> list[tuple[str, str, str, int, bool]]:
    """The patterns of detect-secrets' pattern plugins (entropy and keyword plugins left out).

    Read from the cache file when it matches the installed plugin files, else imported from
    detect-secrets and cached (a cache that cannot be written is skipped).

    Returns:
        ``(plugin class, kind, regex, re flags, first group is the secret)`` per pattern.
    """
    stamp = [[p.name, st.st_size, st.st_mtime_ns] for p in _plugin_files() for st in [p.stat()]]
    cache = _cache_file()
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("format") == _CACHE_FORMAT and data.get("stamp") == stamp:
            return [tuple(row) for row in data["patterns"]]
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        pass
    patterns = _import_patterns()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        payload = {"format": _CACHE_FORMAT, "stamp": stamp, "patterns": patterns}
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass
    return [tuple(row) for row in patterns]


_builtin: list[_Pattern] | None = None
_builtin_lock = threading.Lock()


def _builtin_patterns() -> list[_Pattern]:
    """Our own patterns, then detect-secrets' (compiled once per process, ~10 ms)."""
    global _builtin
    with _builtin_lock:
        if _builtin is not None:
            return _builtin
        patterns = []
        for kind, regex in OWN_PATTERNS.items():
            needles, run = _GATES.get(("own", kind), ((), 0))
            patterns.append(_Pattern(kind, re.compile(regex), False, needles, run))
        seen: dict[str, int] = {}
        for plugin, kind, regex, flags, group in detect_secrets_patterns():
            index = seen[plugin] = seen.get(plugin, -1) + 1
            needles, run = _GATES.get((plugin, index), ((), 0))
            near = _NEAR.get((plugin, index), "")
            patterns.append(
                _Pattern(
                    kind,
                    re.compile(regex, flags),
                    group,
                    needles,
                    run,
                    re.compile(near.encode()) if near else None,
                    near != near.lower(),
                    _EXACT.get((plugin, index), 0),
                    _SHAPES.get((plugin, index), b""),
                )
            )
        _builtin = patterns
        return patterns


def _compile_extra(patterns: Mapping[str, str]) -> list[_Pattern]:
    out = []
    for kind, regex in patterns.items():
        if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
            raise ValueError(
                f"redaction pattern name {kind!r}: expected lowercase letters, digits and '-' "
                "(it becomes the marker's kind)"
            )
        if not isinstance(regex, str) or not regex:
            raise ValueError(f"redaction pattern {kind!r}: expected a regular expression string")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise ValueError(
                f"redaction pattern {kind!r}: invalid regular expression: {exc}"
            ) from None
        if compiled.search(""):
            raise ValueError(f"redaction pattern {kind!r} matches the empty text")
        out.append(_Pattern(kind, compiled, False))
    return out


@dataclass
class Redactor:
    """Finds secrets in text and replaces each with ``[REDACTED:<kind>]``.

    Args:
        extra: More patterns, kind → regex (the ``[redaction.patterns]`` of a store).
        enabled: ``False``: :meth:`redact` returns texts unchanged (a store's opt-out);
            :meth:`find` still finds (``mdsessions scan`` uses it).

    Raises:
        ValueError: An extra pattern's kind is not lowercase letters, digits and ``-``, or
            its regex does not compile or matches the empty text.

    Example:
        >>> Redactor().redact("key AKIAIOSFODNN7EXAMPLE here")
        'key [REDACTED:aws-access-key] here'
    """

    extra: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    _extra: list[_Pattern] = field(init=False, repr=False)
    _all: list[_Pattern] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        # Only the extra patterns are compiled now (they are checked when a store opens);
        # the built-in ones once per process, on first use (see _builtin_patterns).
        self._extra = _compile_extra(self.extra)

    @property
    def _patterns(self) -> list[_Pattern]:
        if self._all is None:
            self._all = _builtin_patterns() + self._extra
        return self._all

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where the secrets of a text are: merged, sorted ``(start, end, kind)`` spans."""
        found: list[tuple[int, int, str]] = []
        # The gates read the text as lowercased UTF-8 bytes: the needles are ASCII, and a
        # bytes search is several times faster than one in a non-ASCII str.
        raw = text.encode("utf-8", "surrogatepass")
        data = raw.lower()
        present: dict[str, bool] = {}
        # Token characters as "a", the rest as " ": a run of N token characters is then a
        # substring search (~10 µs for 20 KB), cheaper than the needles, so it comes first.
        shape = b" " + data.translate(_SHAPE) + b" "
        has: dict[bytes, bool] = {}
        for pattern in self._patterns:
            skip = False
            for want in pattern.shapes:
                known = has.get(want)
                if known is None:
                    known = has[want] = want in shape
                if not known:
                    skip = True
                    break
            if skip:
                continue
            if pattern.needles:
                passed = True
                for group in pattern.needles:
                    hit = False
                    for needle in group:
                        known = present.get(needle)
                        if known is None:
                            # A needle with capitals is looked for as written.
                            hay = data if needle == needle.lower() else raw
                            known = present[needle] = needle.encode() in hay
                        if known:
                            hit = True
                            break
                    if not hit:
                        passed = False
                        break
                if not passed:
                    continue
            if pattern.near is not None and not pattern.near.search(
                raw if pattern.near_raw else data
            ):
                continue
            for match in pattern.regex.finditer(text):
                if pattern.group and match.lastindex:
                    start, end = match.span(1)
                else:
                    start, end = match.span()
                if end <= start:
                    continue
                if pattern.kind == "password-in-url" and _STAND_IN_PASSWORD.fullmatch(
                    text, start, end
                ):
                    continue
                if text[end - 1].isalnum() or text[end - 1] in "_-":
                    tail = _TOKEN_TAIL.match(text, end)
                    end = tail.end() if tail else end
                found.append((start, end, pattern.kind))
        if not found:
            return found
        # Earliest first, then longest: the first pattern to cover a place names its kind.
        found.sort(key=lambda s: (s[0], -s[1]))
        merged = [found[0]]
        for start, end, kind in found[1:]:
            last = merged[-1]
            if start < last[1]:
                if end > last[1]:
                    merged[-1] = (last[0], end, last[2])
            else:
                merged.append((start, end, kind))
        return merged

    def find(self, text: str) -> list[Finding]:
        """The secrets of a text: kind and place, never the secret.

        Args:
            text: Any text.

        Returns:
            One :class:`Finding` per secret, in order.
        """
        out = []
        for start, end, kind in self.spans(text):
            out.append(
                Finding(kind=kind, start=start, end=end, line=text.count("\n", 0, start) + 1)
            )
        return out

    def redact(self, text: str) -> str:
        """The text with each secret replaced by ``[REDACTED:<kind>]`` (unchanged when disabled).

        Args:
            text: Any text.

        Returns:
            The redacted text (the same object when there is no secret).
        """
        if not self.enabled or not text:
            return text
        spans = self.spans(text)
        if not spans:
            return text
        parts = []
        at = 0
        for start, end, kind in spans:
            parts.append(text[at:start])
            parts.append(f"[REDACTED:{kind}]")
            at = end
        parts.append(text[at:])
        return "".join(parts)

    def redact_bytes(self, data: bytes) -> bytes:
        """:meth:`redact` of bytes: UTF-8, undecodable bytes kept as they are."""
        if not self.enabled or not data:
            return data
        text = data.decode("utf-8", "surrogateescape")
        redacted = self.redact(text)
        if redacted is text:
            return data
        return redacted.encode("utf-8", "surrogateescape")


_lock = threading.Lock()
_registered: dict[str, str] = {}
_default: Redactor | None = None


def register_patterns(patterns: Mapping[str, str]) -> None:
    """Add a store's configured patterns to the process's default redactor.

    Errors and logs are not tied to one store; they are redacted with the built-in patterns
    and those of every store this process opened.

    Args:
        patterns: kind → regex (already checked by :class:`Redactor`).
    """
    global _default
    new = {k: v for k, v in patterns.items() if _registered.get(k) != v}
    if not new:
        return
    with _lock:
        _registered.update(new)
        _default = None


def default_redactor() -> Redactor:
    """The redactor of errors and logs: built-in patterns plus every registered one."""
    global _default
    current = _default
    if current is None:
        with _lock:
            current = _default
            if current is None:
                current = _default = Redactor(extra=dict(_registered))
    return current


def redact(text: str) -> str:
    """``text`` with each secret replaced by ``[REDACTED:<kind>]`` (:func:`default_redactor`).

    Args:
        text: Any text bound for a commit, a log or an error.

    Returns:
        The redacted text.

    Example:
        >>> redact("postgres://app:hunter2secret@db.example.com/app")
        'postgres://app:[REDACTED:password-in-url]@db.example.com/app'
    """
    return default_redactor().redact(text)


def configured(table: Any, *, where: str = "mdsessions.toml") -> Redactor:
    """The redactor a store's ``[redaction]`` table asks for.

    The table (all keys optional)::

        [redaction]
        enabled = true                      # false: commits are not redacted (opt-out)
        [redaction.patterns]
        internal-token = "itk_[a-z0-9]{32}" # kind = regex; a match → [REDACTED:internal-token]

    Args:
        table: The parsed ``[redaction]`` table, or ``None``.
        where: The file named in errors.

    Returns:
        The store's redactor (its patterns are also registered for errors and logs).

    Raises:
        ValueError: ``enabled`` is not true/false, ``patterns`` is not a table, or a
            pattern is invalid (the message names the key and what was expected).
    """
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: [redaction] must be a table")
    unknown = sorted(set(table) - {"enabled", "patterns"})
    if unknown:
        raise ValueError(
            f"{where}: [redaction] has unknown key {unknown[0]!r}; expected 'enabled' or 'patterns'"
        )
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}: [redaction] enabled must be true or false, got {enabled!r}")
    patterns = table.get("patterns", {})
    if not isinstance(patterns, Mapping):
        raise ValueError(f'{where}: [redaction.patterns] must be a table of kind = "regex"')
    try:
        redactor = Redactor(extra=dict(patterns), enabled=enabled)
    except ValueError as exc:
        raise ValueError(f"{where}: [redaction.patterns] {exc}") from None
    register_patterns(redactor.extra)
    return redactor


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (and its arguments) in place.

    Attach it to a handler (a logger's filters do not see its children's records)::

        handler.addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record.msg`` with its arguments merged; always keep the record."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def markers(text: str) -> Iterable[str]:
    """The kinds of the ``[REDACTED:<kind>]`` markers in a text, in order."""
    return [m.group()[10:-1] for m in MARKER_RE.finditer(text)]
