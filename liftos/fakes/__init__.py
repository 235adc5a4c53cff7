"""Local stand-ins for the Google Ads and Klaviyo APIs, speaking their real protocols, for tests,
benchmarks and demos (``python -m liftos.fakes``)."""
