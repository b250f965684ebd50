"""nginx as a child process: the proxy under test and the canned control upstream, from the .conf templates."""

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


def canned(prefix: Path, json_port: int, sse_port: int, json_body: bytes, sse_body: bytes) -> Launch:
    """nginx answering every request on `json_port` with the JSON body and on `sse_port` with the SSE body."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "json.body").write_bytes(json_body)
    (prefix / "sse.body").write_bytes(sse_body)
    values = {"json_port": json_port, "sse_port": sse_port}
    return _launch("nginx-canned", "nginx-canned.conf", prefix, json_port, values)


def version() -> str:
    if BINARY is None:
        return "not installed"
    out = subprocess.run([BINARY, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return out.stderr.strip().removeprefix("nginx version: ").removeprefix("nginx/")
