"""``python -m liftos.fakes``: serve fake Google Ads (gRPC + TLS, OAuth) and Klaviyo (JSON:API)
on 127.0.0.1 and print how to point ``liftos ingest`` at them."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from liftos.fakes.google_ads import FakeGoogleAds
from liftos.fakes.klaviyo import FakeKlaviyo
from liftos.fakes.tls import trust_bundle
from liftos.fakes.world import AdsWorld, KlaviyoWorld


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m liftos.fakes", description=__doc__)
    parser.add_argument("--ads-port", type=int, default=50051)
    parser.add_argument("--oauth-port", type=int, default=50052)
    parser.add_argument("--klaviyo-port", type=int, default=50053)
    parser.add_argument("--campaigns", type=int, default=8, help="campaigns per ads account")
    parser.add_argument("--cert-dir", type=Path, default=Path(".liftos/fakes"))
    args = parser.parse_args()
    ads = AdsWorld(start=date(2024, 1, 1), end=date(2025, 12, 31),
                   campaigns_per_account=args.campaigns)
    google = FakeGoogleAds(ads, cert_dir=args.cert_dir.resolve()).start(args.ads_port,
                                                                        args.oauth_port)
    klaviyo = FakeKlaviyo(KlaviyoWorld(ads)).start(args.klaviyo_port)
    print(f"""Fake Google Ads on {google.endpoint} (TLS), OAuth on {google.token_uri}
Fake Klaviyo on {klaviyo.base_url}

In another shell:
  export GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={trust_bundle(google.ca_cert, google.cert_dir)}
  export GOOGLE_ADS_DEVELOPER_TOKEN={google.developer_token} GOOGLE_ADS_CLIENT_ID={google.client_id}
  export GOOGLE_ADS_CLIENT_SECRET={google.client_secret} GOOGLE_ADS_REFRESH_TOKEN={google.refresh_token}
  export GOOGLE_ADS_TOKEN_URI={google.token_uri} KLAVIYO_API_KEY={klaviyo.api_key}
  .venv/bin/liftos ingest google-ads --tenant fakes-demo --since 2024-01-01 --until 2025-12-31 --endpoint {google.endpoint}
  .venv/bin/liftos ingest klaviyo --tenant fakes-demo --since 2024-01-01 --until 2025-12-31 --base-url {klaviyo.base_url}
  .venv/bin/liftos run --tenant fakes-demo   # refresh on the ingested panel
Ctrl-C stops the fakes.""", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        google.stop()
        klaviyo.stop()


if __name__ == "__main__":
    main()
