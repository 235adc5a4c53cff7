"""LiftOS: causal marketing intelligence.

The library is importable and testable without a Prefect server; ``tasks/`` and ``flows/`` wrap it.
"""

__version__ = "0.1.0"
