"""A deterministic advertiser behind the fake servers: a Google Ads manager account with client
accounts and campaigns, and a Klaviyo account whose orders respond to the ad spend.

Everything derives from a seed, so a test (or a benchmark) knows exactly which rows the sources
hold and can compare what was ingested with the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

CAMPAIGN_KINDS = (  # name stem, channel the default rules map it to, daily spend scale
    ("Search - Brand", "search", 180.0),
    ("Search - Generic", "search", 320.0),
    ("YouTube - Awareness", "tv", 450.0),
    ("Display - Retargeting", "display", 120.0),
)


@dataclass(frozen=True)
class AdsAccount:
    customer_id: str
    descriptive_name: str
    currency: str = "USD"
    time_zone: str = "America/New_York"


@dataclass
class AdsWorld:
    """Daily campaign metrics of every client account under one manager account."""

    start: date = date(2024, 1, 1)
    end: date = date(2025, 12, 31)
    campaigns_per_account: int = 4
    seed: int = 7
    manager_id: str = "1112223334"
    accounts: tuple[AdsAccount, ...] = (
        AdsAccount("1234567890", "Acme US"), AdsAccount("9876543210", "Acme Outlet"))
    _metrics: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def campaigns(self, customer_id: str) -> list[tuple[int, str]]:
        base = int(customer_id[-4:]) * 1000
        return [(base + k, f"{CAMPAIGN_KINDS[k % 4][0]} {k // 4 + 1:02d}")
                for k in range(self.campaigns_per_account)]

    def metrics(self, customer_id: str) -> dict[str, np.ndarray]:
        """Arrays of shape (campaigns, days): cost_micros, impressions, clicks, conversions,
        conversions_value."""
        if customer_id not in self._metrics:
            self._metrics[customer_id] = self._simulate(customer_id)
        return self._metrics[customer_id]

    def _simulate(self, customer_id: str) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(customer_id)])
        n, d = self.campaigns_per_account, self.days
        scale = np.array([CAMPAIGN_KINDS[k % 4][2] for k in range(n)])[:, None]
        t = np.arange(d)[None, :]
        weekly = 1 + 0.25 * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6, (n, 1)))
        yearly = 1 + 0.3 * np.sin(2 * np.pi * t / 365.25 + rng.uniform(0, 6, (n, 1)))
        flighting = np.where(np.arange(n)[:, None] % 4 == 2,
                             (np.sin(2 * np.pi * t / 56) > -0.3).astype(float), 1.0)
        spend = scale * weekly * yearly * flighting * rng.lognormal(0, 0.15, (n, d))
        cost_micros = np.round(spend * 1e6).astype(np.int64)
        impressions = np.round(spend * rng.uniform(80, 200, (n, 1))).astype(np.int64)
        clicks = np.round(impressions * rng.uniform(0.01, 0.05, (n, 1))).astype(np.int64)
        conversions = np.round(clicks * rng.uniform(0.02, 0.08, (n, 1)), 2)
        return {"cost_micros": cost_micros, "impressions": impressions, "clicks": clicks,
                "conversions": conversions, "conversions_value": np.round(conversions * 85.0, 2)}

    def late_conversions(self, since: date, factor: float) -> None:
        """Conversions reported for days from ``since`` on grow by ``factor`` (they arrive late)."""
        k = (since - self.start).days
        for customer_id in [a.customer_id for a in self.accounts]:
            m = self.metrics(customer_id)
            m["conversions"][:, k:] = np.round(m["conversions"][:, k:] * factor, 2)
            m["conversions_value"][:, k:] = np.round(m["conversions"][:, k:] * 85.0, 2)

    def day_range(self, first: date, last: date) -> range:
        lo = max(0, (first - self.start).days)
        hi = min(self.days - 1, (last - self.start).days)
        return range(lo, hi + 1)

    def date(self, k: int) -> date:
        return self.start + timedelta(days=k)

    def daily_spend_by_channel(self) -> dict[str, np.ndarray]:
        """Total spend per modelling channel per day (currency units), over every account."""
        totals: dict[str, np.ndarray] = {}
        for account in self.accounts:
            cost = self.metrics(account.customer_id)["cost_micros"] / 1e6
            for k in range(self.campaigns_per_account):
                channel = CAMPAIGN_KINDS[k % 4][1]
                totals[channel] = totals.get(channel, np.zeros(self.days)) + cost[k]
        return totals


KLAVIYO_METRICS = (  # id, name, integration
    ("RcVz1a", "Placed Order", "Shopify"),
    ("Ue7pQx", "Opened Email", "Klaviyo"),
    ("Wb9kLm", "Clicked Email", "Klaviyo"),
    ("Tz3nBv", "Received Email", "Klaviyo"),
    ("Hq5sDd", "Active on Site", "API"),
    ("Jm2wEe", "Viewed Product", "Shopify"),
    ("Kp8rFf", "Started Checkout", "Shopify"),
)


@dataclass
class KlaviyoWorld:
    """A Klaviyo account: metrics, email campaigns, and daily orders driven by the ad spend
    (with carry-over), so a model fitted to ingested data has an effect to find."""

    ads: AdsWorld = field(default_factory=AdsWorld)
    campaigns: int = 30
    seed: int = 11
    reviews_per_day: int = 2
    happy: float = 0.75          # share of happy reviewers; ``mood`` overrides it per day
    mood: Any = None             # optional: date -> share of happy reviewers that day
    _daily: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def daily(self, metric_id: str) -> dict[str, np.ndarray]:
        """``sum_value`` and ``count`` per day of ``ads.start .. ads.end``."""
        if not self._daily:
            self._simulate()
        return self._daily[metric_id]

    def _simulate(self) -> None:
        rng = np.random.default_rng(self.seed)
        days = self.ads.days
        spend = self.ads.daily_spend_by_channel()
        effect = {"search": 2.2, "tv": 1.4, "display": 0.8}
        revenue = 9000 + 1500 * np.sin(2 * np.pi * np.arange(days) / 365.25)
        for channel, daily in spend.items():
            revenue = revenue + effect.get(channel, 0.0) * _geometric_adstock(daily, 0.5)
        revenue = np.round(revenue * rng.lognormal(0, 0.05, days), 2)
        orders = np.round(revenue / 85.0)
        for metric_id, name, _ in KLAVIYO_METRICS:
            if name == "Placed Order":
                self._daily[metric_id] = {"sum_value": revenue, "count": orders}
            else:
                count = np.round(rng.uniform(500, 5000) * rng.lognormal(0, 0.1, days))
                self._daily[metric_id] = {"sum_value": np.zeros(days), "count": count}

    def review_records(self) -> list[dict]:
        """Product reviews (Klaviyo Reviews, ``review`` resources), oldest first."""
        rng = np.random.default_rng(self.seed + 2)
        records = []
        for k in range(self.ads.days * self.reviews_per_day):
            day = self.ads.start + timedelta(days=k // self.reviews_per_day)
            happy = rng.random() < (self.mood(day) if self.mood else self.happy)
            title, content = REVIEWS[bool(happy)][int(rng.integers(0, 3))]
            stamp = f"{day.isoformat()}T{10 + k % 8:02d}:15:00+00:00"
            records.append({
                "type": "review", "id": f"R{k:07d}",
                "attributes": {
                    "email": f"buyer{k}@example.com", "status": {"value": "published"},
                    "verified": bool(k % 3), "review_type": "review", "created": stamp,
                    "updated": stamp, "images": [],
                    "product": {"url": "https://shop.example.com/p/desk", "name": "Standing desk",
                                "image_url": None, "external_id": "SKU-1"},
                    "rating": int(4 + rng.integers(0, 2)) if happy else int(1 + rng.integers(0, 2)),
                    "author": f"Buyer {k}", "content": content, "title": title,
                    "smart_quote": None, "public_reply": None},
                "relationships": {"item": {"data": {"type": "catalog-item", "id": "SKU-1"}}},
                "links": {"self": f"/api/reviews/R{k:07d}/"}})
        return records

    def campaign_records(self) -> list[dict]:
        rng = np.random.default_rng(self.seed + 1)
        records = []
        for k in range(self.campaigns):
            sent = self.ads.start + timedelta(days=int(rng.integers(0, self.ads.days)))
            stamp = f"{sent.isoformat()}T14:00:00+00:00"
            records.append({
                "type": "campaign", "id": f"01K{k:06d}CAMPAIGN",
                "attributes": {
                    "name": f"Newsletter {k + 1:02d}", "status": "Sent", "archived": False,
                    "audiences": {"included": ["XyZ123"], "excluded": []},
                    "send_options": {"use_smart_sending": True},
                    "tracking_options": {"add_tracking_params": False, "is_tracking_clicks": True,
                                         "is_tracking_opens": True},
                    "send_strategy": {"method": "static", "datetime": stamp},
                    "created_at": stamp, "scheduled_at": stamp, "updated_at": stamp,
                    "send_time": stamp},
                "relationships": {"campaign-messages": {"data": [
                    {"type": "campaign-message", "id": f"01M{k:06d}"}]}},
                "links": {"self": f"/api/campaigns/01K{k:06d}CAMPAIGN/"}})
        return records


REVIEWS = {True: (("Love it", "Great desk, sturdy and easy to set up. Very happy."),
                  ("Excellent", "Excellent quality and fast delivery, would buy again."),
                  ("Best purchase", "The best purchase this year, works great.")),
           False: (("Terrible", "Terrible, the motor broke after a week. Want a refund."),
                   ("Awful support", "Awful support and the delivery was very late."),
                   ("Disappointed", "Bad quality, wobbly and disappointing."))}


def _geometric_adstock(x: np.ndarray, decay: float) -> np.ndarray:
    out = np.empty_like(x)
    carry = 0.0
    for i, value in enumerate(x):
        carry = value + decay * carry
        out[i] = carry
    return out
