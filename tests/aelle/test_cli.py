"""The ``aelle spectrum`` command: the main job until the service exists."""

import json

import pytest

from aelle.cli import main


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
