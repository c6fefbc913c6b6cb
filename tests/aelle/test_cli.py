"""The ``aelle`` root (commands found through entry points, errors as exit 2) and the
``aelle spectrum`` command."""

import argparse
import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

import aelle.cli
from aelle.cli import GROUP, CommandError, assignment, main, table


def test_spectrum_json_output(capsys):
    assert main(["spectrum", "--arch", "gru", "--hidden", "8", "--layers", "2", "--steps", "20",
                 "--warmup", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["exponents"]) == 16
    assert out["max"] == max(out["exponents"])


def test_spectrum_table_for_every_architecture(capsys):
    from aelle.cells import names

    for arch in names():
        assert main(["spectrum", "--arch", arch, "--hidden", "6", "--steps", "10"]) == 0
        out = capsys.readouterr().out
        assert "max LE" in out and arch in out


def test_hidden_state_convention_halves_an_lstm_spectrum(capsys):
    main(["spectrum", "--hidden", "6", "--steps", "10", "--state", "hidden", "--json"])
    assert len(json.loads(capsys.readouterr().out)["exponents"]) == 6


@pytest.mark.parametrize(("argv", "message"), [
    (["--arch", "asrnn", "--layers", "2"], "--layers > 1"),
    (["--hidden", "4", "--k", "9"], "--k 9 exceeds"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(["spectrum", *argv, "--steps", "5"]) == 2
    assert message in capsys.readouterr().err


def test_argument_types_are_checked(capsys):
    with pytest.raises(SystemExit) as err:
        main(["spectrum", "--hidden", "-3"])
    assert err.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_assignment_reads_json_values_and_falls_back_to_text():
    assert assignment("hidden=8") == ("hidden", 8)
    assert assignment("lr=3e-3") == ("lr", 0.003)
    assert assignment("device=cpu") == ("device", "cpu")
    assert assignment("k=null") == ("k", None)
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        assignment("=3")


def test_table_aligns_columns_under_a_rule():
    assert table([["a", "bb"], ["ccc", "d"]]).splitlines() == ["a    bb", "---  --", "ccc  d"]


def test_the_science_package_imports_no_product_package():
    """Neither importing the root nor running a command of the science package loads the
    task, worker or service packages."""
    code = ("import sys, aelle.cli; code = aelle.cli.main(['spectrum', '--hidden', '4', "
            "'--steps', '5', '--json']); print(code, sorted({m.split('.')[0] for m in "
            "sys.modules} & {'tasks', 'service', 'workers'}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.stdout.splitlines()[-1] == "0 []", p.stderr


def add_oops(sub):
    """A command of a plugin: ``oops --kind K`` raises K."""
    errors = {"command": CommandError("no such study"), "value": ValueError("bad value"),
              "bug": RuntimeError("a bug")}

    def run(args):
        raise errors[args.kind]

    p = sub.add_parser("oops", help="fails")
    p.add_argument("--kind", choices=list(errors))
    p.set_defaults(func=run)


def add_nothing(sub):
    """A plugin that forgets to add its command."""


@pytest.fixture
def plugins(monkeypatch):
    """The installed commands plus three of a plugin: one that works, one whose module does
    not exist, one that adds no command."""
    installed = list(aelle.cli.entry_points(group=GROUP))
    extra = [EntryPoint("oops", f"{__name__}:add_oops", GROUP),
             EntryPoint("ghost", "no_such_package.cli:add_parser", GROUP),
             EntryPoint("lazy", f"{__name__}:add_nothing", GROUP)]
    monkeypatch.setattr(aelle.cli, "entry_points", lambda group: [*installed, *extra]
                        if group == GROUP else [])


@pytest.mark.parametrize(("kind", "message"), [("command", "no such study"),
                                               ("value", "bad value")])
def test_a_command_error_or_value_error_exits_2_with_one_line(plugins, kind, message, capsys):
    assert main(["oops", "--kind", kind]) == 2
    assert capsys.readouterr().err == f"aelle oops: error: {message}\n"


def test_other_exceptions_keep_their_traceback(plugins):
    with pytest.raises(RuntimeError, match="a bug"):
        main(["oops", "--kind", "bug"])


def test_a_broken_entry_point_is_named_in_one_line_and_the_others_work(plugins, capsys):
    assert main(["ghost", "--whatever", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "ghost = no_such_package.cli:add_parser" in err and "ModuleNotFoundError" in err
    assert main(["lazy"]) == 2
    assert "added no subcommand named 'lazy'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    assert "unavailable: ModuleNotFoundError" in listing and "spectrum" in listing
    assert main(["spectrum", "--hidden", "4", "--steps", "5", "--json"]) == 0
