"""A brief written by a model through the OpenAI SDK, published only when every claim is grounded.

Without a key the deterministic brief is published (the offline default). With one: the model
gets the facts (never raw data) and the versioned prompt, returns structured claims; the
grounding check runs; on violations the model is asked once more with the violations listed;
if that fails too, or the API fails for good (refusal, malformed output, errors after the
retry policy), the deterministic brief is published and the result says why. Every call is
recorded: model, prompt version, latency, tokens, cost estimate, grounding.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from liftos.brief.facts import Facts
from liftos.brief.grounding import Grounding, Violation, check
from liftos.brief.writer import BriefText, deterministic_brief
from liftos.errors import LiftOSError, redact, register_secret
from liftos.ingest.retry import Retry, RetryPolicy, SourceError, retry_after

PROMPTS = Path(__file__).parent / "prompts"
PROMPT_VERSION = "v1"
LANGUAGES = {"en": "English", "de": "German", "es": "Spanish", "fr": "French", "it": "Italian",
             "pt": "Portuguese", "nl": "Dutch"}


class LLMSettings(BaseModel):
    """Where and how to call the model (an ``OpenAICredentials`` block, or the SDK's usual
    environment variables: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``; ``LIFTOS_LLM_MODEL``)."""

    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    timeout: float = 30.0
    max_attempts: int = 3
    # Cost estimate per million tokens (set your contract's prices; defaults: a small model's list).
    input_price: float = 0.15
    output_price: float = 0.60

    @classmethod
    def from_env(cls) -> LLMSettings:
        key = os.environ.get("OPENAI_API_KEY")
        return cls(api_key=SecretStr(key) if key else None,
                   model=os.environ.get("LIFTOS_LLM_MODEL", cls.model_fields["model"].default),
                   base_url=os.environ.get("OPENAI_BASE_URL") or None)

    def client(self) -> Any:
        """The OpenAI SDK client; retries are the retry policy's, not the SDK's."""
        import openai

        return openai.OpenAI(api_key=self.api_key.get_secret_value(), base_url=self.base_url,
                             timeout=self.timeout, max_retries=0)

    def retry_policy(self) -> RetryPolicy:
        """The one retry policy of every model call (429, 5xx, timeouts)."""
        return RetryPolicy(max_attempts=self.max_attempts, base_delay=0.5, max_delay=8.0,
                           ceiling=30.0)


class Call(BaseModel):
    """One request to the model, for the LLM operations record."""

    model: str
    prompt_version: str
    attempt: int
    latency_s: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    outcome: str              # "grounded", "violations", or what went wrong
    grounding: str = ""


class BriefResult(BaseModel):
    brief: BriefText
    source: Literal["model", "deterministic"]
    grounding: Grounding
    reason: str = ""          # why the deterministic brief was published
    calls: list[Call] = []
    prompt_version: str = PROMPT_VERSION
    facts: int = 0

    @property
    def markdown(self) -> str:
        return self.brief.markdown()

    def describe(self) -> str:
        how = "written by the model" if self.source == "model" else (
            f"deterministic ({self.reason})")
        return f"brief {how}; {self.grounding.describe()}"


class ModelFailed(LiftOSError):
    """The model gave no usable brief (refusal, malformed output, an API error)."""


def prompt(version: str = PROMPT_VERSION) -> str:
    path = PROMPTS / f"{version}.md"
    if not path.exists():
        known = sorted(p.stem for p in PROMPTS.glob("*.md"))
        raise LiftOSError(f"no prompt version '{version}' (known: {', '.join(known)})")
    return path.read_text()


def write_brief(facts: Facts, settings: LLMSettings | None = None,
                prompt_version: str = PROMPT_VERSION, policy: RetryPolicy | None = None
                ) -> BriefResult:
    """The brief for ``facts``: the model's when configured and grounded, else deterministic."""
    if settings is None or settings.api_key is None:
        return _fallback(facts, "no OpenAI key configured", [], prompt_version)
    register_secret(settings.api_key.get_secret_value())
    calls: list[Call] = []
    violations: list[Violation] = []
    for attempt in (1, 2):
        try:
            brief, call = generate(facts, settings, prompt_version, attempt, violations, policy)
        except (ModelFailed, SourceError) as exc:
            calls.append(Call(model=settings.model, prompt_version=prompt_version,
                              attempt=attempt, latency_s=0.0, outcome=redact(str(exc))))
            return _fallback(facts, f"the model failed: {redact(str(exc))}", calls,
                             prompt_version)
        grounding = check([(c.text, c.fact_ids) for c in brief.claims()], facts)
        calls.append(call.model_copy(update={
            "outcome": "grounded" if grounding.ok else "violations",
            "grounding": grounding.describe()}))
        if grounding.ok:
            return BriefResult(brief=brief, source="model", grounding=grounding, calls=calls,
                               prompt_version=prompt_version, facts=len(facts.facts))
        violations = grounding.violations
    return _fallback(facts, "the model's brief failed the grounding check twice ("
                     + "; ".join(f"{v.kind}: {v.detail}" for v in violations[:3]) + ")",
                     calls, prompt_version)


