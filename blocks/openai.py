"""Where the weekly brief's model lives: an OpenAI-compatible endpoint, the key a secret field."""

from __future__ import annotations

import os

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from liftos.brief.llm import LLMSettings
from liftos.errors import ConfigError

BLOCK_ENV = "LIFTOS_OPENAI_BLOCK"


class OpenAICredentials(Block):
    """The model that writes briefs. Select it with ``LIFTOS_OPENAI_BLOCK=<block name>``;
    without it the SDK's environment variables apply, and without a key the brief is written
    by templates (offline)."""

    _block_type_name = "LiftOS OpenAI Credentials"
    _block_type_slug = "liftos-openai-credentials"
    _description = "An OpenAI-compatible endpoint for LiftOS's weekly brief."

    api_key: SecretStr = Field(description="API key")
    model: str = Field(default=LLMSettings().model, description="model name")
    base_url: str | None = Field(default=None, description="API base URL; default OpenAI's")
    timeout: float = Field(default=30.0, description="seconds per request")
    max_attempts: int = Field(default=3, description="attempts per request (429, 5xx, timeouts)")

    def settings(self) -> LLMSettings:
        return LLMSettings(api_key=self.api_key, model=self.model, base_url=self.base_url,
                           timeout=self.timeout, max_attempts=self.max_attempts)


def from_env() -> OpenAICredentials:
    """A block from the SDK's environment variables (``liftos blocks save openai``)."""
    settings = LLMSettings.from_env()
    if settings.api_key is None:
        raise ConfigError("openai credentials: set OPENAI_API_KEY (and OPENAI_BASE_URL, "
                          "LIFTOS_LLM_MODEL if not OpenAI's defaults)")
    return OpenAICredentials(api_key=settings.api_key, model=settings.model,
                             base_url=settings.base_url)


def llm_settings() -> LLMSettings:
    """The block named by ``LIFTOS_OPENAI_BLOCK`` when set, else the environment."""
    name = os.environ.get(BLOCK_ENV)
    return OpenAICredentials.load(name).settings() if name else LLMSettings.from_env()
