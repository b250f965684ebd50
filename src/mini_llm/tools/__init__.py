"""Developer tools (bench, smoke, the mock server); the runtime never imports them."""
