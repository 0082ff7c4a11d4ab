"""The simulator as a subprocess for tests: ``SimProcess.start(log_dir, speed=..., scenarios=...)``.

It runs ``python -m trademon sim`` on free ports (127.0.0.1), waits until every port
answers, and offers the control endpoint (``on``/``off``/``state``) and parsed scrapes
(``scrape(job)``; ``total(job, "orders_rejected_total", code="201")`` sums matching samples).
"""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from trademon.stack import services

from tests.support import described
from tests.support.procs import Proc, free_port, start, wait_for, wait_http

SIM_JOBS = services.BY_NAME["sim"].answers_as  # the stack's description: the jobs the simulator answers as


def family_of(sample_name: str) -> str:
    """The family a sample belongs to, as the parser names families (counters without _total)."""
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def samples(families: dict, sample_name: str, **labels) -> list:
    """The samples named ``sample_name`` (e.g. ``orders_rejected_total``) whose labels include ``labels``."""
    fam = families.get(family_of(sample_name)) or families.get(sample_name)
    if fam is None:
        return []
    return [s for s in fam.samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]


def total(families: dict, sample_name: str, **labels) -> float:
    """The sum of the matching samples (0 when there is none)."""
    return sum(s.value for s in samples(families, sample_name, **labels))


class _PortTaken(Exception):
    pass


class SimProcess:
    def __init__(self, proc: Proc, ports: dict[str, int]):
        self.proc = proc
        self.ports = ports

    @classmethod
    def start(cls, log_dir, *, speed: float = 30.0, scenarios=(), seed: int = 1, extra_env: dict | None = None,
              timeout: float = 30.0, ports: dict[str, int] | None = None) -> SimProcess:
        """``ports`` (job -> port, and "control"): chosen beforehand, e.g. for a service that
        must know them before the simulator starts; otherwise free ports are picked."""
        # A free port can be taken by another test run between asking and binding: then the
        # simulator exits 2 naming the port, and we try again with new ports.
        for attempt in range(3):
            try:
                return cls._start_once(log_dir, speed, scenarios, seed, extra_env, timeout, ports)
            except _PortTaken:
                if attempt == 2 or ports is not None:
                    raise

    @staticmethod
    def pick_ports() -> dict[str, int]:
        ports: dict[str, int] = {}
        while len(set(ports.values())) < len(SIM_JOBS) + 1:
            ports = {job: free_port() for job in (*SIM_JOBS, "control")}
        return ports

    @classmethod
    def _start_once(cls, log_dir, speed, scenarios, seed, extra_env, timeout, ports=None) -> SimProcess:
        ports = dict(ports) if ports else cls.pick_ports()
        # The command, listen address and ports as the stack's description gives them (native's).
        lay = described.layout({"sim": ports["control"], **{job: p for job, p in ports.items() if job != "control"}})
        svc = described.built(lay, Path(log_dir), ("sim",))["sim"]
        env = dict(svc.env)
        # No Prometheus follows here: the simulator keeps its own loss limit, which the tests'
        # scenarios are sized against (tests/test_thresholds_e2e.py starts a follower of its own).
        env.pop("TRADEMON_SIM_PROMETHEUS_URL")
        env.update({"TRADEMON_SIM_SEED": str(seed), "TRADEMON_SIM_SPEED": str(speed), "TRADEMON_SIM_SCENARIOS": ",".join(scenarios),
                    **(extra_env or {})})
        log_path = Path(log_dir) / f"sim-{ports['control']}.log"
        proc = start("trademon sim", svc.cmd, env, log_path)
        sim = cls(proc, ports)
        try:
            wait_http(sim.url("control") + "/healthz", timeout, proc)
            for job in SIM_JOBS:
                if job == "automatictrader-api" and "api-down" in scenarios:
                    # It answers 503 on purpose; any answer means it is serving.
                    wait_for(lambda: requests.get(sim.url(job) + "/healthz", timeout=2).status_code == 503,
                             timeout, what=f"{job} answering")
                else:
                    wait_http(sim.url(job) + "/healthz", timeout, proc)
        except BaseException:
            proc.close()
            if proc.popen.returncode == 2 and "already in use" in proc.log_text():
                raise _PortTaken() from None
            raise
        return sim

    def url(self, job: str) -> str:
        return f"http://127.0.0.1:{self.ports[job]}"

    def on(self, name: str) -> dict:
        r = requests.post(f"{self.url('control')}/scenarios/{name}", timeout=5)
        r.raise_for_status()
        return r.json()

    def off(self, name: str) -> dict:
        r = requests.delete(f"{self.url('control')}/scenarios/{name}", timeout=5)
        r.raise_for_status()
        return r.json()

    def state(self) -> dict:
        r = requests.get(f"{self.url('control')}/state", timeout=5)
        r.raise_for_status()
        return r.json()

    def scrape(self, job: str) -> dict:
        """The job's exposition, parsed: metric family name -> prometheus_client Metric.
        Counters are keyed by their family name (without ``_total``), as the parser gives them."""
        r = requests.get(f"{self.url(job)}/metrics", timeout=5)
        r.raise_for_status()
        return {m.name: m for m in text_string_to_metric_families(r.text)}

    def total(self, job: str, sample_name: str, **labels) -> float:
        """Scrape ``job`` and sum the matching samples."""
        return total(self.scrape(job), sample_name, **labels)

    def close(self) -> int | None:
        return self.proc.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
