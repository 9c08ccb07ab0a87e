"""The backends the store contract runs against, each behind one thin adapter.

Modelled on langgraph's ``checkpoint-conformance``: the tests in ``test_contract.py`` take a
``backend`` fixture and know nothing of which store they talk to. Three backends:

* ``local``: :meth:`Store.init` in ``tmp_path``; writes and reads on the same object.
* ``seed003``: a store made by the seed-003 facade (``CheckpointManager(base_dir=…)``);
  writes go through the facade's verbs (``create_session``, ``save_checkpoint``,
  ``save_agent_output``, ``save_user_feedback``), reads through a *second*
  ``CheckpointManager`` opened on the same folder (a store opened by the facade).
* ``synced-clone``: store A pushed to a bare remote (``git init --bare``), cloned with
  :func:`history.clone` as B; writes happen on B, :meth:`Backend.settle` syncs B
  (:func:`history.sync`) and pulls on A (:func:`history.pull`); reads happen on A.

Only the public API is used (``from mdsessions import …``, ``mdsessions.history``), and real
git: no git command is mocked. The git isolation of ``tests/conftest.py`` applies (autouse).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import git

from mdsessions import CheckpointManager, Session, Store, history

BACKENDS = ("local", "seed003", "synced-clone")


class Backend:
    """A store the contract writes to (``writer``) and reads back from (``reader``).

    The write verbs take the seed-003 argument set the contract needs and nothing more; a
    backend overrides them when it has its own way in (the facade). Verbs the facade lacks
    (``history.restore``, ``history.fork``) are called by the tests on :meth:`session`.
    """

    def __init__(self, writer: Store, reader: Store, remotes: tuple[Path, ...] = ()) -> None:
        self.writer = writer
        self.reader = reader
        self.remotes = remotes  # bare repositories the backend syncs through

    # -- writes (one commit each, or nothing) ----------------------------------------------

    def create_session(
        self, project: str, session: str, *, idea: str | None = None, user_id: str | None = None
    ) -> None:
        self.writer.create_session(project, session, idea=idea, user_id=user_id)

    def save_agent_output(
        self,
        project: str,
        session: str,
        phase: int,
        agent: str,
        content: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
    ) -> None:
        self.writer.session(project, session).save_agent_output(
            phase,
            agent,
            content,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
        )

    def save_checkpoint(self, project: str, session: str, phase: int, status: str) -> None:
        self.writer.session(project, session).save_checkpoint(phase, status=status)

    def save_feedback(
        self, project: str, session: str, phase: int, action: str, comments: str = ""
    ) -> None:
        self.writer.session(project, session).save_feedback(phase, action=action, comments=comments)

    # -- sessions on either side -----------------------------------------------------------

    def session(self, project: str, session: str) -> Session:
        """The session on the writing side (for history's verbs)."""
        return self.writer.session(project, session)

    def read(self, project: str, session: str) -> Session:
        """The session on the reading side (call :meth:`settle` first)."""
        return self.reader.session(project, session)

    def settle(self) -> None:
        """Bring the writer's commits to the reader (nothing to do on one repository)."""

    def close(self) -> None:
        self.writer.close()
        self.reader.close()


class LocalBackend(Backend):
    """A plain local store; the reader is the writer object itself."""

    def __init__(self, root: Path) -> None:
        store = Store.init(root)
        super().__init__(store, store)

    def close(self) -> None:
        self.writer.close()


class Seed003Backend(Backend):
    """A store made by ``CheckpointManager``; the facade's verbs write, a second one reads."""

    def __init__(self, base_dir: Path) -> None:
        self.manager = CheckpointManager(base_dir=base_dir)
        self.opened = CheckpointManager(base_dir=base_dir)  # opens the existing store
        super().__init__(self.manager.store, self.opened.store)

    def create_session(
        self, project: str, session: str, *, idea: str | None = None, user_id: str | None = None
    ) -> None:
        self.manager.create_session(
            project_id=project,
            session_id=session,
            user_id=user_id,
            execution_mode="mvp",
            idea=idea,
        )

    def save_agent_output(
        self,
        project: str,
        session: str,
        phase: int,
        agent: str,
        content: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
    ) -> None:
        self.manager.save_agent_output(
            project_id=project,
            session_id=session,
            phase_num=phase,
            agent_name=agent,
            output_content=content,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
        )

    def save_checkpoint(self, project: str, session: str, phase: int, status: str) -> None:
        self.manager.save_checkpoint(
            project_id=project, session_id=session, phase_num=phase, status=status
        )

    def save_feedback(
        self, project: str, session: str, phase: int, action: str, comments: str = ""
    ) -> None:
        self.manager.save_user_feedback(
            project_id=project,
            session_id=session,
            phase_num=phase,
            reviewed=True,
            approved=action == "approved",  # the seed passes both, consistently
            comments=comments,
            action=action,
        )

    def close(self) -> None:
        self.manager.close()
        self.opened.close()


class SyncedCloneBackend(Backend):
    """Writes on clone B of a bare remote; reads on store A after B synced and A pulled."""

    def __init__(self, tmp_path: Path) -> None:
        git(tmp_path, "init", "-q", "--bare", "remote.git")
        self.remote = tmp_path / "remote.git"
        url = self.remote.as_uri()
        a = Store.init(tmp_path / "a")
        history.add_remote(a, "origin", url)
        history.push(a)
        b = history.clone(url, tmp_path / "b")
        super().__init__(writer=b, reader=a, remotes=(self.remote,))

    def settle(self) -> None:
        history.sync(self.writer)
        history.pull(self.reader)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The store contract's subject: one of :data:`BACKENDS`, fresh per test."""
    made: Backend
    if request.param == "local":
        made = LocalBackend(tmp_path / "store")
    elif request.param == "seed003":
        made = Seed003Backend(tmp_path / "projects")
    else:
        made = SyncedCloneBackend(tmp_path)
    try:
        yield made
    finally:
        made.close()
