"""The ``trademon`` command. Each subcommand lives in its own module, imported only
when used, with ``configure(parser)`` and ``main(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys

from trademon.settings.env import ConfigError, as_typed

SUBCOMMANDS = {
    "sim": ("trademon.sim.cli", "demo simulator: the trader's services and the broker, with scenarios"),
    "ib-exporter": ("trademon.ib.cli", "Prometheus exporter for TWS / IB Gateway (read-only)"),
    "alert-sink": ("trademon.alertsink.app", "file-based Alertmanager webhook receiver (JSON lines)"),
    "am-config": ("trademon.alertmanager.cli", "render the Alertmanager config from alertmanager/ and the environment (secrets to 0600 files)"),
    "thresholds": ("trademon.thresholds.cli", "monitoring/config.yml's thresholds as Prometheus rules; --watch keeps them current, --reload applies an edit"),
    "bot": ("trademon.bot.cli", "Telegram companion: delivers alerts with silence buttons, answers /status, /pnl and more"),
    "synthetic": ("trademon.synthetic.cli", "continuous synthetic checks"),
    "native": ("trademon.stack.native", "run Prometheus, Alertmanager and the trademon services natively, without Docker"),
    "demo": ("trademon.stack.tour", "guided tour: every scenario on and off against the running demo, the alerts it raises and when"),
    "check-exposure": ("trademon.stack.exposure", "compose start-up step: refuse wider-than-localhost ports with Grafana's default login"),
    "gen": ("trademon.gen", "regenerate the files derived from the contract (docs, rules, dashboards)"),
}


# Subcommand -> the extra that brings its dependencies (the core package is only the
# instrumentation library).
EXTRAS = {"ib-exporter": "ib", "sim": "sim", "gen": "gen", "bot": "bot"}


def _load(name: str, module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "trademon":
            raise
        extra = EXTRAS.get(name, "services")
        raise SystemExit(f"trademon {name}: needs the package {e.name!r}, which is not installed: "
                         f"pip install 'trademon[{extra}]' (or 'trademon[all]')") from None


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="trademon", description="Monitoring for automated trading on Interactive Brokers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=module)
        # Only the chosen subcommand's module is imported (and only it defines options).
        if argv and argv[0] == name:
            _load(name, module).configure(sp)
    return parser, parser.parse_args(argv)


def _config_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean "fix your configuration": shown as one line, exit 2. A setting
    or a refused config file raises ConfigError; a port in use is the other (service.py, looked
    up when raised because only the subcommands that serve import it)."""
    errors: tuple[type[Exception], ...] = (ConfigError,)
    if service := sys.modules.get("trademon.runtime.service"):
        errors += (service.PortInUse,)
    return errors


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _, args = build_parser(argv)
    mod = _load(args.command, args._module)
    try:
        return mod.main(args) or 0
    except Exception as e:
        if (service := sys.modules.get("trademon.runtime.service")) and isinstance(e, service.TaskDied):
            print(f"trademon {args.command}: {e}", file=sys.stderr)  # the log has the traceback
            return 1
        if not isinstance(e, _config_errors()):
            raise
        from trademon.runtime.logs import redact  # a value in the message may be a secret

        shown = as_typed(e, args) if isinstance(e, ConfigError) else e
        print(redact(f"trademon {args.command}: configuration error: {shown}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
