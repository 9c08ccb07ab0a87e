"""Safe by default: where the desk binds, who may use it, which requests it accepts.

* **Bind.** ``127.0.0.1`` unless told otherwise; any other address requires a token
  (:func:`needs_token`), generated and printed at start when none is given.
* **Token.** With a token, every request carries it: ``?token=…`` once (the answer sets an
  ``HttpOnly``, ``SameSite=Strict`` cookie and redirects to the URL without it), the cookie, or
  ``Authorization: Bearer …``. Without it the answer is 401. Tokens are compared in constant
  time.
* **Host.** The ``Host`` header must name the address the desk serves (or ``localhost``), so a
  page of another site cannot reach it through DNS rebinding.
* **CSRF.** Every form carries the server's CSRF token (random per run, compared in constant
  time); a POST without it, or whose ``Origin`` is another site, is refused with 403.
* **Headers.** A Content-Security-Policy that allows scripts, styles and connections from the
  desk itself only (no inline script), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer`` (a token in a URL never leaks) and ``frame-ancestors 'none'``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSP",
    "COOKIE",
    "SecurityMiddleware",
    "check_csrf",
    "needs_token",
    "new_secret",
]

COOKIE = "mdsessions_token"
"""The cookie that carries the access token after the first ``?token=`` visit."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The Content-Security-Policy of every answer: nothing inline, nothing from elsewhere."""


def new_secret() -> str:
    """A fresh random token (32 bytes of ``secrets``, URL-safe text)."""
    return secrets.token_urlsafe(32)


def needs_token(host: str) -> bool:
    """Whether binding to ``host`` requires a token (every address but loopback).

    Args:
        host: The bind address, e.g. ``127.0.0.1``, ``::1``, ``localhost``, ``0.0.0.0``.

    Returns:
        False for loopback addresses and ``localhost``, True otherwise.
    """
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: it may resolve to anything


def check_csrf(expected: str, given: str | None) -> bool:
    """Whether a form's CSRF field matches the server's token (constant-time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


class SecurityMiddleware:
    """ASGI middleware enforcing the token, the Host header and the response headers.

    Args:
        app: The application to protect.
        hosts: The ``Host`` header values accepted (``host:port`` forms and bare hosts).
        token: The access token, or ``None`` when the desk is bound to loopback only.
    """

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str], token: str | None) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 400/401/403 itself, or pass the request on and add the security headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "").lower()
        if self.hosts and host not in self.hosts:
            await _plain(send, 400, f"unexpected Host header {host!r}")
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                location = scope.get("path", "/") + (f"?{rest}" if rest else "")
                await _redirect_with_cookie(send, location, self.token)
                return
            if not self._authorized(headers):
                await _plain(send, 401, "this desk needs its token: open the URL it printed")
                return
        if scope["method"] == "POST":
            origin = headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc.lower() != host:
                await _plain(send, 403, "a form from another site is refused")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), expected):
            return True
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), expected)


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(send: Send, location: str, token: str) -> None:
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"content-length", b"0"),
                (b"referrer-policy", b"no-referrer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
