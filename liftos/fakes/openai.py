"""A local OpenAI API (``POST /v1/chat/completions`` with structured outputs) for the ``openai`` SDK.

It plays a model that writes a brief from the FACTS JSON in the request: one claim per fact,
citing it. Behaviours for tests, consumed one per request (the last one repeats):

* ``grounded``: a brief whose every claim is supported;
* ``invent_roas``: a ROAS claim's number made up; ``wrong_channel``: a claim names another of
  the tenant's channels; ``flip_direction``: "rose" for a fall; ``percent_points``: a
  percentage-point change written as a percent;
* ``429:<seconds>`` (Retry-After), ``500``, ``timeout:<seconds>`` (answers late),
  ``malformed`` (content that is not JSON), ``refusal``.

It checks what the SDK sends: a bearer key, a ``json_schema`` response format in strict mode.
A ``ScoredBatch`` schema is Lift Sentiment's model scorer: :func:`read_texts` answers it.

A request without a response format is a plain question (Lift Surfacing's category prompts):
``assistant(prompt)`` writes the answer (default: a fixed reply naming no brand); the error
behaviours above apply to it too.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from liftos.fakes.http import HTTPFake, send_json


class FakeOpenAI(HTTPFake):
    def __init__(self, api_key: str = "sk-fake-key", behaviours: list[str] | None = None,
                 assistant: Callable[[str], str] | None = None):
        self.api_key = api_key
        self.behaviours = list(behaviours or ["grounded"])
        self.assistant = assistant or (lambda prompt: "It depends on what you need.")
        self.requests: list[dict] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self) -> str:
        with self._lock:
            return self.behaviours.pop(0) if len(self.behaviours) > 1 else self.behaviours[0]

    def _serve(self, request: BaseHTTPRequestHandler, body: dict | None) -> None:
        body = body or {}
        self.requests.append({"path": request.path, "body": body,
                              "authorization": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _send(request, 401, {"error": {"message": "Incorrect API key provided",
                                                  "type": "invalid_request_error",
                                                  "code": "invalid_api_key"}})
        if request.path.rstrip("/") != "/v1/chat/completions":
            return _send(request, 404, {"error": {"message": f"no route {request.path}"}})
        schema = (body.get("response_format") or {}).get("json_schema") or {}
        if body.get("response_format") and not schema.get("strict"):
            return _send(request, 400, {"error": {"message": "expected a strict json_schema"}})
        behaviour = self._next()
        kind, _, arg = behaviour.partition(":")
        if kind == "429":
            return _send(request, 429, {"error": {"message": "Rate limit reached",
                                                  "type": "requests"}},
                         {"Retry-After": arg or "1"})
        if kind == "500":
            return _send(request, 500, {"error": {"message": "The server had an error"}})
        if kind == "timeout":
            time.sleep(float(arg or 5))
        if kind == "refusal":
            return _send(request, 200, _completion(body, None, refusal="I can't help with that."))
        if kind == "malformed":
            return _send(request, 200, _completion(body, '{"headline": {"text": "Email dr'))
        if schema.get("name") == "ScoredBatch":
            return _send(request, 200, _completion(body, json.dumps(read_texts(body, kind))))
        if not schema:
            question = next((m.get("content") or "" for m in reversed(body.get("messages", []))
                             if m.get("role") == "user"), "")
            return _send(request, 200, _completion(body, self.assistant(question)))
        brief = write(_facts(body), kind)
        return _send(request, 200, _completion(body, json.dumps(brief)))


POSITIVE = ("love", "great", "excellent", "happy", "best", "gut", "toll", "super", "genial")
NEGATIVE = ("terrible", "awful", "bad", "broke", "worst", "refund", "schlecht", "enttäuscht",
            "kaputt")


def read_texts(body: dict, behaviour: str = "grounded") -> dict:
    """The fake model's sentiment reading: a small two-language lexicon (English, German);
    ``partial`` leaves the last text of the batch out."""
    content = next((m.get("content") or "" for m in body.get("messages", [])
                    if str(m.get("content") or "").startswith("TEXTS:\n")), "TEXTS:\n[]")
    items = []
    for entry in json.loads(content[len("TEXTS:\n"):]):
        words = re.findall(r"\w+", entry["text"].lower())
        value = 0.8 * (sum(w in POSITIVE for w in words) > 0) - 0.8 * (
            sum(w in NEGATIVE for w in words) > 0)
        german = any(w in ("und", "sehr", "nicht", "schlecht", "gut", "toll") for w in words)
        items.append({"id": entry["id"], "score": value,
                      "label": "positive" if value > 0 else "negative" if value < 0 else "neutral",
                      "language": "de" if german else "en", "aspect": "product"})
    return {"items": items[:-1] if behaviour == "partial" and items else items}


def _facts(body: dict) -> dict:
    for message in body.get("messages", []):
        content = message.get("content") or ""
        if isinstance(content, str) and content.startswith("FACTS:\n"):
            return json.loads(content[len("FACTS:\n"):])
    return {"facts": [], "channels": {}}


def write(facts: dict, behaviour: str = "grounded") -> dict:
    """The fake model's brief: one claim per fact, then the behaviour's one mistake."""
    claims = []
    for fact in facts["facts"]:
        if fact.get("direction") in ("up", "down"):
            verb = "rose" if fact["direction"] == "up" else "fell"
            text = f"The {fact['label']} {verb}: {fact['value'].lstrip('-−')}."
        else:
            text = f"The {fact['label']}: {fact['value']}."
        claims.append({"text": text, "fact_ids": [fact["id"]]})
    claims = _mistake(claims, facts, behaviour)
    head, rest = (claims[0], claims[1:]) if claims else ({"text": "No facts.", "fact_ids": []},
                                                         [])
    return {"headline": head, "paragraphs": [{"claims": rest}]}


def _mistake(claims: list[dict], facts: dict, behaviour: str) -> list[dict]:
    def first(prefix: str) -> int | None:
        return next((i for i, c in enumerate(claims) if c["fact_ids"][0].startswith(prefix)),
                    None)

    i = {"invent_roas": first("roas."), "wrong_channel": first("roas."),
         "flip_direction": first("roas_change."),
         "percent_points": first("share_change.")}.get(behaviour)
    if i is None:
        return claims
    text = claims[i]["text"]
    if behaviour == "invent_roas":
        def inflate(match: re.Match) -> str:
            return f"{float(match.group(1).replace(',', '.')) * 1.6 + 0.37:.2f}"

        text = re.sub(r"(\d+[.,]\d+)(?=\.$)", inflate, text)
    elif behaviour == "wrong_channel":
        names = list(facts["channels"].values())
        own = next(n for n in names if n in text)
        text = text.replace(own, next(n for n in names if n != own and n not in own))
    elif behaviour == "flip_direction":
        text = text.replace(" rose:", " fell:") if " rose:" in text else text.replace(
            " fell:", " rose:")
    elif behaviour == "percent_points":
        text = re.sub(r" percentage points", "%", text)
    claims[i] = {**claims[i], "text": text}
    return claims


def _completion(body: dict, content: str | None, refusal: str | None = None) -> dict:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content,
                                     "refusal": refusal}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(content or "") // 4,
                      "total_tokens": prompt + len(content or "") // 4}}


def _send(request: BaseHTTPRequestHandler, status: int, document: dict,
          headers: dict | None = None) -> None:
    send_json(request, status, json.dumps(document).encode(), headers=headers)
