"""Configuration from environment variables, with errors that say what to fix."""

from __future__ import annotations

import os
from typing import TypeVar, overload
from collections.abc import Callable, Iterable, Mapping

from trademon.runtime.redaction import redact_url
from trademon.settings import values

T = TypeVar("T")

# Where every trademon service listens unless told otherwise: nothing is open to the network by
# accident (compose sets 0.0.0.0 inside the container, where only the stack's network sees it).
LOOPBACK = "127.0.0.1"


class ConfigError(ValueError):
    """"Fix your configuration", the one error type of every setting: an environment variable
    (names the variable, the value, the problem and what is allowed) or a config file such as
    monitoring/config.yml (:meth:`in_file`: the file, the key and the fix). The trademon command
    prints it as one line and exits 2."""

    def __init__(self, variable: str, value: object, problem: str, allowed: str, *, message: str | None = None):
        self.variable, self.value, self.problem, self.allowed = variable, value, problem, allowed
        super().__init__(message or f"{variable}={value!r}: {problem}; allowed: {allowed}")

    @classmethod
    def in_file(cls, path: object, problem: str) -> ConfigError:
        """A refused config file: ``<path>: <where in it, the problem and the fix>``."""
        return cls(str(path), None, problem, "", message=f"{path}: {problem}")


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    v = (os.environ if env is None else env).get(name)
    return None if v is None or v.strip() == "" else v.strip()


