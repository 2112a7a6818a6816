"""`studio` (studio_cli.py): one command over the `python -m ...` mains, arguments passed through as they are."""

import subprocess
import sys

import pytest
from helpers import ROOT

import studio_cli


def test_help_lists_every_command(capsys):
    assert studio_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("app", "train", "doctor", "estimate", "compare", "eval", "push", "jobs"):
        assert f"\n  {name} " in out


def test_a_command_reaches_its_modules_own_parser(capsys):
    with pytest.raises(SystemExit) as done:
        studio_cli.main(["train", "--help"])
    assert done.value.code == 0
    assert "usage: python -m trainers train" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        studio_cli.main(["jobs", "status", "--help"])
    assert "usage: python -m jobs status" in capsys.readouterr().out


def test_unknown_command_is_one_sentence(capsys):
    assert studio_cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'trian'" in err


def test_the_shell_script_passes_other_commands_to_the_cli():
    done = subprocess.run(
        ["sh", str(ROOT / "studio"), "doctor", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python -m data doctor" in done.stdout


def test_python_dash_m_still_works():
    done = subprocess.run(
        [sys.executable, "-m", "jobs", "list", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "usage: python -m jobs list" in done.stdout


def test_pyproject_installs_every_package_and_the_command():
    """`pip install -e .` maps exactly our packages (explicit, never discovered) and installs `studio`."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in ("tests", "bench")]
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in tops for p in top.rglob("__init__.py")}
    assert set(project["tool"]["setuptools"]["packages"]) == found
    assert project["project"]["scripts"]["studio"] == "studio_cli:main"
    assert set(project["tool"]["importlinter"]["root_packages"]) == {p for p in found if "." not in p}
