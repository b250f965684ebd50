"""nginx as a child process: the C reference proxy, from the .conf templates."""

from __future__ import annotations

import resource
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Final

from .procs import Launch

_HERE: Final = Path(__file__).parent
BINARY: Final = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _launch(name: str, template: str, prefix: Path, port: int, values: Mapping[str, object]) -> Launch:
    if BINARY is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx-light)")
    prefix.mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)  # the worker runs as an unprivileged user when we are root (so must the run's dir)
    source = (_HERE / "nginx-common.conf").read_text() + (_HERE / template).read_text()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    conf = prefix / "nginx.conf"
    conf.write_text(Template(source).substitute(prefix=prefix, nofile=nofile, **values))
    argv = [BINARY, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
    return Launch(name, argv, port, health="/health")


def proxy(prefix: Path, port: int, upstream: str) -> Launch:
    """nginx proxy_pass to `upstream` (host:port)."""
    return _launch("nginx", "nginx-proxy.conf", prefix, port, {"port": port, "upstream": upstream})


def version() -> str:
    if BINARY is None:
        return "not installed"
    out = subprocess.run([BINARY, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return out.stderr.strip().removeprefix("nginx version: ").removeprefix("nginx/")
