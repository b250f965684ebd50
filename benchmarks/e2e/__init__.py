"""End-to-end load benchmark: the gateway against direct, nginx, an aiohttp pass-through and LiteLLM."""
