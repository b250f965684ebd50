"""LiteLLM's proxy in its own venv (.venv-litellm, created on first use), configured to touch no network.

Pinned with ==: LiteLLM 1.107.0 was a compromised release; never move the pin to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from . import peer_venv
from .procs import Launch

PIN: Final = "1.106.12"
VENV: Final = Path(__file__).resolve().parents[2] / ".venv-litellm"
_BIN: Final = VENV / "bin"
MASTER_KEY: Final = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one
_INSTALL_TIMEOUT_S: Final = 900


def installed_version() -> str | None:
    return peer_venv.installed_version(_BIN / "python", "litellm")


def ensure(log: Path) -> None:
    """Install litellm[proxy]==PIN unless present; raises RuntimeError with the reason when it cannot."""
    if installed_version() != PIN or not (_BIN / "litellm").exists():
        peer_venv.install(VENV, f"litellm[proxy]=={PIN}", "LiteLLM", log, _INSTALL_TIMEOUT_S)


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
