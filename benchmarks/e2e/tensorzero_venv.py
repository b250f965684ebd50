"""TensorZero's gateway in its own venv (.venv-tensorzero, created on first use), observability off.

Pinned with ==, so a new release never changes the comparison unnoticed. One model, `bench`, routed to
the upstream under test as an OpenAI-compatible provider; clients reach it as
`tensorzero::model_name::bench` at `/openai/v1/chat/completions`, the only API the embedded gateway serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from . import peer_venv
from .procs import Launch

PIN: Final = "2026.6.0"
VENV: Final = Path(__file__).resolve().parents[2] / ".venv-tensorzero"
_PYTHON: Final = VENV / "bin" / "python"
_LAUNCHER: Final = Path(__file__).with_name("tensorzero_gateway.py")
MODEL: Final = "tensorzero::model_name::bench"
PATH: Final = "/openai/v1/chat/completions"
_INSTALL_TIMEOUT_S: Final = 600


def installed_version() -> str | None:
    return peer_venv.installed_version(_PYTHON, "tensorzero")


def ensure(log: Path) -> None:
    """Install tensorzero==PIN unless present; raises RuntimeError with the reason when it cannot."""
    if installed_version() != PIN:
        peer_venv.install(VENV, f"tensorzero=={PIN}", "TensorZero", log, _INSTALL_TIMEOUT_S)


def config(upstream: str) -> str:
    """The gateway's TOML: observability off, one model on the upstream's OpenAI-compatible /v1."""
    return (
        "[gateway.observability]\n"
        "enabled = false\n\n"
        "[models.bench]\n"
        'routing = ["upstream"]\n\n'
        "[models.bench.providers.upstream]\n"
        'type = "openai"\n'
        'model_name = "gpt-4o-mini"\n'
        f'api_base = "{upstream}/v1/"\n'
        'api_key_location = "none"\n'
    )


def launch(workdir: Path, port: int, upstream: str) -> Launch:
    """`port` only names the run's files: the embedded gateway picks its own port and writes it down."""
    ensure(workdir / "tensorzero-install.log")
    prefix = workdir / f"tensorzero-{port}"
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / "tensorzero.toml"
    path.write_text(config(upstream))
    argv = [str(_PYTHON), str(_LAUNCHER), str(path), str(prefix / "port")]
    # Its usage analytics would call home: the benchmark talks to 127.0.0.1 only.
    env = {"RUST_LOG": "warn", "TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS": "1"}
    # No health path on the embedded gateway: any HTTP answer (a 404 to GET /health) means it serves.
    return Launch("tensorzero", argv, 0, env, port_file=prefix / "port", any_answer=True)
