"""The container layer's images, built locally and cached in the engine (tests/images/README.md).

No registry is reachable where the suite runs, so:
- a Debian base comes from `debootstrap` of this machine's own Debian source, `docker import`ed,
  with Debian's python3: the trademon image is the project's Dockerfile built on it;
- prom/prometheus and prom/alertmanager are stand-ins built from the Debian packages
  scripts/install-tools.sh unpacked into .tools/root.

Every image is named under this run's own namespace (trademon-test-<run>/..., never an upstream
tag: on a user's machine the next `docker compose up` would run a stand-in) and removed at the
end (remove()); compose is pointed at them through its image settings (TRADEMON_IMAGE,
PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE). What is slow to make again stays in the cache directory,
outside the engine: the debootstrapped base as a tarball and the downloaded .debs. Builds use
the classic builder: BuildKit would fetch its frontend from a registry.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "images"
LABEL = "org.trademon.test.inputs"
# The base's packages: what the Dockerfile needs of python:*-slim (python, venv with pip, the tz
# database for am-config's check, CA certificates for pip).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "tzdata", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Change these when the recipes below change: they are part of the images' input hashes.
BASE_RECIPE = "minbase, docs and apt lists removed, host CA bundle, LANG=C.UTF-8 v1"
BUSYBOX_RECIPE = "busybox-static + ld.so + libc.so.6, root/nobody v1"


class EngineMissing(RuntimeError):
    pass


def run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def engine_version() -> str:
    """The engine's version, or EngineMissing saying how to get one."""
    if not shutil.which("docker"):
        raise EngineMissing("no docker CLI: scripts/test installs Debian's docker.io and starts dockerd when run as root; "
                            "or deselect the layer with -m 'not containers'")
    r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        raise EngineMissing(f"no Docker engine answers ({r.stderr.strip()[:300]}): scripts/test starts /usr/sbin/dockerd "
                            "when run as root; or deselect the layer with -m 'not containers'")
    return r.stdout.strip()


