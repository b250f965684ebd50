"""mini-llm: a small, very fast LLM API gateway."""

__version__ = "0.1.0"
