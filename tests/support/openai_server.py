"""A small OpenAI-compatible chat-completions server on loopback, scripted per test.

    llm_server.answer({"decision": "approve", "rationale": "...", "confidence": 0.9})
    llm_server.tool_call("lookup_customer", {"customer_id": "42"})
    llm_server.fail(500) / llm_server.stall(2.0) / llm_server.answer("not json")

Each POST to /v1/chat/completions takes the next scripted reply (a 500 saying so when none is
left) and records the request body in `chat_requests`. GET /v1/models lists one model.
"""

from __future__ import annotations

import collections
import itertools
import json

import pytest

from tests.support.http_service import LoopbackService, Reply

MODEL = "loopback-model"


class OpenAIServer:
    def __init__(self, service: LoopbackService):
        self.service = service
        self.base_url = f"{service.url}/v1"
        self.script: collections.deque = collections.deque()
        self.chat_requests: list[dict] = []
        self._ids = itertools.count(1)
        service.route("POST", "/v1/chat/completions", self._chat)
        service.route("GET", "/v1/models", Reply(json={"object": "list", "data": [{"id": MODEL}]}))

    @property
    def count(self) -> int:
        return self.service.count

    def _chat(self, request) -> Reply:
        try:
            self.chat_requests.append(request.json())
        except ValueError:
            return Reply(status=400, json={"error": {"message": "body is not JSON"}})
        if not self.script:
            return Reply(status=500, json={"error": {"message": "no scripted answer left"}})
        return self.script.popleft()(request.json())

    def _completion(self, message: dict, *, model=None, finish_reason="stop", usage=None):
        def reply(body):
            return Reply(
                json={
                    "id": f"chatcmpl-{next(self._ids)}",
                    "object": "chat.completion",
                    "model": model or body.get("model") or MODEL,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                    "usage": usage
                    or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
            )

        return reply

    def answer(self, content, *, model=None, finish_reason="stop"):
        """An assistant message; a dict is sent as its JSON text, a str as is."""
        text = json.dumps(content) if isinstance(content, (dict, list)) else content
        self.script.append(
            self._completion(
                {"role": "assistant", "content": text}, model=model, finish_reason=finish_reason
            )
        )

    def tool_call(self, name: str, arguments, *, call_id: str | None = None):
        """An assistant message asking for one tool call (arguments: dict, or raw text)."""
        self.tool_calls([(name, arguments, call_id)])

    def tool_calls(self, calls):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id or f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments),
                    },
                }
                for name, arguments, call_id in calls
            ],
        }
        self.script.append(self._completion(message, finish_reason="tool_calls"))

    def fail(self, status: int = 500, body=None):
        payload = body if body is not None else {"error": {"message": "upstream failure"}}
        self.raw(Reply(status=status, json=payload))

    def stall(self, seconds: float):
        """Answer only after `seconds` (longer than the client's timeout in tests)."""
        self.raw(Reply(delay=seconds, json={"choices": []}))

    def raw(self, reply: Reply):
        self.script.append(lambda body: reply)


@pytest.fixture(name="llm_server")
def llm_server_fixture(make_service):
    return OpenAIServer(make_service())
