# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""The reviewer's loop: ``edits``, ``record``, ``inbox``, ``review`` and ``watch``."""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from pathlib import PurePath
from typing import TYPE_CHECKING

import click

from mdsessions.cli.app import author_option, fail, json_option, open_store, store_option
from mdsessions.cli.args import store_rel
from mdsessions.cli.output import age, display_path, echo_model, note, table

if TYPE_CHECKING:
    from mdsessions import Session, Store

__all__ = ["edits_command", "inbox_command", "record_command", "review_command", "watch_command"]


@click.command("edits")
@json_option()
@store_option()
@click.pass_context
def edits_command(ctx: click.Context, as_json: bool) -> None:
    """List files people edited and have not recorded yet, and whether they validate.

    \b
    Example:
        mdsessions edits
        mdsessions edits --json
    """
    store = open_store(ctx)
    edits = store.unrecorded_edits()
    if as_json:
        echo_model(edits)
        return
    if not edits:
        note("no unrecorded edits")
    for e in edits:
        click.echo(f"{e.change:<9} {display_path(store, e.path)}")
        if e.error:
            click.echo(f"          {click.style('invalid:', fg='red')} {e.error}")


@click.command("record")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@author_option("The person who edited (default: the feedback's reviewer, else git's user).")
@click.option("-m", "--message", metavar="MSG", help="Commit subject.")
@json_option()
@store_option()
@click.pass_context
def record_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    author: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Record people's edits (all, or the PATHs) as one commit by that person.

    A feedback file's decision is applied to the session. Files that do not
    validate stay on disk uncommitted and are listed with their error (exit
    status 1).

    \b
    Example:
        mdsessions record
        mdsessions record projects/demo/sessions/s1/phase_1_concept/user_feedback.md \\
            --author "Ann <ann@example.com>"
    """
    store = open_store(ctx)
    wanted = [store_rel(store, p) for p in paths] if paths else None
    edits = store.unrecorded_edits()
    if wanted is not None:
        unmatched = sorted(set(wanted) - {e.path for e in edits})
        if unmatched:
            fail(f"{', '.join(unmatched)}: no unrecorded edit there (see: mdsessions edits)")
    before = [e for e in edits if wanted is None or e.path in wanted]
    sha, rejected = store.record_edits(wanted, author=author, message=message)
    left = {e.path for e in rejected}
    recorded = [e for e in before if e.path not in left] if sha else []
    if as_json:
        from mdsessions.cli.schemas import RecordResult

        echo_model(RecordResult(commit=sha, recorded=recorded, unrecorded=rejected))
    else:
        if sha:
            click.echo(f"recorded {len(recorded)} file(s) in {sha[:10]}")
            for e in recorded:
                click.echo(f"  {e.change:<9} {display_path(store, e.path)}")
        elif not rejected:
            note("nothing to record")
        for e in rejected:
            click.echo(f"not recorded: {display_path(store, e.path)}: {e.error}", err=True)
    if rejected:
        fail(f"{len(rejected)} file(s) not recorded: they do not validate (fix and record again)")


@click.command("inbox")
@click.option("--project", metavar="PROJECT", help="Only this project's sessions.")
@click.option("--paused", is_flag=True, help="Include paused sessions (left out by default).")
@click.option("--archived", is_flag=True, help="The archived sessions' waiting phases instead.")
@json_option()
@store_option()
@click.pass_context
def inbox_command(
    ctx: click.Context, project: str | None, paused: bool, archived: bool, as_json: bool
) -> None:
    """Every phase awaiting review across the store, oldest first.

    Shows the project, session, phase, how long it has waited, the feedback file
    to edit and the outputs to read. Paused sessions are left out unless --paused.

    \b
    Example:
        mdsessions inbox
        mdsessions inbox --project demo --paused --json
    """
    store = open_store(ctx)
    if archived:
        from mdsessions import history

        items = history.archived_inbox(store, project)
    else:
        items = store.inbox(project, paused=paused)
    if as_json:
        echo_model(items)
        return
    hidden = 0 if paused or archived else len(store.inbox(project, paused=True)) - len(items)
    if hidden:
        click.echo(
            f"{hidden} phase(s) of paused sessions not shown (--paused shows them)", err=True
        )
    if not items:
        note("nothing awaits review")
        return
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = []
    for i in items:
        waited = "-" if i.waiting_since is None else age(now - i.waiting_since)
        rows.append((f"{i.project_id}/{i.session_id}", str(i.phase), i.phase_name, waited))
    click.echo(table(("session", "phase", "name", "waiting"), rows, right=(1,)))
    for i in items:
        click.echo(f"\n{i.project_id}/{i.session_id} phase {i.phase}:")
        click.echo(f"  review  {display_path(store, i.feedback)}")
        for out in i.outputs:
            click.echo(f"  read    {display_path(store, out)}")


@click.command("review")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int, required=False)
@click.option("--editor", metavar="CMD", help="The editor (default: $VISUAL, then $EDITOR).")
@click.option(
    "--print", "print_outputs", is_flag=True, help="Print the outputs' text before opening."
)
@author_option("The reviewer (default: the file's reviewer, else git's user.name/user.email).")
@store_option()
@click.pass_context
def review_command(
    ctx: click.Context,
    session_ref: str,
    phase: int | None,
    editor: str | None,
    print_outputs: bool,
    author: str | None,
) -> None:
    """Open a phase's user_feedback.md in your editor; record your decision on save.

    PHASE defaults to the phase awaiting review. The phase's outputs open beside
    the feedback file when the editor takes several files (vim and nvim side by
    side with -O, emacs, code, subl); with another editor their paths are
    printed first, and --print prints their text. After the editor closes, the
    file is validated and committed as you (git's identity, or --author), and the
    decision is printed; run the session again to go on. An invalid edit is
    reported with file, line and reason and kept in place to fix: run review again.

    \b
    Example:
        mdsessions review demo/s1
        EDITOR=nano mdsessions review demo/s1 3 --print --author "Ann <ann@example.com>"
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    if phase is None:
        waiting = [p.number for p in session.manifest().phases if p.review.value == "pending"]
        if not waiting:
            fail(f"no phase of {session.ref} awaits review; name the PHASE to review")
        phase = waiting[0]
    rel = session.document_rel(phase, "feedback")
    path = store.root / rel
    if not path.is_file():
        fail(f"{rel} does not exist yet: phase {phase} has not reached its review")
    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR")
    outputs = _phase_outputs(store, session, phase, print_outputs)
    files = [str(path)]
    beside = _beside_command(command) if outputs else None
    if beside is not None:
        files += [str(store.root / out) for out in outputs]
    else:
        for out in outputs:
            click.echo(f"read    {display_path(store, out)}")
    try:
        click.edit(filename=files, editor=beside or command)
    except click.ClickException as exc:
        fail(f"could not start the editor {command or '(default)'}: {exc.format_message()}")
    sha = session.record_feedback(phase, author=author)
    if beside is not None:
        edited = {e.path for e in store.unrecorded_edits()}
        for out in (o for o in outputs if o in edited):
            note(f"{display_path(store, out)} edited: `mdsessions record` records it as yours")
    feedback = session.feedback(phase)
    assert feedback is not None
    decision = feedback.decision().value
    if sha is None:
        click.echo(f"{display_path(store, rel)}: unchanged; phase {phase} is still {decision}")
        return
    click.echo(f"phase {phase} of {session.ref}: {decision} (recorded in {sha[:10]})")
    status = session.status.value
    if status in ("in_progress", "awaiting_review"):
        click.echo(f"next: mdsessions run {session.ref}")
    else:
        click.echo(f"session {status}")


# Editors known to open several files at once, and the options that lay them side by side.
_SEVERAL_FILES: dict[str, tuple[str, ...]] = {
    "vim": ("-O",),
    "nvim": ("-O",),
    "gvim": ("-O",),
    "mvim": ("-O",),
    "emacs": (),
    "emacsclient": (),
    "code": (),
    "codium": (),
    "subl": (),
}
_VIM_LAYOUTS = ("-o", "-O", "-p")


def _beside_command(command: str | None) -> str | None:
    """The editor command that opens the feedback with the outputs beside it, or ``None``.

    ``None`` when the editor is not known to take several files (the default editor, a
    command that does not split as a shell would, any other program).
    """
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or PurePath(words[0]).name not in _SEVERAL_FILES:
        return None
    extra = _SEVERAL_FILES[PurePath(words[0]).name]
    if extra and any(w.startswith(_VIM_LAYOUTS) for w in words[1:]):
        extra = ()  # the person chose a layout already
    return shlex.join([*words, *extra])


def _phase_outputs(store: Store, session: Session, phase: int, print_text: bool) -> list[str]:
    """The store-relative paths of a phase's outputs (their text echoed with ``print_text``)."""
    from mdsessions import MdsessionsError

    try:
        found = session.outputs([phase]).get(phase, {})
    except MdsessionsError as exc:  # an output a person broke: review the feedback anyway
        click.echo(f"warning: the outputs cannot be read: {exc}", err=True)
        return []
    folder = session.phase_rel(phase)
    paths = [f"{folder}/{name}.md" for name in found]
    if print_text:
        for out, doc in zip(paths, found.values(), strict=True):
            click.echo(f"==> {display_path(store, out)} <==")
            click.echo(doc.content, nl=not doc.content.endswith("\n"))
            click.echo()
    return paths


@click.command("watch")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after SECONDS (default: until interrupted).",
)
@author_option("The reviewer to record edits as (default: as for record).")
@store_option()
@click.pass_context
def watch_command(ctx: click.Context, timeout: float | None, author: str | None) -> None:
    """Record every saved user_feedback.md edit as it happens, until interrupted.

    Each save is validated and committed as the reviewer within a second; an
    invalid file is reported with file, line and reason and left to fix.

    \b
    Example:
        mdsessions watch
        mdsessions watch --timeout 3600 --author "Ann <ann@example.com>"
    """
    from mdsessions import FeedbackEvent, FeedbackWatcher

    store = open_store(ctx)

    def report(event: FeedbackEvent) -> None:
        where = display_path(store, event.path)
        if event.error:
            click.echo(f"not recorded: {event.error}", err=True)
        else:
            assert event.commit is not None
            click.echo(f"recorded {where} in {event.commit[:10]}")

    with FeedbackWatcher(store, on_event=report, author=author) as watcher:
        note(f"watching {store.root} for feedback edits (Ctrl-C to stop)")
        watcher.wait(lambda: False, timeout)
