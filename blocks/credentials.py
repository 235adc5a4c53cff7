"""Source credentials as Prefect Blocks: secrets are ``SecretStr`` fields (encrypted by the
Prefect server, shown masked in the UI, never in logs, artifacts or error messages).

``endpoint`` (Google Ads) and ``base_url`` (Klaviyo) point the same SDK clients at another
host: the local fakes in tests and demos, a proxy in production. Register the types with
``liftos blocks register``; create instances in the Prefect UI, or from the environment with
``liftos blocks save google-ads|klaviyo --name NAME``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from liftos.errors import ConfigError, register_secret

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class GoogleAdsCredentials(Block):
    """OAuth client + refresh token and developer token for the Google Ads API."""

    _block_type_name = "LiftOS Google Ads Credentials"
    _block_type_slug = "liftos-google-ads-credentials"
    _description = "Google Ads API access for LiftOS ingestion (OAuth refresh token flow)."

    developer_token: SecretStr = Field(description="Google Ads developer token")
    client_id: str = Field(description="OAuth client id")
    client_secret: SecretStr = Field(description="OAuth client secret")
    refresh_token: SecretStr = Field(description="OAuth refresh token")
    login_customer_id: str | None = Field(
        default=None, description="Manager account the access goes through (digits only)")
    endpoint: str | None = Field(
        default=None, description="API host:port; default googleads.googleapis.com")
    token_uri: str = Field(default=GOOGLE_TOKEN_URI, description="OAuth token endpoint")

    ENV: ClassVar[dict[str, str]] = {"developer_token": "GOOGLE_ADS_DEVELOPER_TOKEN", "client_id": "GOOGLE_ADS_CLIENT_ID",
           "client_secret": "GOOGLE_ADS_CLIENT_SECRET",
           "refresh_token": "GOOGLE_ADS_REFRESH_TOKEN",
           "login_customer_id": "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
           "endpoint": "GOOGLE_ADS_ENDPOINT", "token_uri": "GOOGLE_ADS_TOKEN_URI"}

    def client(self, login_customer_id: str | None = None) -> Any:
        """A ``GoogleAdsClient`` (raw protobuf messages: the fastest to land and parse)."""
        from google.ads.googleads.client import GoogleAdsClient
        from google.oauth2.credentials import Credentials

        for secret in (self.refresh_token, self.client_secret, self.developer_token):
            register_secret(secret.get_secret_value())
        oauth = Credentials(token=None, refresh_token=self.refresh_token.get_secret_value(),
                            client_id=self.client_id,
                            client_secret=self.client_secret.get_secret_value(),
                            token_uri=self.token_uri)
        login = login_customer_id or self.login_customer_id
        return GoogleAdsClient(credentials=oauth,
                               developer_token=self.developer_token.get_secret_value(),
                               endpoint=self.endpoint, use_proto_plus=False,
                               login_customer_id=login.replace("-", "") if login else None)


class KlaviyoCredentials(Block):
    """A Klaviyo private API key."""

    _block_type_name = "LiftOS Klaviyo Credentials"
    _block_type_slug = "liftos-klaviyo-credentials"
    _description = "Klaviyo API access for LiftOS ingestion (private API key)."

    api_key: SecretStr = Field(description="Klaviyo private API key (pk_...)")
    base_url: str | None = Field(default=None, description="API base URL; default "
                                 "https://a.klaviyo.com")

    ENV: ClassVar[dict[str, str]] = {"api_key": "KLAVIYO_API_KEY", "base_url": "KLAVIYO_BASE_URL"}

    def client(self) -> Any:
        """A ``KlaviyoAPI`` whose own retries are off: LiftOS's retry policy is the only one."""
        import urllib3
        from klaviyo_api import KlaviyoAPI
        from openapi_client import rest

        register_secret(self.api_key.get_secret_value())
        api = KlaviyoAPI(api_key=self.api_key.get_secret_value(), max_delay=0, max_retries=0,
                         test_host=self.base_url or "")
        api.configuration.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0,
                                                  status=0, raise_on_status=False)
        api.api_client.rest_client = rest.RESTClientObject(api.configuration)
        return api


SOURCES: dict[str, type[Block]] = {"google-ads": GoogleAdsCredentials,
                                   "klaviyo": KlaviyoCredentials}


def from_env(kind: str, overrides: dict[str, str | None] | None = None) -> Block:
    """Credentials from the environment (the variable names Google's and Klaviyo's own tools
    use), without saving them; ``overrides`` (e.g. an ``--endpoint``) win."""
    block_type = SOURCES[kind]
    values = {field: os.environ.get(var) for field, var in block_type.ENV.items()}
    values.update({k: v for k, v in (overrides or {}).items() if v})
    required = [f for f, info in block_type.model_fields.items()
                if info.is_required() and not values.get(f)]
    if required:
        names = ", ".join(block_type.ENV[f] for f in required)
        raise ConfigError(f"{kind} credentials: set {names}, or name a saved "
                          f"{block_type._block_type_name} block (--credentials NAME)")
    return block_type(**{k: v for k, v in values.items() if v is not None})


def load_credentials(kind: str, block_name: str | None,
                     overrides: dict[str, str | None] | None = None) -> Block:
    """The saved block ``block_name`` (from the Prefect API), else the environment."""
    if not block_name:
        return from_env(kind, overrides)
    block = SOURCES[kind].load(block_name)
    for field, value in (overrides or {}).items():
        if value:
            setattr(block, field, value)
    return block


def register() -> list[str]:
    from liftos_app.blocks.chroma import ChromaServer
    from liftos_app.blocks.openai import OpenAICredentials

    types = [GoogleAdsCredentials, KlaviyoCredentials, ChromaServer, OpenAICredentials]
    for block_type in types:
        block_type.register_type_and_schema()
    return [t._block_type_slug for t in types]
