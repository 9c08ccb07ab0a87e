"""The wheel carries the package, its templates and py.typed, and renders after install."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("mdsessions-*.whl")
    return found


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("session_manifest", "checkpoint", "agent_output", "user_feedback"):
        assert f"mdsessions/templates/{kind}.md.j2" in names
    assert "mdsessions/py.typed" in names
    for package in ("git", "documents", "models", "cache", "store", "history", "cli"):
        assert f"mdsessions/{package}/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "mdsessions = mdsessions.cli:main" in text


@pytest.mark.slow
def test_installed_wheel_renders_from_its_own_templates(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    # Dependencies come from the test environment; mdsessions only from the installed wheel.
    deps = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]}]
    code = (
        "import mdsessions, mdsessions.documents.frontmatter as d, datetime;"
        "from mdsessions import AgentOutput;"
        "print(mdsessions.__file__); print(d.package_template_dir());"
        "t = datetime.datetime(2024, 11, 24, 10, 0, tzinfo=datetime.timezone.utc);"
        "print(d.dumps(AgentOutput(project_id='p', session_id='s', agent='a', phase=1,"
        " phase_name='Concept Expansion', executed=t, content='hi')))"
    )
    env = {"PYTHONPATH": ":".join([str(target), *deps]), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, template_dir, *rendered = proc.stdout.splitlines()
    assert module_file.startswith(str(target))
    assert template_dir == str(target / "mdsessions" / "templates")
    text = "\n".join(rendered)
    assert "schema: mdsessions/agent_output/v1" in text
    assert text.endswith("## Output\n\nhi")
