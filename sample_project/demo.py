"""Run the sample idea-validation workflow end to end into a fresh store, as a reviewer would.

For every idea (the project's own ``sample_project/ideas/*.md`` and, when ``../shared`` is
beside the checkout, every idea of ``shared/data/haytham/test_ideas.json``) it:

1. starts a session and runs it to the first review gate (phase 1);
2. approves by rewriting ``user_feedback.md`` the way an editor would (``approved: true``)
   and runs again, gate after gate, to the end — ideas alternate between ``mvp`` and ``full``;
3. on the first idea, asks for a revision at phase 3 (``action: revise`` and a requested
   change) so the phase re-runs with the reviewer's comments;
4. after every step checks the store: ``git status --porcelain`` empty, ``git fsck --strict``
   clean, every ``.md`` parses with python-frontmatter, ``mdsessions`` validation clean.

Usage::

    python sample_project/demo.py [STORE_DIR] [--fresh] [--limit N]
        [--agents offline|llm|llm-command] [--model MODEL] [--max-cost-usd USD]

``--agents llm --model echo`` runs every agent through the ``llm`` library (offline with the
``llm-echo`` plugin); ``--agents llm-command`` through the ``llm`` program; a real model
(``--model gpt-4o-mini``) takes its API key from the environment (``OPENAI_API_KEY``).

Then look at the story: ``git -C demo-store log --oneline``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import frontmatter

from mdsessions import Budget, Runner, Session, SessionStatus, Store

HERE = Path(__file__).resolve().parent
WORKFLOW = HERE / "workflow.toml"
SHARED_IDEAS = HERE.parent.parent / "shared" / "data" / "haytham" / "test_ideas.json"


def ideas() -> list[tuple[str, str, str]]:
    """Return ``(project_id, session_id, idea text)`` for every idea the demo runs."""
    found = []
    for path in sorted((HERE / "ideas").glob("*.md")):
        found.append(("sample", path.stem, path.read_text(encoding="utf-8")))
    if SHARED_IDEAS.is_file():
        data = json.loads(SHARED_IDEAS.read_text(encoding="utf-8"))
        for item in data["ideas"]:
            found.append(("haytham", f"idea-{item['id']}", item["idea"]))
    else:
        print(f"(skipping the shared ideas: {SHARED_IDEAS} is absent)")
    return found


def git(store: Path, *args: str) -> str:
    """Run git in the store and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=store, check=True, capture_output=True, text=True
    ).stdout


def check(store: Store, step: str) -> None:
    """The invariants that must hold after every step; exit 1 if one does not."""
    root = store.root
    problems = []
    status = git(root, "status", "--porcelain")
    if status:
        problems.append(f"git status is not clean:\n{status}")
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress"], cwd=root, capture_output=True, text=True
    )
    if fsck.returncode != 0 or fsck.stdout.strip():
        problems.append(f"git fsck --strict: {fsck.stdout}{fsck.stderr}")
    for md in root.rglob("*.md"):
        if ".git" in md.parts:
            continue
        post = frontmatter.load(md)
        if not str(post.metadata.get("schema", "")).startswith("mdsessions/"):
            problems.append(f"{md}: no mdsessions schema in the frontmatter")
    problems += [str(p) for p in store.validate()]
    if problems:
        print(f"FAILED after {step}:\n" + "\n".join(problems), file=sys.stderr)
        raise SystemExit(1)


def review(session: Session, phase: int, *, revise: str | None = None) -> Path:
    """Edit ``user_feedback.md`` like a person in an editor: approve, or ask for a revision."""
    path = session.path / session.phase_entry(phase).directory / "user_feedback.md"
    text = path.read_text(encoding="utf-8")
    if revise is None:
        text = text.replace("approved: false", "approved: true", 1)
        text = text.replace("## User Comments\n\n", "## User Comments\n\nLooks good, go on.", 1)
    else:
        text = text.replace("action: pending", "action: revise", 1)
        text = text.replace(
            "## User Comments\n\n", "## User Comments\n\nGood start, but sharpen it.", 1
        )
        quoted = "'" + revise.replace("'", "''") + "'"  # a change may hold ': '
        text = text.replace("\nrequested_changes:\n", f"\nrequested_changes:\n- {quoted}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", nargs="?", default="demo-store", help="folder for the store")
    parser.add_argument("--fresh", action="store_true", help="delete the folder first")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N ideas")
    parser.add_argument(
        "--agents",
        choices=("offline", "llm", "llm-command"),
        default="offline",
        help="offline text analysis (default), the llm library, or the llm program",
    )
    parser.add_argument("--model", default="echo", help="the llm model id (default: echo)")
    parser.add_argument("--max-cost-usd", type=float, default=None, help="a budget per session")
    args = parser.parse_args(argv)
    target = Path(args.store)
    if args.fresh and target.exists():
        shutil.rmtree(target)
    if target.exists() and any(target.iterdir()):
        print(f"{target} exists and is not empty; use --fresh or another folder", file=sys.stderr)
        return 1
    store = Store.init(target)
    agents = None
    if args.agents != "offline":
        sys.path.insert(0, str(HERE.parent))
        from sample_project.llm_agents import llm_agents

        agents = llm_agents(args.agents, args.model)
    runner = Runner(store, WORKFLOW, agents=agents, budget=Budget(max_cost_usd=args.max_cost_usd))
    print(f"store: {store.root}\nworkflow: {WORKFLOW}\nagents: {args.agents}\n")
    selected = ideas()[: args.limit]
    for i, (project, session_id, idea) in enumerate(selected):
        mode = "mvp" if i % 2 == 0 else "full"
        result = runner.start(project, f"{session_id}-{mode}", idea=idea, mode=mode)
        session = result.session
        check(store, f"starting {session.ref}")
        print(f"▶ {result.message}")
        revised = False
        while result.status is SessionStatus.AWAITING_REVIEW:
            gate = result.waiting_for_review
            assert gate is not None
            if i == 0 and gate == 3 and not revised:
                edited = review(session, gate, revise="Focus on the most frequent user.")
                revised = True
                print(f"  ✎ revise   {edited.relative_to(store.root)}")
            else:
                edited = review(session, gate)
                print(f"  ✎ approve  {edited.relative_to(store.root)}")
            result = runner.run(session)
            check(store, f"reviewing phase {gate} of {session.ref}")
            print(f"▶ {result.message}")
        if result.status is not SessionStatus.COMPLETED:
            print(f"{session.ref} ended {result.status.value}", file=sys.stderr)
            return 1
        print()
    commits = git(store.root, "rev-list", "--count", "HEAD").strip()
    print(f"{len(selected)} sessions completed, {commits} commits; the story so far:\n")
    print(git(store.root, "log", "--oneline", "-n", "25"))
    print(f"All of it: git -C {target} log --oneline")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