# With a str default the result is a str; only a variable without a default can be absent.
@overload
def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str: ...
@overload
def env_str(name: str, default: None = None, env: Mapping[str, str] | None = None) -> str | None: ...
def env_str(name: str, default: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    v = _raw(name, env)
    return default if v is None else v


def _number(name, default, conv: Callable[[str], T], kind, lo, hi, env) -> T:
    v = _raw(name, env)
    if v is None:
        return default
    rng = f"{kind} from {lo if lo is not None else '-inf'} to {hi if hi is not None else 'inf'}"
    try:
        x = conv(v)
    except ValueError:
        raise ConfigError(name, v, f"not a {kind}", rng) from None
    if x != x or (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ConfigError(name, v, "out of range", rng)
    return x


def env_int(name: str, default: int, lo: int | None = None, hi: int | None = None, env=None) -> int:
    return _number(name, default, int, "whole number", lo, hi, env)


def env_float(name: str, default: float, lo: float | None = None, hi: float | None = None, env=None) -> float:
    return _number(name, default, float, "number", lo, hi, env)


def env_port(name: str, default: int, env=None) -> int:
    return env_int(name, default, 1, 65535, env)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool, env=None) -> bool:
    v = _raw(name, env)
    if v is None:
        return default
    if v.lower() in _TRUE:
        return True
    if v.lower() in _FALSE:
        return False
    raise ConfigError(name, v, "not a yes/no value", "1/0, true/false, yes/no, on/off")


def env_choice(name: str, default: str, choices: Iterable[str], env=None) -> str:
    choices = list(choices)
    v = _raw(name, env)
    if v is None:
        return default
    if v not in choices:
        raise ConfigError(name, v, "unknown value", ", ".join(choices))
    return v


def env_list(name: str, default: Iterable[str] = (), choices: Iterable[str] | None = None, env=None) -> list[str]:
    """A comma-separated list; with ``choices``, every item must be one of them."""
    v = _raw(name, env)
    items = list(default) if v is None else [x.strip() for x in v.split(",") if x.strip()]
    if choices is not None:
        allowed = list(choices)
        bad = [x for x in items if x not in allowed]
        if bad:
            raise ConfigError(name, v, f"unknown value(s) {', '.join(bad)}", ", ".join(allowed))
    return items


def env_duration(name: str, default: str, env: Mapping[str, str] | None = None) -> float:
    """A duration (``15m``, ``24h``, ``1h30m``) in seconds."""
    v = env_str(name, default, env)
    try:
        return values.seconds(v)
    except ValueError:
        raise ConfigError(name, v, "not a duration", values.DURATION_ALLOWED) from None


def url(name: str, value: str, allowed: str = values.URL_ALLOWED, max_len: int | None = None) -> str:
    """``value`` (of ``name``) as an http(s) URL without its trailing ``/``. The error shows the
    value with any credentials in it masked: it goes to the terminal and the logs."""
    try:
        checked = values.http_url(value)
    except ValueError:
        raise ConfigError(name, redact_url(value), "not an http(s) URL", allowed) from None
    if max_len is not None and len(value) > max_len:
        raise ConfigError(name, redact_url(value), f"longer than {max_len} characters", f"a URL of at most {max_len} characters")
    return checked


def env_url(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    return url(name, env_str(name, default, env))


def secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker secrets style)."""
    v = _raw(name, env)
    if v is not None:
        return v
    path = _raw(f"{name}_FILE", env)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError as e:
        raise ConfigError(f"{name}_FILE", path, f"cannot read the file ({e.strerror})", "a readable file holding the secret") from None


def port_variable(job: str) -> str:
    """The variable that moves a job's port: TRADEMON_<JOB>_PORT (``-`` becomes ``_``; the
    job trademon-bot's is TRADEMON_BOT_PORT, not TRADEMON_TRADEMON_BOT_PORT)."""
    return f"TRADEMON_{job.removeprefix('trademon-').upper().replace('-', '_')}_PORT"


def job_port(job: str, env: Mapping[str, str] | None = None) -> int:
    """A job's port: its contract default unless TRADEMON_<JOB>_PORT says otherwise."""
    from trademon.contract import JOBS

    return env_port(port_variable(job), JOBS[job].port, env)


def add_env_flags(parser, flags: Mapping[str, tuple[str, str]]) -> None:
    """Command-line flags that override environment variables: ``{"--flag": (VARIABLE, help)}``.

    The value is validated with the variable's own rules; :func:`as_typed` turns the error
    back into one that names the flag when the flag gave the value."""
    known = dict(parser.get_default("_env_flags") or {})
    known.update({variable: flag for flag, (variable, _) in flags.items()})
    parser.set_defaults(_env_flags=known)
    for flag, (variable, help_) in flags.items():
        parser.add_argument(flag, dest=variable, default=None, metavar="VALUE",
                            help=f"{help_}; overrides {variable}" if help_ else f"overrides {variable}")


def environ_with_flags(args, flags: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The environment with the flags given on the command line laid over it."""
    env = dict(os.environ)
    for variable, _ in flags.values():
        value = getattr(args, variable, None)
        if value is not None:
            env[variable] = str(value)
    return env


def as_typed(error: ConfigError, args) -> str:
    """The error in the words the user used: ``--speed '0'`` when the flag gave the value,
    ``TRADEMON_SIM_SPEED='0'`` when the environment (or .env) did."""
    flag = (getattr(args, "_env_flags", None) or {}).get(error.variable)
    if flag is None or getattr(args, error.variable, None) is None:
        return str(error)
    return f"{flag} {error.value!r}: {error.problem}; allowed: {error.allowed} (the flag sets {error.variable})"


def read_env_file(path) -> dict[str, str]:
    """``KEY=VALUE`` lines as docker compose reads ``.env``: ``#`` comments, blank lines,
    an optional ``export``, values optionally in single or double quotes (unquoted values
    end at `` #``). Interpolation (``${OTHER}``) is not supported; a line that is not an
    assignment is an error naming the file and line, so a typo is not silently ignored."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[7:].lstrip()
            key, sep, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
                raise ConfigError(f"{path}:{n}", raw.rstrip("\n"), "not a KEY=VALUE line", "KEY=VALUE, # comments, blank lines")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            elif " #" in value:
                value = value.split(" #", 1)[0].rstrip()
            out[key] = value
    return out


def environ_with_env_file(path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with ``path``'s variables under it: like compose, a variable set in
    the shell wins over the file (an empty shell value counts as unset)."""
    env = dict(os.environ if environ is None else environ)
    for k, v in read_env_file(path).items():
        if not env.get(k, "").strip():
            env[k] = v
    return env
