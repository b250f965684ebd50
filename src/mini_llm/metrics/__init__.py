"""Prometheus metrics: recorded per worker as plain numbers, exposed at GET /metrics."""

from typing import Final

# Set by `mini-llm serve` for its workers: the folder where each writes its snapshot for the others.
# Here, in a module that imports nothing, so the main process gets the name without the recorder.
METRICS_DIR_ENV: Final = "MINI_LLM_METRICS_DIR"
