"""Where LiftOS finds its files, resolved in one place.

Every folder has an environment override; the defaults are the folders shipped inside the
``liftos`` package (``templates/``, ``tenants/`` and ``deployments/`` of the repository are
installed as ``liftos.templates``, ``liftos.tenants`` and ``liftos.deployments``), so an editable
checkout and a plain ``pip install .`` resolve the same files and no module climbs out of its
package with ``Path(__file__).parents``.

==================  ========================  =========================================
field               environment               default
==================  ========================  =========================================
``home``            ``LIFTOS_HOME``           ``./.liftos``
``templates``       ``LIFTOS_TEMPLATES_DIR``  the bundled industry templates
``tenants``         ``LIFTOS_TENANTS_DIR``    the bundled tenants (``demo``, ``fakes-demo``)
``deployments``     ``LIFTOS_DEPLOYMENTS_DIR``  the bundled ``prefect.yaml``, work pool,
                                              automations, limits and Dask cluster spec
==================  ========================  =========================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    templates: Path
    tenants: Path
    deployments: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(home=Path(env.get("LIFTOS_HOME", ".liftos")).resolve(),
                   templates=_folder(env, "LIFTOS_TEMPLATES_DIR", "liftos.templates"),
                   tenants=_folder(env, "LIFTOS_TENANTS_DIR", "liftos.tenants"),
                   deployments=_folder(env, "LIFTOS_DEPLOYMENTS_DIR", "liftos.deployments"))

    @property
    def prefect_yaml(self) -> Path:
        """The deployments and their crons (the repository's top-level ``prefect.yaml``)."""
        return self.deployments / "prefect.yaml"

    def deployment_file(self, name: str) -> Path:
        return self.deployments / name


def settings() -> Settings:
    """The settings of this process now (read on every call: tests and commands set the
    environment after import)."""
    return Settings.from_env()


def _folder(env: Mapping[str, str], variable: str, package: str) -> Path:
    value = env.get(variable)
    return Path(value) if value else Path(str(files(package)))
