# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Command line for history, time travel, backups and remotes (:mod:`mdsessions.history`).

``register(cli)`` adds ``versions``, ``diff``, ``restore``, ``fork``, ``backup``
(``create``/``list``/``prune``/``restore``), ``remote`` (``add``/``list``/``remove``),
``clone``, ``push``, ``pull``, ``sync``, ``set-aside``, ``verify`` and ``maintenance`` to the
``mdsessions`` group.
Each command parses its options, makes one call into :mod:`mdsessions.history` and formats
the result (``--json`` on every command that reports). The library, and the shared helpers of
``mdsessions.cli``, are imported when commands are built or run, never at import time, so
this module can be imported from ``cli.py`` (and before it) without a cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

__all__ = ["register"]


def register(group: click.Group) -> None:
    """Add the history commands to the ``mdsessions`` group.

    Args:
        group: The group (``mdsessions.cli.cli``).

    Example:
        ::

            from mdsessions.cli.history import register
            register(cli)
    """
    for command in _commands():
        group.add_command(command)


class _Progress:
    """git's progress as click progress bars on stderr, when stderr is a terminal.

    Not on a terminal (a log, a pipe, a test) nothing is drawn at all.
    """

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bar: Any = None
        self.stage: str | None = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled or total is None or total <= 0:
            return
        if stage != self.stage:
            self.close()
            self.bar = click.progressbar(length=total, label=stage, file=sys.stderr)
            self.bar.__enter__()
            self.stage, self.done = stage, 0
        self.bar.update(max(0, done - self.done))
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _commands() -> list[click.Command]:
    """Build the commands (the shared helpers of ``mdsessions.cli`` imported here, lazily)."""
    from mdsessions.cli.main import (
        MdsessionsGroup,
        author_option,
        document_rel,
        echo_json,
        fail,
        json_option,
        open_store,
        short_time,
        store_option,
        styled,
        table,
    )

    def keep_options(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option(
            "--fork-theirs",
            metavar="NEW_ID",
            help="On a conflict: keep mine, add the remote's version of the session as NEW_ID.",
        )(func)
        return click.option(
            "--keep",
            type=click.Choice(["mine", "theirs"]),
            help="On a conflict (a session changed on both sides): keep this side's version.",
        )(func)

    # ---------------------------------------------------------------------------- versions

    @click.command("versions")
    @click.argument("session_ref", metavar="SESSION")
    @click.argument("phase_arg", type=int, required=False, metavar="[PHASE]")
    @click.argument("document", required=False, metavar="[DOC]")
    @click.option(
        "--phase", type=int, metavar="N", help="Only commits of phase N (Mdsessions-Phase)."
    )
    @click.option(
        "--kind",
        "kinds",
        multiple=True,
        metavar="KIND",
        help="Only commits of this kind: session, agent-output, checkpoint, feedback, edit, "
        "restore, fork, merge (repeatable).",
    )
    @click.option("--author", metavar="TEXT", help="Only commits whose author contains TEXT.")
    @click.option("--since", metavar="TIME", help="Only commits at or after TIME (UTC ISO-8601).")
    @click.option("--until", metavar="TIME", help="Only commits at or before TIME (UTC ISO-8601).")
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        metavar="N",
        help="Versions per page.",
    )
    @click.option(
        "--offset",
        type=click.IntRange(min=0),
        default=0,
        metavar="N",
        help="Skip N matching versions (the next page's offset is printed).",
    )
    @json_option()
    @store_option()
    @click.pass_context
    def versions_command(
        ctx: click.Context,
        session_ref: str,
        phase_arg: int | None,
        document: str | None,
        phase: int | None,
        kinds: tuple[str, ...],
        author: str | None,
        since: str | None,
        until: str | None,
        limit: int,
        offset: int,
        as_json: bool,
    ) -> None:
        """List the versions (commits) of a session, a phase or a document, newest first.

        With PHASE: the phase folder's history; with PHASE DOC (checkpoint,
        feedback or an agent id): that document's. Filters are applied before
        paging, so --limit/--offset pages stay exact.

        \b
        Example:
            mdsessions versions project-123/session-456 --kind checkpoint --limit 10
            mdsessions versions session-456 1 concept_expansion --json
            mdsessions versions session-456 --phase 3 --since 2024-11-24 --offset 20
        """
        from mdsessions import history

        store = open_store(ctx)
        session = store.find_session(session_ref)
        path = None
        if phase_arg is not None:
            path = (
                document_rel(session, phase_arg, document)
                if document is not None
                else session.phase_rel(phase_arg)
            )
        page = history.versions(
            session,
            path,
            phase=phase,
            kind=list(kinds) or None,
            author=author,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        if as_json:
            echo_json({"session": session.ref, **page.to_json()})
            return
        rows = [
            [
                click.style(v.commit[:10], fg="yellow"),
                short_time(v.time),
                v.kind or "-",
                str(v.phase) if v.phase is not None else "-",
                styled(v.status) if v.status else "-",
                v.author,
                v.subject,
            ]
            for v in page.versions
        ]
        if rows:
            headers = ["commit", "time (UTC)", "kind", "phase", "status", "author", "subject"]
            click.echo(table(headers, rows, right=[3]))
        else:
            click.echo("no versions", err=True)
        if page.next_offset is not None:
            click.echo(f"more: --offset {page.next_offset}", err=True)

    # -------------------------------------------------------------------------------- diff

    @click.command("diff")
    @click.argument("session_ref", metavar="SESSION")
    @click.argument("old", metavar="A")
    @click.argument("new", required=False, default="HEAD", metavar="[B]")
    @click.option("--stat", is_flag=True, help="Print the summary instead of the patch.")
    @json_option()
    @store_option()
    @click.pass_context
    def diff_command(
        ctx: click.Context, session_ref: str, old: str, new: str, stat: bool, as_json: bool
    ) -> None:
        """Compare a session at two checkpoints (commits A and B, default HEAD).

        Prints the unified diff of its markdown; --stat prints a summary instead:
        files added/modified/deleted, phases and their status and review
        transitions, the session's status. --json has both (the patch unless --stat).

        \b
        Example:
            mdsessions diff project-123/session-456 HEAD~5
            mdsessions diff session-456 1a2b3c4d 5e6f7a8b --stat
            mdsessions diff session-456 HEAD~3 --json
        """
        from mdsessions import history

        store = open_store(ctx)
        session = store.find_session(session_ref)
        result = history.diff(session, old, new, patch=not stat)
        if as_json:
            data = result.to_json()
            if stat:
                data.pop("patch")
            echo_json(data)
            return
        if not stat:
            if result.patch:
                click.echo(result.patch, nl=False)
            else:
                click.echo("no changes", err=True)
            return
        lines = [f"{session.ref}  {result.old[:10]}..{result.new[:10]}"]

        def arrow(before: object, after: object) -> str:
            left = "-" if before is None else str(before)
            right = "-" if after is None else str(after)
            return left if left == right else f"{left} -> {right}"

        lines.append(
            f"session  {arrow(result.status_before, result.status_after)}"
            f" (phase {arrow(result.current_phase_before, result.current_phase_after)})"
        )
        cut = len(session.rel) + 1
        for p in result.phases:
            lines.append(
                f"phase {p.phase} {p.name or ''}: {arrow(p.status_before, p.status_after)}, "
                f"review {arrow(p.review_before, p.review_after)}"
            )
            lines += [
                f"  {f.change:<9} {f.path[cut:]}  +{f.insertions} -{f.deletions}" for f in p.files
            ]
        for f in result.files:
            if f.phase is None:
                lines.append(f"  {f.change:<9} {f.path[cut:]}  +{f.insertions} -{f.deletions}")
        plus = sum(f.insertions for f in result.files)
        minus = sum(f.deletions for f in result.files)
        lines.append(f"{len(result.files)} file(s) changed, +{plus} -{minus}")
        click.echo("\n".join(lines))

    # ----------------------------------------------------------------------- restore / fork

    @click.command("restore")
    @click.argument("session_ref", metavar="SESSION")
    @click.argument("commit", metavar="COMMIT")
    @click.option(
        "--phase",
        type=int,
        metavar="N",
        help="Restore phase N (and the phases after it, which build on it) only.",
    )
    @click.option(
        "--force", is_flag=True, help="Overwrite the session's unrecorded edits instead of failing."
    )
    @author_option("Commit author (default: git's user, else the login).")
    @json_option()
    @store_option()
    @click.pass_context
    def restore_command(
        ctx: click.Context,
        session_ref: str,
        commit: str,
        phase: int | None,
        force: bool,
        author: str | None,
        as_json: bool,
    ) -> None:
        """Restore a session (or one phase) to a checkpoint, as a new commit.

        The files as they were at COMMIT are written back and recorded; history
        is never rewritten. With --phase N, phase N and the later phases take
        their state at COMMIT (earlier phases keep theirs) and the runner
        continues from there. Refuses, changing nothing, when the session has
        unrecorded edits, unless --force.

        \b
        Example:
            mdsessions restore project-123/session-456 1a2b3c4d
            mdsessions restore session-456 HEAD~4 --phase 3 --force
        """
        from mdsessions import history

        store = open_store(ctx)
        session = store.find_session(session_ref)
        result = history.restore(session, commit, phase=phase, force=force, author=author)
        if as_json:
            echo_json(result.to_json())
            return
        what = "session" if phase is None else f"phase {phase}"
        if result.commit is None:
            click.echo(f"{session.ref}: {what} already as at {result.target[:8]}; nothing to do")
        else:
            extra = ""
            if len(result.reset_phases) > 1:
                extra = f"; phases {', '.join(map(str, result.reset_phases))} reset"
            click.echo(
                f"{session.ref}: restored {what} to {result.target[:8]} in "
                f"{result.commit[:10]}{extra}; session {result.status}"
            )
        if result.overwritten:
            click.echo("overwrote unrecorded edits: " + ", ".join(result.overwritten), err=True)

    @click.command("fork")
    @click.argument("session_ref", metavar="SESSION")
    @click.argument("new_id", metavar="NEW_ID")
    @click.option("--project", metavar="PROJECT", help="The new session's project (default: same).")
    @click.option(
        "--at", "commit", default="HEAD", show_default=True, metavar="COMMIT", help="Fork as of."
    )
    @author_option("Commit author (default: git's user, else the login).")
    @json_option()
    @store_option()
    @click.pass_context
    def fork_command(
        ctx: click.Context,
        session_ref: str,
        new_id: str,
        project: str | None,
        commit: str,
        author: str | None,
        as_json: bool,
    ) -> None:
        """Fork a session at a checkpoint into a new session id, as one commit.

        The new session holds the files as they were at COMMIT, with its own ids
        and forked_from naming the source; the original is untouched. Prints
        PROJECT/NEW_ID.

        \b
        Example:
            mdsessions fork project-123/session-456 session-457 --at HEAD~6
            mdsessions fork session-456 try-students --project project-999
        """
        from mdsessions import history

        store = open_store(ctx)
        session = store.find_session(session_ref)
        result = history.fork(session, new_id, project=project, at=commit, author=author)
        if as_json:
            echo_json(result.to_json())
            return
        click.echo(result.session.ref)

    # ------------------------------------------------------------------------------ backup

    @click.group("backup", cls=MdsessionsGroup)
    def backup_group() -> None:
        """Back up a store to git bundles, list, prune and restore them.

        \b
        Example:
            mdsessions backup create
            mdsessions backup restore .mdsessions/backups/x.bundle ../restored
        """

    def default_dir(ctx: click.Context, directory: str | None) -> str:
        if directory is not None:
            return directory
        from mdsessions import history

        return str(history.backup_dir(open_store(ctx)))

    @backup_group.command("create")
    @click.argument("directory", required=False, metavar="[DIR]")
    @json_option()
    @store_option()
    @click.pass_context
    def backup_create(ctx: click.Context, directory: str | None, as_json: bool) -> None:
        """Write a verified bundle of the whole store (git bundle create --all).

        DIR defaults to the store's .mdsessions/backups/ (ignored by git).
        Prints the bundle's path.

        \b
        Example:
            mdsessions backup create
            mdsessions backup create /mnt/backups --json
        """
        from mdsessions import history

        store = open_store(ctx)
        bars = _Progress()
        try:
            backup = history.create_backup(store, directory, progress=bars)
        finally:
            bars.close()
        if as_json:
            echo_json(backup.to_json())
            return
        click.echo(str(backup.path))

    @backup_group.command("list")
    @click.argument("directory", required=False, metavar="[DIR]")
    @json_option()
    @store_option()
    @click.pass_context
    def backup_list(ctx: click.Context, directory: str | None, as_json: bool) -> None:
        """List the bundles in DIR (default: the store's backup folder), newest first.

        \b
        Example:
            mdsessions backup list /mnt/backups
            mdsessions backup list --json
        """
        from mdsessions import history

        found = history.list_backups(default_dir(ctx, directory))
        if as_json:
            echo_json([b.to_json() for b in found])
            return
        if not found:
            click.echo("no backups", err=True)
            return
        rows = [
            [short_time(b.to_json()["created"]), _size(b.size), b.head or "-", str(b.path)]
            for b in found
        ]
        click.echo(table(["created (UTC)", "size", "head", "file"], rows, right=[1]))

    @backup_group.command("prune")
    @click.argument("directory", required=False, metavar="[DIR]")
    @click.option(
        "--keep", type=click.IntRange(min=0), metavar="N", help="Keep the N newest bundles."
    )
    @click.option(
        "--older-than",
        type=click.FloatRange(min=0),
        metavar="DAYS",
        help="Delete bundles older than DAYS days.",
    )
    @json_option()
    @store_option()
    @click.pass_context
    def backup_prune(
        ctx: click.Context,
        directory: str | None,
        keep: int | None,
        older_than: float | None,
        as_json: bool,
    ) -> None:
        """Delete old bundles from DIR: all but the newest N, or those older than DAYS.

        \b
        Example:
            mdsessions backup prune /mnt/backups --keep 7
            mdsessions backup prune --older-than 30
        """
        from mdsessions import history

        if (keep is None) == (older_than is None):
            raise click.UsageError("give exactly one of --keep N or --older-than DAYS")
        removed = history.prune_backups(
            default_dir(ctx, directory), keep=keep, older_than=older_than
        )
        if as_json:
            echo_json([b.to_json() for b in removed])
            return
        for b in removed:
            click.echo(f"deleted {b.path}")
        if not removed:
            click.echo("nothing to prune", err=True)

    @backup_group.command("restore")
    @click.argument("bundle", metavar="BUNDLE")
    @click.argument("dest", metavar="DEST")
    @json_option()
    def backup_restore(bundle: str, dest: str, as_json: bool) -> None:
        """Restore a store from a bundle into a new folder DEST, then verify it.

        Every ref is restored as it was; main is checked out; git fsck and the
        documents are checked (exit status 1 if a problem is found).

        \b
        Example:
            mdsessions backup restore /mnt/backups/store-20241124T100200Z-1a2b3c4d5e6f.bundle \\
                restored-store
        """
        from mdsessions import history

        bars = _Progress()
        try:
            result = history.restore_backup(bundle, dest, progress=bars)
        finally:
            bars.close()
        if as_json:
            echo_json(result.to_json())
        else:
            for problem in result.problems:
                click.echo(str(problem))
            click.echo(f"restored {result.path} at {result.head[:10]} ({len(result.refs)} ref(s))")
        if result.problems:
            fail(f"{len(result.problems)} problem(s) in the restored store")

    # ----------------------------------------------------------------------------- remotes

    @click.group("remote", cls=MdsessionsGroup)
    def remote_group() -> None:
        """Manage the git remotes a store syncs with.

        \b
        Example:
            mdsessions remote add origin git@example.com:team/store.git
            mdsessions remote list
        """

    @remote_group.command("add")
    @click.argument("name")
    @click.argument("url")
    @store_option()
    @click.pass_context
    def remote_add(ctx: click.Context, name: str, url: str) -> None:
        """Add a remote NAME at URL (a bare repository, a git server, a path).

        \b
        Example:
            mdsessions remote add origin /srv/git/store.git
        """
        from mdsessions import history

        history.add_remote(open_store(ctx), name, url)
        click.echo(f"{name} {url}")

    @remote_group.command("list")
    @json_option()
    @store_option()
    @click.pass_context
    def remote_list(ctx: click.Context, as_json: bool) -> None:
        """List the remotes and their URLs.

        \b
        Example:
            mdsessions remote list --json
        """
        from mdsessions import history

        found = history.remotes(open_store(ctx))
        if as_json:
            echo_json(found)
            return
        for name, url in found.items():
            click.echo(f"{name}\t{url}")

    @remote_group.command("remove")
    @click.argument("name")
    @store_option()
    @click.pass_context
    def remote_remove(ctx: click.Context, name: str) -> None:
        """Remove the remote NAME.

        \b
        Example:
            mdsessions remote remove origin
        """
        from mdsessions import history

        history.remove_remote(open_store(ctx), name)

    def arrow(before: object, after: object) -> str:
        left = "-" if before is None else str(before)
        right = "-" if after is None else str(after)
        return left if left == right else f"{left} -> {right}"

    def echo_aside(aside: Any, indent: str = "    ") -> None:
        whose = {"mine": "this store's", "theirs": "the remote's"}.get(aside.side, "a")
        state = f", {aside.status}" if aside.status else ""
        click.echo(f"{indent}set aside: {aside.ref} ({whose} version{state})")
        if aside.session is not None:
            click.echo(
                f"{indent}get it back: {aside.get_back}  "
                f"(or make it current: mdsessions restore {aside.session} {aside.commit[:12]})"
            )
        else:
            click.echo(f"{indent}see it: {aside.get_back}")

    def echo_pull(result: Any) -> None:
        """One line for the pull, then per session and per store file what changed."""
        remote = result.remote
        if result.action == "merged":
            click.echo(f"merged {remote}/{result.branch} in {result.commit[:10]}")
        elif result.action == "fast-forward":
            click.echo(f"fast-forward to {remote}/{result.branch} ({result.commit[:10]})")
        elif result.action == "remote-empty":
            click.echo(f"{remote} has no branch {result.branch} yet")
        else:
            click.echo(f"up to date with {remote}/{result.branch}")
        for c in result.changes:
            status = arrow(c.status_before, c.status_after)
            phase = arrow(c.phase_before, c.phase_after)
            state = f"{status}, phase {phase}"
            text = {
                "added": f"added from {remote} ({c.status_after or '-'}, phase "
                f"{'-' if c.phase_after is None else c.phase_after})",
                "updated": f"updated from {remote}: {state}",
                "deleted": f"deleted by {remote}",
                "replaced": f"REPLACED by {remote}'s version, which does not include this "
                f"store's: {state}",
                "kept-mine": f"changed on both sides: kept mine ({state}); {remote}'s version "
                "set aside",
                "kept-theirs": f"changed on both sides: kept {remote}'s ({state}); mine set aside",
                "forked": f"changed on both sides: kept mine; {remote}'s version added as "
                f"session {c.fork}",
            }.get(c.change, f"{c.change}: {state}")
            click.echo(f"  {c.session}: {text}")
            if c.change == "replaced" and c.fork:
                click.echo(f"    this store's version also lives on as session {c.fork}")
            if c.set_aside is not None:
                echo_aside(c.set_aside)
        for f in result.files:
            keys = f" ({', '.join(f.keys)})" if f.keys else ""
            text = {
                "merged": f"merged key by key: {', '.join(f.keys)} from {remote}",
                "replaced": f"REPLACED by {remote}'s version, which does not include this store's",
                "kept-mine": f"changed on both sides{keys}: kept mine; {remote}'s set aside",
                "kept-theirs": f"changed on both sides{keys}: kept {remote}'s; mine set aside",
            }.get(f.change, f"{f.change} from {remote}")
            click.echo(f"  {f.path}: {text}")
            if f.set_aside is not None:
                echo_aside(f.set_aside)
        for line in result.warnings:
            click.echo(f"Warning: {line}", err=True)

    def echo_push(result: Any) -> None:
        click.echo(f"{result.action}: {result.remote}/{result.branch} at {result.commit[:10]}")
        for ref in result.refs:
            click.echo(f"  pushed {ref}")
        for ref in result.refs_refused:
            click.echo(f"Warning: {result.remote} refused {ref}; it stays here", err=True)

    @click.command("push")
    @click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
    @json_option()
    @store_option()
    @click.pass_context
    def push_command(ctx: click.Context, remote: str, as_json: bool) -> None:
        """Push the store's branch to REMOTE (default origin); never forced.

        Fails (exit 1) when the remote has commits this store does not have:
        pull or sync first.

        \b
        Example:
            mdsessions push
            mdsessions push backup-server --json
        """
        from mdsessions import history

        result = history.push(open_store(ctx), remote)
        if as_json:
            echo_json(result.to_json())
            return
        echo_push(result)

    @click.command("pull")
    @click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
    @keep_options
    @author_option("Author of a merge commit (default: git's user, else the login).")
    @json_option()
    @store_option()
    @click.pass_context
    def pull_command(
        ctx: click.Context,
        remote: str,
        keep: str | None,
        fork_theirs: str | None,
        author: str | None,
        as_json: bool,
    ) -> None:
        """Fetch REMOTE (default origin) and merge it, session by session.

        Sessions changed on one side only merge cleanly; mdsessions.toml merges
        key by key. A session changed on both sides (or a key set to different
        values) stops the pull (exit 1, nothing changed) and names it; pull
        again with --keep mine, --keep theirs or --fork-theirs NEW_ID. The
        version not kept is set aside under refs/mdsessions/set-aside/ and
        listed with the command that brings it back. A session whose remote
        version does not include this store's (the other side kept theirs over
        it) is a warning on stderr; this store's version is set aside first.

        \b
        Example:
            mdsessions pull
            mdsessions pull origin --fork-theirs session-456-theirs
        """
        from mdsessions import history

        if keep is not None and fork_theirs is not None:
            raise click.UsageError("give --keep or --fork-theirs, not both")
        result = history.pull(
            open_store(ctx), remote, keep=keep, fork_theirs=fork_theirs, author=author
        )
        if as_json:
            echo_json(result.to_json())
            for line in result.warnings:  # loud on stderr in JSON mode too
                click.echo(f"Warning: {line}", err=True)
            return
        echo_pull(result)

    @click.command("sync")
    @click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
    @keep_options
    @author_option("Author of a merge commit (default: git's user, else the login).")
    @json_option()
    @store_option()
    @click.pass_context
    def sync_command(
        ctx: click.Context,
        remote: str,
        keep: str | None,
        fork_theirs: str | None,
        author: str | None,
        as_json: bool,
    ) -> None:
        """Pull from REMOTE (default origin), then push to it (the set-aside refs too).

        Prints, per session, what the pull changed and what it set aside, with the
        command that brings it back; a session whose new version does not include
        this store's is a warning on stderr (this store's version is kept under
        refs/mdsessions/set-aside/ first). When the remote moves before the push,
        pulls again (up to 3 rounds). Conflicts as for pull.

        \b
        Example:
            mdsessions sync
            mdsessions sync origin --keep mine --json
        """
        from mdsessions import history

        if keep is not None and fork_theirs is not None:
            raise click.UsageError("give --keep or --fork-theirs, not both")
        pulled, pushed = history.sync(
            open_store(ctx),
            remote,
            keep=keep,
            fork_theirs=fork_theirs,
            author=author,
            on_pull=None if as_json else echo_pull,
        )
        if as_json:
            echo_json({"pull": pulled.to_json(), "push": pushed.to_json()})
            for line in pulled.warnings:  # loud on stderr in JSON mode too
                click.echo(f"Warning: {line}", err=True)
            return
        echo_push(pushed)

    @click.command("clone")
    @click.argument("url", metavar="URL")
    @click.argument("directory", required=False, metavar="[DIR]")
    @json_option()
    def clone_command(url: str, directory: str | None, as_json: bool) -> None:
        """Clone a store from URL into DIR, ready to run and sync (a second machine).

        URL is anything git takes: a path, file://, git://, ssh (host:path) or
        https://. The store's branch is checked out whatever the remote's HEAD
        names (a bare repository from plain 'git init --bare' names master): the
        branch mdsessions.toml names (default main), else the one that holds
        mdsessions.toml. It tracks origin; the versions other machines set aside
        are fetched too. DIR defaults to the URL's last part without .git.

        \b
        Example:
            mdsessions clone git@server:team/store.git
            mdsessions clone /srv/git/store.git my-store --json
        """
        from mdsessions import history

        store = history.clone(url, directory)
        ctx = click.get_current_context()
        ctx.call_on_close(store.close)
        sessions = store.list_sessions()
        aside = history.list_set_aside(store)
        latest = store.log(max_count=1)
        head = latest[0].sha if latest else None
        if as_json:
            echo_json(
                {
                    "path": str(store.root),
                    "url": url,
                    "remote": "origin",
                    "branch": store.branch,
                    "upstream": f"origin/{store.branch}",
                    "commit": head,
                    "sessions": len(sessions),
                    "set_aside": [a.to_json() for a in aside],
                }
            )
            return
        click.echo(
            f"cloned {url} into {store.root}: branch {store.branch} tracking "
            f"origin/{store.branch} at {(head or '')[:10]}, {len(sessions)} session(s)"
            + (f", {len(aside)} version(s) set aside (mdsessions set-aside)" if aside else "")
        )

    @click.command("set-aside")
    @click.argument("session_ref", required=False, metavar="[SESSION]")
    @json_option()
    @store_option()
    @click.pass_context
    def set_aside_command(ctx: click.Context, session_ref: str | None, as_json: bool) -> None:
        """List the versions sync set aside (refs/mdsessions/set-aside/), newest first.

        A pull or sync sets a version aside when a conflict is resolved with
        --keep, or when the remote's version of a session does not include this
        store's. Each is listed with the command that brings it back: fork it
        into a new session, or restore it as the session's current state.

        \b
        Example:
            mdsessions set-aside
            mdsessions set-aside project-123/session-456 --json
        """
        from mdsessions import history

        store = open_store(ctx)
        key = None
        if session_ref is not None:
            key = session_ref if session_ref == "_store" else store.find_session(session_ref).ref
        found = history.list_set_aside(store, key)
        if as_json:
            echo_json([a.to_json() for a in found])
            return
        if not found:
            click.echo("nothing set aside", err=True)
            return
        rows = [
            [
                a.session or "(store files)",
                click.style(a.commit[:12], fg="yellow"),
                short_time(a.time) if a.time else "-",
                styled(a.status) if a.status else "-",
                a.get_back,
            ]
            for a in found
        ]
        click.echo(table(["session", "commit", "time (UTC)", "status", "get it back"], rows))

    # ------------------------------------------------------------------ verify / maintenance

    @click.command("verify")
    @json_option()
    @store_option()
    @click.pass_context
    def verify_command(ctx: click.Context, as_json: bool) -> None:
        """Check the store: git fsck, documents, manifests, commit trailers vs paths.

        Prints one line per problem (file or commit, and the reason) and exits
        with status 1 if there is any.

        \b
        Example:
            mdsessions verify
            mdsessions verify --json
        """
        from mdsessions import history

        report = history.verify(open_store(ctx))
        if as_json:
            echo_json(report.to_json())
        else:
            for problem in report.problems:
                click.echo(str(problem))
        if report.problems:
            fail(f"{len(report.problems)} problem(s)")
        if not as_json:
            click.echo(f"ok: {report.commits} commit(s), {report.sessions} session(s) verified")

    @click.command("maintenance")
    @json_option()
    @store_option()
    @click.pass_context
    def maintenance_command(ctx: click.Context, as_json: bool) -> None:
        """Pack refs and loose objects, write the commit-graph (safe while writers run).

        Makes history queries (versions, log) faster on long histories.

        \b
        Example:
            mdsessions maintenance
        """
        from mdsessions import history

        report = history.maintenance(open_store(ctx))
        if as_json:
            echo_json(report.to_json())
            return
        steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in report.steps)
        click.echo(
            f"{steps}; loose objects {report.loose_before} -> {report.loose_after}, "
            f"{report.packs} pack(s), {_size(report.size_after)}"
        )

    return [
        versions_command,
        diff_command,
        restore_command,
        fork_command,
        backup_group,
        remote_group,
        clone_command,
        push_command,
        pull_command,
        sync_command,
        set_aside_command,
        verify_command,
        maintenance_command,
    ]
