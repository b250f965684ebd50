#!/usr/bin/env bash
# The gateway with nothing but curl: health, the model list, a chat completion, and two streams.
# No key is needed for the built-in mock; with real providers the gateway uses its own keys.
set -euo pipefail
GATEWAY="${MINI_LLM_URL:-http://127.0.0.1:3333}"

echo "== health"
curl -sS --fail-with-body "$GATEWAY/health"
echo

echo "== models"
curl -sS --fail-with-body "$GATEWAY/v1/models"
echo

echo "== chat completion"
curl -sS --fail-with-body "$GATEWAY/v1/chat/completions" \
  -H 'content-type: application/json' \
  -d '{"model": "mock", "messages": [{"role": "user", "content": "Say hello."}]}'
echo

echo "== chat completion, streamed (-N: print each event as it arrives)"
curl -sS -N --fail-with-body "$GATEWAY/v1/chat/completions" \
  -H 'content-type: application/json' \
  -d '{"model": "mock", "stream": true, "messages": [{"role": "user", "content": "Say hello."}]}'

echo "== Anthropic message, streamed"
curl -sS -N --fail-with-body "$GATEWAY/v1/messages" \
  -H 'content-type: application/json' \
  -H 'anthropic-version: 2023-06-01' \
  -d '{"model": "mock", "max_tokens": 7, "stream": true, "messages": [{"role": "user", "content": "Say hello."}]}'
