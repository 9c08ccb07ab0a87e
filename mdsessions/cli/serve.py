# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``serve``: the review desk in the browser (extra ``mdsessions[web]``)."""

from __future__ import annotations

import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import click

from mdsessions.cli.app import fail, open_store, store_option

if TYPE_CHECKING:
    from mdsessions.web import ChangeFeed

__all__ = ["serve_command"]

MISSING_EXTRA = "mdsessions serve needs the web extra: pip install 'mdsessions[web]'"
"""The error when Starlette, uvicorn or another web dependency is not installed."""


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free port the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        fail(f"--host {host}: cannot resolve it ({exc.strerror})")
    sock = socket.socket(infos[0][0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(infos[0][4])
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _hosts(host: str, port: int) -> tuple[str, ...]:
    """The ``Host`` header values the desk accepts (``name:port``).

    The bound address and the loopback names; on a wildcard bind (``0.0.0.0``, ``::``),
    also this machine's host name and addresses, by which other machines reach it.
    """
    names = [host, "localhost", "127.0.0.1", "::1"]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - the wildcard is what we look for
        names += [socket.gethostname(), socket.getfqdn()]
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
        except OSError:
            infos = []
        names += [str(info[4][0]) for info in infos]
    shown = (f"[{name}]" if ":" in name else name for name in names)
    return tuple(dict.fromkeys(f"{name.lower()}:{port}" for name in shown))


@click.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The port (0: a free one; the URL printed says which).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="The address to listen on; any but loopback requires a token.",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help="The access token (default: none on loopback, a random one printed otherwise).",
)
@click.option(
    "--reviewer",
    metavar='"NAME <EMAIL>"',
    help="The reviewer the decision form offers (default: the store's git user).",
)
@store_option()
@click.pass_context
def serve_command(
    ctx: click.Context, port: int, host: str, token: str | None, reviewer: str | None
) -> None:
    """Review in the browser: the inbox, phases beside the decision form, live.

    Serves the store on http://HOST:PORT/ until interrupted (Ctrl-C or SIGTERM).
    The first line printed is the URL to open. A decision made on the page is the
    same file edit and the same commit as a review in your editor. Binding to an
    address other than loopback requires a token: a random one is generated and
    printed in the URL unless --token gives one. Needs the web extra:
    pip install 'mdsessions[web]'.

    \b
    Example:
        mdsessions serve
        mdsessions serve --port 0 --reviewer "Ann <ann@example.com>"
        mdsessions serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    try:
        import uvicorn

        from mdsessions.web import create_app, needs_token, new_secret
    except ImportError:
        fail(MISSING_EXTRA)
    from mdsessions import Identity

    if reviewer is not None:
        try:
            reviewer = str(Identity.parse(reviewer).checked())
        except ValueError as exc:
            fail(f"--reviewer: {exc}")
    if token is not None and not token.strip():
        fail("--token: expected a non-empty token")
    if token is None and needs_token(host):
        token = new_secret()
    store = open_store(ctx)
    sock = _bind(host, port)
    port = int(sock.getsockname()[1])
    app = create_app(store, hosts=_hosts(host, port), token=token, reviewer=reviewer)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    stops: list[int] = []
    server = _server(config, app.state.desk.feed, stops, f"Serving {url}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if signal.SIGINT in stops:
        raise KeyboardInterrupt  # "Interrupted", exit status 130, as every command


def _server(config: Any, feed: ChangeFeed | None, stops: list[int], ready: str) -> Any:
    """The uvicorn server: says ``ready`` once serving; its stop ends the ``/events`` streams.

    The line is printed (and flushed) when the application has started (the store's
    watcher runs, the inbox is read) and connections are accepted, so whoever reads it
    can use the URL at once.

    uvicorn waits for open connections before it stops; an event stream stays open for as
    long as its page does, so the streams are ended as soon as a stop is asked for
    (Ctrl-C, SIGTERM). The signals are noted in ``stops`` and not raised again after the
    stop (uvicorn's own handler would, and SIGTERM would then kill the process instead of
    letting it exit 0).
    """
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                click.echo(ready)
                sys.stdout.flush()

        def handle_exit(self, sig: int, frame: Any) -> None:
            stops.append(sig)
            if feed is not None:
                feed.end_streams()
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop without waiting
            else:
                self.should_exit = True

    return Server(config)
