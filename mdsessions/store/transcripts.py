"""Transcripts: an agent's (or a session's) messages and commands, recorded without a commit each.

Seeds 002 (``record_message``, ``record_command``, ``save_session``) and 004
(``prune_old_messages``, ``smart_prune``, ``should_prune``, ``get_session_stats``). A
transcript is the fifth document kind, ``{session}/transcripts/{name}.md``
(:class:`~mdsessions.models.schema.Transcript`): frontmatter with its figures, then one section
per message with its number, role, time and tokens, the text verbatim.

Buffering and crashes (the design):

* :meth:`TranscriptLog.record_message` and :meth:`TranscriptLog.record_command` only append to
  a buffer in this process's memory: no file is written, no commit made.
* :meth:`TranscriptLog.flush` commits everything buffered as **one** commit (kind
  ``transcript``) through the store's planned-write path; call it at the end of each turn
  (:meth:`TranscriptLog.end_turn` is the same call), or let the ``with`` block do it. The
  buffer also flushes by itself when it holds ``max_buffer`` messages.
  :meth:`TranscriptLog.record_exchange` (what the runner calls per agent call) records the
  prompt and the reply and flushes: one commit per agent call.
* A process killed before a flush loses the messages buffered since its last flush, and only
  those: every flushed turn is in a commit. A process killed during a flush leaves the store
  as the commit path guarantees for any write: the whole turn or none of it, recovered on the
  next open, ``verify`` clean. Nothing is ever half-written into the file. A caller that must
  keep every message flushes after every message (one commit each).
* Prunes are commits too (:meth:`TranscriptLog.prune`, :meth:`TranscriptLog.smart_prune`),
  made after a commit of whatever is still buffered: the removed messages stay in the parent
  commit, where ``transcript show --at COMMIT^`` and
  :meth:`TranscriptLog.pruned_messages` find them. Numbers are never reused.
* A transcript is a record, not a state: it changes neither the manifest nor the session's
  status, and may be recorded and pruned in a session of any status (a closed one included).
* Each flush renders the whole file (git stores whole blobs): its cost grows with the
  transcript's length (0.1-0.2 s for a turn onto 10,000 messages on the 2-core test machine
  under load, ``benchmarks/bench_transcripts.py``), which is what pruning keeps bounded.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mdsessions.documents.frontmatter import decode, load_as
from mdsessions.documents.kinds import is_editor_temp
from mdsessions.errors import DocumentError
from mdsessions.git.repo import Identity
from mdsessions.models.schema import (
    DEFAULT_CONTEXT_LIMIT,
    SessionManifest,
    Transcript,
    TranscriptEntry,
    utc_now,
)
from mdsessions.models.transcripts import (
    DEFAULT_KEEP_LAST,
    DEFAULT_KEYWORDS,
    DEFAULT_THRESHOLD,
    PrunedMessage,
    PruneResult,
    TranscriptStats,
    estimate_tokens,
    kept_by_keywords,
    kept_by_recency,
    refresh,
    stats_of,
)
from mdsessions.store.checks import build
from mdsessions.store.commits import CommitKind
from mdsessions.store.paths import TRANSCRIPTS_DIR, check_id
from mdsessions.store.writes import Plan

if TYPE_CHECKING:
    from mdsessions.store.session import Session

__all__ = ["DEFAULT_MAX_BUFFER", "TranscriptLog"]

DEFAULT_MAX_BUFFER = 1000
"""Messages a :class:`TranscriptLog` buffers before it flushes by itself."""

Pruner = Callable[[list[TranscriptEntry]], list[TranscriptEntry]]


class TranscriptLog:
    """One transcript of a session: record messages and commands, read, measure, prune.

    Obtain it with :meth:`Session.transcript`. Recording is buffered (see the module
    docstring); reading and statistics see what is committed plus what this object buffers.
    Thread-safe: several threads may record into one log.

    Example:
        ::

            with session.transcript("concept_expansion") as log:
                log.record_message(role="user", content="Expand the idea …")
                log.record_message(role="assistant", content=reply, tokens=812)
                log.record_command("pytest -q")
            # one commit: transcript(p/s): concept_expansion +3 messages (3 in all)
            if log.should_prune(0.8):
                log.smart_prune(keep_keywords=["error"], keep_last=20)
    """

    def __init__(
        self,
        session: Session,
        name: str = "session",
        *,
        context_limit: int | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        author: Identity | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        """Open a transcript (the file is created by the first flush).

        Args:
            session: The session.
            name: An agent id, or ``session`` for the session's own transcript.
            context_limit: Tokens of context it is measured against; ``None`` keeps the
                file's (:data:`~mdsessions.models.schema.DEFAULT_CONTEXT_LIMIT` for a new one).
            max_buffer: Messages buffered before a flush happens by itself (>= 1).
            author: Commit author (default: the store's runner identity).
            count_tokens: Counts a message's tokens when its caller reports none (a
                tokenizer, e.g. ``lambda text: len(encoding.encode(text))`` with tiktoken);
                default: characters ÷ 4 (:func:`~mdsessions.models.transcripts.estimate_tokens`).

        Raises:
            InvalidIdentifierError: ``name`` is not an id.
            DocumentError: ``context_limit`` or ``max_buffer`` below 1.
        """
        self.session = session
        self.name = check_id(name, "transcript name")
        for what, value in (("context_limit", context_limit), ("max_buffer", max_buffer)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise DocumentError(f"expected a whole number >= 1, got {value!r}", field=what)
        self.context_limit = context_limit
        self.max_buffer = max_buffer
        self.author = author
        self.count_tokens = count_tokens or estimate_tokens
        self.rel = f"{session.rel}/{TRANSCRIPTS_DIR}/{self.name}.md"
        self._buffer: list[TranscriptEntry] = []
        self._lock = threading.RLock()
        # The file as this log last committed it and its parsed form: the next flush reuses
        # the parsed form when the file still holds exactly those bytes (parsing and validating
        # 10,000 messages again is most of a flush's own cost).
        self._last: tuple[bytes, Transcript] | None = None

    def __repr__(self) -> str:
        return f"TranscriptLog({self.session.ref!r}, {self.name!r})"

    @staticmethod
    def names(session: Session) -> list[str]:
        """The names of a session's transcripts (``transcripts/*.md`` in its folder), sorted.

        Args:
            session: The session.

        Returns:
            E.g. ``["concept_expansion", "session"]``; empty when it has none.
        """
        folder = session.path / TRANSCRIPTS_DIR
        if not folder.is_dir():
            return []
        found = folder.glob("*.md")
        return sorted(p.stem for p in found if p.is_file() and not is_editor_temp(p.name))

    def __enter__(self) -> TranscriptLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    # -- recording ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages recorded in this process and not committed yet."""
        return len(self._buffer)

    def record_message(
        self,
        *,
        role: str,
        content: str,
        tokens: int | None = None,
        time: _dt.datetime | str | None = None,
    ) -> None:
        """Buffer one message (seed 002 ``record_message``); no commit until :meth:`flush`.

        Args:
            role: ``user``, ``assistant``, ``system``, ``tool`` … (lower-case, 1-32 chars).
            content: The text, stored verbatim (never a template; any text round-trips).
            tokens: Tokens a provider reported; ``None``: counted by ``count_tokens``
                (default: characters ÷ 4).
            time: When it was said (UTC ISO-8601 or datetime; default now).

        Raises:
            DocumentError: A bad role, tokens or time, or text UTF-8 cannot hold (the field
                named); nothing is buffered then.
        """
        if not isinstance(content, str):
            raise DocumentError(f"expected text, got {type(content).__name__}", field="content")
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DocumentError(
                f"holds U+{ord(content[exc.start]):04X}, a lone surrogate that UTF-8 cannot "
                "store; pass text decoded from valid UTF-8",
                field="content",
            ) from None
        entry = build(
            TranscriptEntry,
            number=1,  # numbered when flushed, after the file's last message
            role=role,
            time=time if time is not None else utc_now(),
            tokens=self.count_tokens(content) if tokens is None else tokens,
            content=content,
        )
        with self._lock:
            self._buffer.append(entry)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self.flush()

    def record_command(self, command: str, *, time: _dt.datetime | str | None = None) -> None:
        """Buffer a command that was run (seed 002 ``record_command``), role ``command``.

        Args:
            command: The command line as text.
            time: When it ran (default now).

        Raises:
            DocumentError: As :meth:`record_message`.
        """
        self.record_message(role="command", content=command, time=time)

    def record_exchange(
        self,
        *,
        prompt: str,
        reply: str,
        system: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        reply_role: str = "assistant",
    ) -> str | None:
        """Record one agent call and flush it: the runner's hook, one commit per call.

        Args:
            prompt: What the agent was given (role ``user``).
            reply: What it answered (``reply_role``).
            system: The system prompt (role ``system``), left out when empty.
            input_tokens: The prompt's tokens as reported (``None``: estimated).
            output_tokens: The reply's tokens as reported (``None`` or 0: estimated).
            reply_role: ``assistant``, or ``error`` for a failed call's message.

        Returns:
            The commit id.

        Raises:
            DocumentError: As :meth:`record_message`.
        """
        with self._lock:
            if system:
                self.record_message(role="system", content=system)
            self.record_message(role="user", content=prompt, tokens=input_tokens or None)
            self.record_message(role=reply_role, content=reply, tokens=output_tokens or None)
            return self.flush()

    def flush(self) -> str | None:
        """Commit the buffered messages as one commit (seed 002 ``save_session``).

        Returns:
            The commit id, or ``None`` when nothing was buffered.

        Raises:
            SessionNotFoundError: The session does not exist.
            DocumentError: The transcript file is broken (fix or restore it).
            UnrecordedEditError: A person's edit of the file is not recorded yet.
            WriterLockTimeoutError: Other writers held the store too long.

        On an error nothing is committed and the messages stay buffered for the next flush.
        """
        with self._lock:
            if not self._buffer:
                return None
            count = len(self._buffer)
            sha = self._write(None)[0]
            del self._buffer[:count]
            return sha

    end_turn = flush

    # -- reading --------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the transcript file exists in the working tree."""
        return (self.session.store.root / self.rel).is_file()

    def read(self, *, at: str | None = None) -> Transcript:
        """The transcript as committed (working tree), or at a commit.

        Args:
            at: A commit (id, prefix, ``HEAD~2``, ``abc123^``); ``None``: the working tree.

        Returns:
            The transcript; an empty one when the file does not exist (yet) in the working
            tree. Buffered messages are not in it (see :meth:`stats`).

        Raises:
            StoreError: ``at`` names no commit.
            FileNotFoundError: The transcript did not exist at ``at``.
            DocumentError: The file does not parse.
        """
        store = self.session.store
        if at is not None:
            data = store.read_at(at, self.rel)
            return load_as(Transcript, decode(data, self.rel), path=self.rel)
        try:
            return store.read_doc(self.rel, Transcript)
        except FileNotFoundError:
            now = utc_now()
            return Transcript(
                project_id=self.session.project_id,
                session_id=self.session.session_id,
                name=self.name,
                created=now,
                updated=now,
                context_limit=self.context_limit or DEFAULT_CONTEXT_LIMIT,
            )

    def stats(self, *, threshold: float = DEFAULT_THRESHOLD) -> TranscriptStats:
        """Figures of the transcript (seed 004 ``get_session_stats``), buffered messages included.

        Args:
            threshold: Share of the context limit at which it should be pruned, in (0, 1].

        Returns:
            Messages, tokens, the share of the context limit, per-role counts, pruned so far.

        Raises:
            DocumentError: ``threshold`` out of range, or the file does not parse.
        """
        _check_threshold(threshold)
        doc = self.read()
        if self.context_limit is not None:
            doc.context_limit = self.context_limit
        with self._lock:
            buffered = list(self._buffer)
        return stats_of(doc, path=self.rel, threshold=threshold, buffered=buffered)

    def should_prune(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """Whether the tokens reach ``threshold`` of the context limit (seed 004).

        Args:
            threshold: Share of the context limit, in (0, 1] (default 0.8).

        Returns:
            ``tokens / context_limit >= threshold``.

        Raises:
            DocumentError: ``threshold`` out of range, or the file does not parse.
        """
        return self.stats(threshold=threshold).should_prune

    def pruned_messages(self) -> list[PrunedMessage]:
        """Every message a prune removed, read back from history, oldest number first.

        Returns:
            The messages with the prune commit that removed each (the message is in that
            commit's parent: ``transcript show --at {pruned_by}^``).
        """
        store = self.session.store
        found: dict[int, PrunedMessage] = {}
        for info in store.log(paths=[self.rel]):
            if info.trailer("Mdsessions-Status") != "pruned":
                continue
            try:
                after = {e.number for e in self.read(at=info.sha).entries}
                before = self.read(at=f"{info.sha}^")
            except (FileNotFoundError, DocumentError):
                continue
            for e in before.entries:
                if e.number not in after and e.number not in found:
                    found[e.number] = PrunedMessage(
                        session=self.session.ref,
                        name=self.name,
                        number=e.number,
                        role=e.role,
                        time=e.time,
                        tokens=e.tokens,
                        content=e.content,
                        pruned_by=info.sha,
                    )
        return [found[n] for n in sorted(found)]

    # -- pruning --------------------------------------------------------------------------

    def prune(self, *, keep_last: int = DEFAULT_KEEP_LAST, keep_system: bool = True) -> PruneResult:
        """Remove all but the last messages, as one commit (seed 004 ``prune_old_messages``).

        Buffered messages are committed first, in a commit of their own, so that every
        removed message is in history (the prune commit's parent).

        Args:
            keep_last: Messages to keep at the end (>= 0).
            keep_system: Keep ``system`` messages too.

        Returns:
            What was removed; ``commit`` is ``None`` when nothing was (no commit).

        Raises:
            DocumentError: ``keep_last`` negative, or the file does not parse.
        """
        _check_count(keep_last, "keep_last")
        return self._prune(
            "recent", lambda es: kept_by_recency(es, keep_last=keep_last, keep_system=keep_system)
        )

    def smart_prune(
        self,
        *,
        keep_keywords: Sequence[str] = DEFAULT_KEYWORDS,
        keep_last: int = DEFAULT_KEEP_LAST,
        keep_system: bool = True,
    ) -> PruneResult:
        """Remove old messages but those naming a keyword, as one commit (seed 004 ``smart_prune``).

        Buffered messages are committed first, as :meth:`prune` does.

        Args:
            keep_keywords: A message containing one of these (ignoring case) is kept.
            keep_last: Messages to keep at the end whatever they say (>= 0).
            keep_system: Keep ``system`` messages too.

        Returns:
            What was removed; ``commit`` is ``None`` when nothing was (no commit).

        Raises:
            DocumentError: ``keep_last`` negative, a keyword that is not text, or the file
                does not parse.
        """
        _check_count(keep_last, "keep_last")
        if isinstance(keep_keywords, str) or not all(isinstance(k, str) for k in keep_keywords):
            raise DocumentError(
                "expected a list of words, e.g. ['error', 'outage']", field="keep_keywords"
            )
        words = list(keep_keywords)
        return self._prune(
            "keywords",
            lambda es: kept_by_keywords(
                es, keywords=words, keep_last=keep_last, keep_system=keep_system
            ),
        )

    def _prune(self, strategy: str, pruner: Pruner) -> PruneResult:
        with self._lock:
            # The buffer first, in a commit of its own: a message is pruned only once history
            # holds it.
            self.flush()
            sha, removed, doc = self._write(pruner)
        return PruneResult(
            session=self.session.ref,
            name=self.name,
            commit=sha,
            strategy=strategy,
            removed=[e.number for e in removed],
            removed_tokens=sum(e.tokens for e in removed),
            kept=doc.message_count,
            tokens=doc.token_count,
        )

    # -- the one write --------------------------------------------------------------------

    def _current(self) -> Transcript:
        """The transcript in the working tree (as :meth:`read`), reusing the last write's."""
        last = self._last
        if last is not None:
            try:
                data = self.session.store.git.read_worktree(self.rel)
            except FileNotFoundError:
                data = None
            if data == last[0]:
                return last[1].model_copy()  # entries are never changed in place
        doc = self.read()
        if self.context_limit is not None:
            doc.context_limit = self.context_limit
        return doc

    def _write(self, pruner: Pruner | None) -> tuple[str | None, list[TranscriptEntry], Transcript]:
        """Commit the buffer (and a prune) as one planned write, under the caller's lock."""
        session = self.session
        pending = list(self._buffer)
        result: dict[str, Any] = {}

        def plan(manifest: SessionManifest) -> tuple[None, Plan]:
            doc = self._current()
            number = max(doc.next_number, doc.entries[-1].number + 1 if doc.entries else 1)
            added = []
            for entry in pending:
                added.append(entry.model_copy(update={"number": number}))
                number += 1
            entries = doc.entries + added
            doc.next_number = number
            removed: list[TranscriptEntry] = []
            if pruner is not None:
                kept = pruner(entries)
                numbers = {e.number for e in kept}
                removed = [e for e in entries if e.number not in numbers]
                entries = kept
                if removed:
                    doc.pruned_count += len(removed)
                    doc.last_pruned = utc_now()
            doc.entries = entries
            doc.updated = utc_now()
            refresh(doc)
            result.update(removed=removed, doc=doc)
            grew = f"+{len(added)} message{_s(len(added))}" if added else ""
            if removed:
                subject = (
                    f"{self.name} {grew + ', ' if grew else ''}pruned {len(removed)} "
                    f"message{_s(len(removed))}{_span(removed)}, {doc.message_count} kept"
                )
            else:
                subject = f"{self.name} {grew} ({doc.message_count} in all)"
            planned = session._plan(
                {self.rel: doc},
                manifest,
                f"{CommitKind.TRANSCRIPT}({session.ref}): {subject}",
                author=self.author,
                write_manifest=False,
                kind=CommitKind.TRANSCRIPT,
                transcript=self.name,
                # "pruned" only when messages were removed: pruned_messages() reads those.
                status="pruned" if removed else "recorded",
            )
            written = planned.raw[self.rel]
            result.update(written=(written, doc) if written is not None else None)
            return None, planned

        store = session.store
        with store.writing():
            if pruner is not None and not pending:
                # Nothing buffered: a prune that removes nothing makes no commit.
                doc = self.read()
                if len(pruner(doc.entries)) == len(doc.entries):
                    return None, [], doc
            # Planned and committed under the lock, so the branch's tip is this write's commit
            # (write_planned returns what the plan returns, not the commit).
            before = store.git.head()
            try:
                session._write_planned(plan)
            except BaseException:
                self._last = None
                raise
            self._last = result["written"]
            head = store.git.head()
        return (head if head != before else None), result["removed"], result["doc"]


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _span(removed: Sequence[TranscriptEntry]) -> str:
    if not removed:
        return ""
    first, last = removed[0].number, removed[-1].number
    return f" (#{first})" if first == last else f" (#{first} to #{last})"


def _check_threshold(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise DocumentError(
            f"expected a share of the context limit in (0, 1], such as 0.8; got {value!r}",
            field="threshold",
        )


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DocumentError(f"expected a whole number >= 0, got {value!r}", field=what)
