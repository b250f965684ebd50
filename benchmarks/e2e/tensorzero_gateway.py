"""TensorZero's HTTP gateway, embedded in its Python wheel, as a process of its own.

Run by path with the TensorZero venv's Python: `python tensorzero_gateway.py CONFIG PORT_FILE`. It starts
the gateway the wheel embeds (the Rust server `tensorzero.patch_openai_client` starts; it binds a free
port of its own choosing on 127.0.0.1 and serves only `/openai/v1/...`), writes that port to PORT_FILE
and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

_STOP = {signal.SIGTERM, signal.SIGINT}


def main(config: str, port_file: Path) -> None:
    # Blocked before the gateway's threads start, so they inherit the mask and the main thread's sigwait
    # receives the signal.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    tensorzero = importlib.import_module("tensorzero")  # only in the TensorZero venv
    gateway = tensorzero._start_http_gateway(
        config_file=config, clickhouse_url=None, postgres_url=None, valkey_url=None, async_setup=False
    )
    staged = port_file.with_suffix(".tmp")
    staged.write_text(str(urlsplit(gateway.base_url).port))
    staged.replace(port_file)  # whole or absent: the harness polls for it
    signal.sigwait(_STOP)
    gateway.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
