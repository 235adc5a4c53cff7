"""Locust users for bench_api.py: each reads the API's read routes of one tenant with a token
(``LIFTOS_BENCH_TOKEN``, ``LIFTOS_BENCH_TENANT``), with no think time."""

import os

from locust import FastHttpUser, task

TENANT = os.environ.get("LIFTOS_BENCH_TENANT", "bench")
ROUTES = ("", "/model", "/contributions", "/curves", "/trust", "/runs", "/anomalies",
          "/quality", "/plans")


class Reader(FastHttpUser):
    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {os.environ['LIFTOS_BENCH_TOKEN']}"}

    @task
    def read_everything(self) -> None:
        for route in ROUTES:
            self.client.get(f"/v1/tenants/{TENANT}{route}", headers=self.headers,
                            name=route or "/ (overview)")
        self.asked = getattr(self, "asked", 0) + 1  # a new question each time: no cache helps
        self.client.get(f"/v1/tenants/{TENANT}/memory?q=why+did+tv+move+{id(self)}+{self.asked}",
                        headers=self.headers, name="/memory")
