"""Fifty known secret formats (fake values of the real shapes), for the redaction tests.

Each sample is ``(kind the marker should name, the secret)``; the values are made from a
seeded random generator so they look like real keys and are the same on every run. None is
a real credential.
"""

from __future__ import annotations

import base64
import json
import random
import string

__all__ = ["SAMPLES", "leaks", "pieces"]

_rng = random.Random(20261203)
_ALNUM = string.ascii_letters + string.digits
_UPPER = string.ascii_uppercase + string.digits
_HEX = "0123456789abcdef"
_B64 = _ALNUM + "+/"


def _r(n: int, chars: str = _ALNUM) -> str:
    return "".join(_rng.choice(chars) for _ in range(n))


def _jwt(alg: str) -> str:
    def part(obj: dict[str, object]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = part({"alg": alg, "typ": "JWT"})
    payload = part({"sub": _r(10), "name": "Jane Doe", "iat": 1700000000})
    return f"{header}.{payload}.{_r(43, _ALNUM + '-_')}"


def _pem(label: str, lines: int = 6) -> str:
    body = "\n".join(_r(64, _B64) for _ in range(lines))
    return f"-----BEGIN {label}-----\n{body}\n{_r(20, _B64)}==\n-----END {label}-----"


SAMPLES: list[tuple[str, str]] = [
    # AWS
    ("aws-access-key", "AKIA" + _r(16, _UPPER)),
    ("aws-access-key", "ASIA" + _r(16, _UPPER)),
    ("aws-access-key", "ABIA" + _r(16, _UPPER)),
    ("aws-secret-key", f'aws_secret_access_key = "{_r(40, _ALNUM + "/+")}"'),
    # GCP
    ("gcp-api-key", "AIza" + _r(35, _ALNUM + "-_")),
    ("gcp-oauth-token", "ya29." + _r(120, _ALNUM + "-_")),
    ("gcp-oauth-client-secret", "GOCSPX-" + _r(28, _ALNUM + "-_")),
    ("private-key", _pem("PRIVATE KEY", 8)),  # a service account's private_key
    # GitHub
    ("github-token", "ghp_" + _r(36)),
    ("github-token", "gho_" + _r(36)),
    ("github-token", "ghu_" + _r(36)),
    ("github-token", "ghs_" + _r(36)),
    ("github-token", "ghr_" + _r(36)),
    ("github-token", "github_pat_" + _r(22) + "_" + _r(59)),
    # Slack
    ("slack-token", f"xoxb-{_r(12, string.digits)}-{_r(13, string.digits)}-{_r(24)}"),
    (
        "slack-token",
        "xoxp-" + "-".join(_r(n, string.digits) for n in (12, 12, 13)) + "-" + _r(32, _HEX),
    ),
    ("slack-token", f"xoxa-2-{_r(12, string.digits)}-{_r(12, string.digits)}-{_r(32, _HEX)}"),
    ("slack-token", f"xapp-1-A{_r(10, _UPPER)}-{_r(13, string.digits)}-{_r(64, _HEX)}"),
    ("slack-token", f"https://hooks.slack.com/services/T{_r(8, _UPPER)}/B{_r(8, _UPPER)}/{_r(24)}"),
    # Stripe
    ("stripe-key", "sk_live_" + _r(24)),
    ("stripe-key", "sk_live_" + _r(99)),
    ("stripe-key", "rk_live_" + _r(99)),
    ("stripe-key", "sk_test_" + _r(99)),
    # OpenAI
    ("openai-api-key", "sk-proj-" + _r(74, _ALNUM + "-_") + "T3BlbkFJ" + _r(74, _ALNUM + "-_")),
    ("openai-api-key", "sk-" + _r(20) + "T3BlbkFJ" + _r(20)),
    ("openai-api-key", "sk-svcacct-" + _r(74, _ALNUM + "-_") + "T3BlbkFJ" + _r(40)),
    ("openai-api-key", "sk-admin-" + _r(60, _ALNUM + "-_")),
    # Anthropic
    ("anthropic-api-key", "sk-ant-api03-" + _r(93, _ALNUM + "-_") + "-" + _r(6) + "AA"),
    ("anthropic-api-key", "sk-ant-admin01-" + _r(93, _ALNUM + "-_") + "AA"),
    ("anthropic-api-key", "sk-ant-oat01-" + _r(80, _ALNUM + "-_")),
    # JWTs
    ("jwt", _jwt("HS256")),
    ("jwt", _jwt("RS256")),
    ("jwt", _jwt("ES384")),
    # Private-key blocks
    ("private-key", _pem("RSA PRIVATE KEY")),
    ("private-key", _pem("EC PRIVATE KEY", 3)),
    ("private-key", _pem("OPENSSH PRIVATE KEY", 7)),
    ("private-key", _pem("DSA PRIVATE KEY", 4)),
    ("private-key", _pem("ENCRYPTED PRIVATE KEY", 5)),
    ("private-key", _pem("PGP PRIVATE KEY BLOCK", 5)),
    # Passwords in URLs
    ("password-in-url", f"postgres://app:{_r(18)}@db.internal:5432/app"),
    ("password-in-url", f"mysql://root:{_r(14)}@127.0.0.1/shop"),
    ("password-in-url", f"https://deploy:{_r(22)}@git.example.com/org/repo.git"),
    ("password-in-url", f"redis://default:{_r(30)}@cache.example.com:6379/0"),
    ("password-in-url", f"mongodb+srv://admin:{_r(16)}@cluster0.abcde.mongodb.net/db"),
    ("password-in-url", f"amqp://guest:{_r(12)}@mq.example.com:5672/"),
    # Others detect-secrets knows
    ("gitlab-token", "glpat-" + _r(20, _ALNUM + "-_")),
    ("sendgrid-api-key", f"SG.{_r(22, _ALNUM + '-_')}.{_r(43, _ALNUM + '-_')}"),
    ("huggingface-token", "hf_" + _r(34)),
    ("npm-token", "//registry.npmjs.org/:_authToken=npm_" + _r(36)),
    ("azure-storage-account-access-key", "AccountKey=" + _r(86, _ALNUM + "+/") + "=="),
]
"""The fifty samples: ``(kind, secret)``."""

assert len(SAMPLES) == 50, len(SAMPLES)


def _bodies(secret: str) -> list[str]:
    """The secret parts of a sample: a URL's password, a quoted value, a key block's lines."""
    if "://" in secret and "@" in secret:
        return [secret.split("@", 1)[0].rsplit(":", 1)[1]]
    if '"' in secret:
        return [secret.split('"')[1]]
    if secret.startswith("-----BEGIN"):
        return [line for line in secret.splitlines()[1:-1]]
    return [secret]


def pieces(secret: str) -> list[str]:
    """Parts of a secret none of which may appear anywhere: every 12 characters of its body.

    A known prefix (``AKIA``, ``ghp_``) is no leak, so windows start after 4 characters of
    a token; a password or a key block's line is secret from its first character.
    """
    out = []
    for body in _bodies(secret):
        first = 4 if body == secret else 0
        out.extend(body[i : i + 12] for i in range(first, max(first + 1, len(body) - 11)))
    return out


def leaks(text: str) -> list[str]:
    """The samples (their kinds and first characters) any piece of which appears in ``text``."""
    found = []
    for kind, secret in SAMPLES:
        if any(body in text for body in _bodies(secret)) or any(p in text for p in pieces(secret)):
            found.append(f"{kind}: {secret[:14]}…")
    return found
