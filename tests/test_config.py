import pytest

from trademon.settings.env import ConfigError, env_bool, env_choice, env_float, env_int, env_list, env_port, secret


def test_defaults_and_values():
    assert env_int("X", 5, env={}) == 5
    assert env_int("X", 5, env={"X": " 7 "}) == 7
    assert env_float("X", 1.0, 0, 10, env={"X": "2.5"}) == 2.5
    assert env_bool("X", False, env={"X": "yes"}) is True
    assert env_list("X", env={"X": "a, b,,c"}) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: env_int("TRADEMON_N", 1, env={"TRADEMON_N": "ten"}), "TRADEMON_N='ten': not a whole number"),
        (lambda: env_port("P", 80, env={"P": "70000"}), "P='70000': out of range; allowed: whole number from 1 to 65535"),
        (lambda: env_float("F", 1.0, 0.0, None, env={"F": "nan"}), "F='nan': out of range"),
        (lambda: env_bool("B", True, env={"B": "maybe"}), "allowed: 1/0, true/false"),
        (lambda: env_choice("C", "a", ["a", "b"], env={"C": "z"}), "C='z': unknown value; allowed: a, b"),
        (lambda: env_list("L", choices=["a"], env={"L": "a,q"}), "unknown value(s) q; allowed: a"),
    ],
)
def test_bad_values_name_variable_problem_and_allowed(call, fragment):
    with pytest.raises(ConfigError) as e:
        call()
    assert fragment in str(e.value)


def test_secret_from_env_or_file(tmp_path):
    f = tmp_path / "token"
    f.write_text("s3cret\n")
    assert secret("T", env={"T": "direct"}) == "direct"
    assert secret("T", env={"T_FILE": str(f)}) == "s3cret"
    assert secret("T", env={}) is None
    with pytest.raises(ConfigError, match="T_FILE=.*cannot read the file"):
        secret("T", env={"T_FILE": str(tmp_path / "missing")})


def test_flags_override_their_variables(monkeypatch):
    import argparse

    from trademon.settings.env import add_env_flags, environ_with_flags

    flags = {"--speed": ("TRADEMON_X_SPEED", "how fast"), "--seed": ("TRADEMON_X_SEED", "")}
    parser = argparse.ArgumentParser()
    add_env_flags(parser, flags)
    monkeypatch.setenv("TRADEMON_X_SPEED", "1")
    monkeypatch.setenv("TRADEMON_X_SEED", "7")
    env = environ_with_flags(parser.parse_args(["--speed", "30"]), flags)
    assert env["TRADEMON_X_SPEED"] == "30" and env["TRADEMON_X_SEED"] == "7"
    assert "overrides TRADEMON_X_SPEED" in parser.format_help()
