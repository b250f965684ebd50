"""LiteLLM's proxy in its own venv (.venv-litellm, created on first use), configured to touch no network.

Pinned with ==: LiteLLM 1.107.0 was a compromised release; never move the pin to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

from .procs import Launch

PIN: Final = "1.106.12"
VENV: Final = Path(__file__).resolve().parents[2] / ".venv-litellm"
_BIN: Final = VENV / "bin"
MASTER_KEY: Final = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one
_INSTALL_TIMEOUT_S: Final = 900


def installed_version() -> str | None:
    if not (_BIN / "python").exists():
        return None
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    out = subprocess.run([str(_BIN / "python"), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def ensure(log: Path) -> None:
    """Install litellm[proxy]==PIN unless present; raises RuntimeError with the reason when it cannot."""
    if installed_version() == PIN and (_BIN / "litellm").exists():
        return
    print(f"installing litellm[proxy]=={PIN} into {VENV} (first run only)", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(_BIN / "python"), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={PIN}"],
    ]
    with log.open("wb") as out:
        for step in steps:
            try:
                done = subprocess.run(
                    step, check=False, stdout=out, stderr=subprocess.STDOUT, timeout=_INSTALL_TIMEOUT_S
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"installing LiteLLM took over {_INSTALL_TIMEOUT_S}s") from exc
            if done.returncode != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"installing litellm[proxy]=={PIN} failed: {tail[0][:200]}")


def launch(workdir: Path, port: int, routes: dict[str, str]) -> Launch:
    """One uvicorn worker, no database; `routes` maps each model name clients send to an upstream base URL."""
    model_list = [
        {
            "model_name": name,
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": f"{base}/v1", "api_key": "dummy-key"},
        }
        for name, base in routes.items()
    ]
    config = {
        "model_list": model_list,
        "litellm_settings": {"turn_off_message_logging": True, "set_verbose": False, "request_timeout": 600},
        "general_settings": {"master_key": MASTER_KEY, "disable_spend_logs": True},
    }
    path = workdir / "litellm-config.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    argv = [str(_BIN / "litellm"), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    return Launch("litellm", [*argv, "--num_workers", "1"], port, env, "/health/liveliness", ready_timeout=240)
