"""The LiftOS application: the command line (``liftos_app.cli``) and the Prefect layer, installed
as ``liftos_app.flows``, ``liftos_app.tasks`` and ``liftos_app.blocks`` from the repository's
top-level ``flows/``, ``tasks/`` and ``blocks/`` folders. The domain library ``liftos`` imports
none of this (``tests/test_boundary.py``)."""
