"""One module per client protocol, plus the operational endpoints."""