def versions() -> dict[str, str]:
    out = {}
    for line in (ROOT / "scripts" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def tools_root() -> Path:
    return ROOT / ".tools" / "root"


def cache_dir() -> Path:
    # inside the checkout (git-ignored, like .tools/): the suite writes nothing outside it
    d = Path(os.environ.get("TRADEMON_IMAGE_CACHE", ROOT / ".cache" / "images"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def digest(*parts: bytes | str | Path) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Path):
            files = sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts) if p.is_dir() else [p]
            for f in files:
                h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
                h.update(f.read_bytes())
        else:
            h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def dangling() -> set[str]:
    return set(subprocess.run(["docker", "images", "-q", "--no-trunc", "--filter", "dangling=true"],
                              capture_output=True, text=True, timeout=30).stdout.split())


def classic_build(context: Path, tag: str, inputs: str, dockerfile: Path | None = None, build_args: dict | None = None) -> None:
    cmd = ["docker", "build", "-q", "-t", tag, "--label", f"{LABEL}={inputs}"]
    if dockerfile:
        cmd += ["-f", str(dockerfile)]
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    before = dangling()
    run(cmd + [str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=900)
    # What this build left untagged (the replaced image, a multi-stage build's first stage):
    # removed, so repeated runs do not fill the engine's disk. In use or gone: left alone.
    left = sorted(dangling() - before)
    if left:
        subprocess.run(["docker", "rmi", *left], capture_output=True, timeout=120)


def debian_source() -> tuple[str, str]:
    """(suite, mirror) of this machine's main Debian apt entry, as scripts/install-tools.sh finds it."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in f.read_text().split("\n\n"):
            uri = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(\S+)", stanza, re.M)
            if uri and suites and re.search(r"debian/?$", uri.group(1)) and "security" not in uri.group(1):
                return suites.group(1), uri.group(1)
    raise RuntimeError("no Debian deb822 sources entry under /etc/apt/sources.list.d: the local base needs Debian's apt")


def apt_download(packages: list[str], into: Path) -> list[Path]:
    """The host's own apt fetches the .debs (an `apt-get update` first if the lists are empty)."""
    into.mkdir(parents=True, exist_ok=True)
    for f in into.glob("*.deb"):
        f.unlink()
    cmd = ["apt-get", "-qq", "download", *packages]
    if subprocess.run(cmd, cwd=into, capture_output=True, timeout=300).returncode != 0:
        run(["apt-get", "-qq", "update"], timeout=300)
        run(cmd, cwd=into, timeout=300)
    return sorted(into.glob("*.deb"))


def image_tags() -> dict[str, str]:
    """Every repository:tag the engine holds, with its image id (untagged images left out)."""
    out = run(["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], timeout=60).stdout.splitlines()
    return dict(line.split() for line in out if line.strip() and "<none>" not in line)


@dataclass
class Built:
    namespace: str = field(default_factory=lambda: f"trademon-test-{uuid.uuid4().hex[:10]}")
    tags: dict[str, str] = field(default_factory=dict)  # role -> tag
    seconds: dict[str, float] = field(default_factory=dict)  # role -> build time

    def name(self, role: str, tag: str) -> str:
        return f"{self.namespace}/{role}:{tag}"

    def compose_settings(self) -> dict[str, str]:
        """docker-compose.yml's image settings pointed at this run's images."""
        return {"TRADEMON_IMAGE": self.tags["trademon"], "PROMETHEUS_IMAGE": self.tags["prometheus"],
                "ALERTMANAGER_IMAGE": self.tags["alertmanager"]}

    def left(self) -> list[str]:
        return sorted(t for t in image_tags() if t.startswith(self.namespace + "/"))


def remove(built: Built) -> list[str]:
    """Removes every image of the run (containers of it must be gone); returns what is left."""
    # Children before the images they are built on, so each removal frees its layers.
    for tag in [*reversed(built.tags.values()), *built.left()]:
        subprocess.run(["docker", "rmi", tag], capture_output=True, text=True, timeout=300)
    return built.left()


def debian_python_base(built: Built) -> str:
    suite, mirror = debian_source()
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""
    inputs = digest(suite, mirror, " ".join(BASE_PACKAGES), ca, BASE_RECIPE)
    tag = built.name("debian-python", f"{suite}-{inputs}")
    tarball = cache_dir() / f"debian-python-{suite}-{inputs}.tar"
    t0 = time.monotonic()
    if not tarball.exists():
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is missing: apt-get install debootstrap (scripts/test does, as root)")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            rootfs = Path(tmp) / "rootfs"
            run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(rootfs), mirror], timeout=900)
            for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            if ca:  # trust what this machine trusts (tests/images/README.md says why)
                (rootfs / "etc/ssl/certs/ca-certificates.crt").write_bytes(ca)
            partial = Path(tmp) / "base.tar"
            run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
            partial.replace(tarball)
    with tarball.open("rb") as f:
        run(["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]', "-", tag], stdin=f)
    built.tags["debian-python"], built.seconds["debian-python"] = tag, time.monotonic() - t0
    return tag


def trademon_image(built: Built, base: str) -> str:
    """The project's Dockerfile, as users build it, on the local base."""
    tag = built.name("trademon", re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1))
    inputs = digest(base, ROOT / "Dockerfile", ROOT / ".dockerignore", ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "exporters" / "trademon")
    t0 = time.monotonic()
    classic_build(ROOT, tag, inputs, build_args={"PYTHON_IMAGE": base})
    built.tags["trademon"], built.seconds["trademon"] = tag, time.monotonic() - t0
    return tag


def busybox_glibc(built: Built) -> str:
    t0 = time.monotonic()
    debs = cache_dir() / "debs"
    have = sorted(debs.glob("*.deb")) if debs.exists() else []
    if not any(d.name.startswith("busybox-static_") for d in have) or not any(d.name.startswith("libc6_") for d in have):
        have = apt_download(["busybox-static", "libc6"], debs)
    inputs = digest(IMAGES / "busybox-glibc", BUSYBOX_RECIPE, *have)
    tag = built.name("busybox-glibc", inputs)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        ctx, unpacked = Path(tmp) / "ctx", Path(tmp) / "unpacked"
        shutil.copytree(IMAGES / "busybox-glibc", ctx)
        rootfs = ctx / "rootfs"
        for deb in have:
            run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(unpacked / "bin" / "busybox", rootfs / "bin" / "busybox")
        for lib in ("lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"):
            src = unpacked / lib if (unpacked / lib).exists() else unpacked / "usr" / lib
            (rootfs / lib).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src.resolve(), rootfs / lib)
        (rootfs / "etc").mkdir()
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        (rootfs / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")
        for d in ("tmp", "root", "home"):
            (rootfs / d).mkdir()
        (rootfs / "tmp").chmod(0o1777)
        classic_build(ctx, tag, inputs)
    built.tags["busybox-glibc"], built.seconds["busybox-glibc"] = tag, time.monotonic() - t0
    return tag


def _standin(built: Built, role: str, version: str, base: str, binaries: dict[str, str]) -> str:
    """prom/<role> stand-in: Debian's binaries from .tools/root in upstream's layout."""
    usr = tools_root() / "usr"
    # The Debian packages' versions identify the binaries (hashing ~200 MB of them would cost
    # more than the build); install-tools records them in .tools/packages.txt.
    inputs = digest(base, IMAGES / role, tools_root().parent / "packages.txt")
    tag = built.name(role, f"v{version}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(IMAGES / role, ctx)
        for name, src in binaries.items():
            shutil.copy2(usr / "bin" / src, ctx / name)
        # web/static: links to packages not unpacked, left dangling as in the .deb
        shutil.copytree(usr / "share" / "prometheus", ctx / "share", symlinks=True)
        classic_build(ctx, tag, inputs, build_args={"BASE": base})
    built.tags[role], built.seconds[role] = tag, time.monotonic() - t0
    return tag


def build_all() -> Built:
    """Every image the layer runs, under the run's own names; remove() them afterwards. A build
    that fails removes what it built so far."""
    v = versions()
    built = Built()
    try:
        base = debian_python_base(built)
        trademon_image(built, base)
        bb = busybox_glibc(built)
        _standin(built, "prometheus", v["PROMETHEUS_VERSION"], bb, {"prometheus": "prometheus", "promtool": "promtool"})
        _standin(built, "alertmanager", v["ALERTMANAGER_VERSION"], bb, {"alertmanager": "prometheus-alertmanager", "amtool": "amtool"})
    except BaseException:
        remove(built)
        raise
    return built