def generate(facts: Facts, settings: LLMSettings, prompt_version: str = PROMPT_VERSION,
             attempt: int = 1, violations: list[Violation] = (),
             policy: RetryPolicy | None = None) -> tuple[BriefText, Call]:
    """One structured-output request (retried by the one retry policy on 429, 5xx, timeouts)."""
    import openai

    client = settings.client()
    language = LANGUAGES.get(facts.language.split("-")[0], facts.language)
    messages = [{"role": "system", "content": prompt(prompt_version).replace(
                    "{language}", language)},
                {"role": "user", "content": "FACTS:\n" + facts.for_prompt()}]
    if violations:
        messages.append({"role": "user", "content": (
            "Your previous brief was refused by the grounding check:\n"
            + "\n".join(f"- {v.kind}: {v.detail} (in: {v.claim!r})" for v in violations)
            + "\nWrite it again with every number from a cited fact.")})
    started = time.perf_counter()
    policy = policy or settings.retry_policy()
    try:
        completion = policy.run(lambda: client.chat.completions.parse(
            model=settings.model, messages=messages, response_format=BriefText,
            temperature=0.2), classify_error, "openai", "chat.completions")
    except (openai.APIError, ValueError) as exc:   # final: auth, bad request, malformed JSON
        raise ModelFailed(describe_error(exc)) from None
    latency = time.perf_counter() - started
    message = completion.choices[0].message
    if getattr(message, "refusal", None):
        raise ModelFailed(f"the model refused: {message.refusal}")
    if message.parsed is None:
        raise ModelFailed("the model returned no brief")
    usage = completion.usage
    tokens_in, tokens_out = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    cost = (tokens_in * settings.input_price + tokens_out * settings.output_price) / 1e6
    return message.parsed, Call(model=completion.model or settings.model,
                                prompt_version=prompt_version, attempt=attempt,
                                latency_s=round(latency, 3), input_tokens=tokens_in,
                                output_tokens=tokens_out, cost_usd=round(cost, 6), outcome="")


def classify_error(exc: Exception) -> Retry | None:
    import openai

    if isinstance(exc, openai.RateLimitError):
        return Retry("rate limited (HTTP 429)",
                     after=retry_after(exc.response.headers.get("retry-after")))
    if isinstance(exc, openai.APITimeoutError):
        return Retry("timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Retry("could not connect")
    if isinstance(exc, openai.InternalServerError):
        return Retry(f"server error (HTTP {exc.status_code})")
    return None


def describe_error(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return "the API key was refused (HTTP 401)"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {redact(str(exc))[:200]}"
    lines = [line.strip() for line in redact(str(exc)).splitlines() if line.strip()]
    return f"unusable answer: {' '.join(lines[:3])[:200]}"


def _fallback(facts: Facts, reason: str, calls: list[Call], prompt_version: str
              ) -> BriefResult:
    brief = deterministic_brief(facts)
    grounding = check([(c.text, c.fact_ids) for c in brief.claims()], facts)
    return BriefResult(brief=brief, source="deterministic", grounding=grounding, reason=reason,
                       calls=calls, prompt_version=prompt_version, facts=len(facts.facts))


def result_record(result: BriefResult) -> dict[str, Any]:
    """What the run keeps (``brief.json``): source, reason, grounding, every call."""
    return {"source": result.source, "reason": result.reason,
            "prompt_version": result.prompt_version, "facts": result.facts,
            "grounding": result.grounding.model_dump(),
            "calls": [c.model_dump() for c in result.calls]}
