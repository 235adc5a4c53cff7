"""Where LiftOS's heavy compute runs: an existing Dask scheduler when one is configured, else a
local cluster described by ``deployments/dask-cluster.yaml``.

The address is resolved when the first task is submitted (not at import), in this order:
the flow run's ``dask_address`` parameter, the Prefect Variable ``liftos-dask-address``, the
``LIFTOS_DASK_ADDRESS`` environment variable. A flow that submits nothing starts no cluster.
A configured scheduler is used even where the process already holds another Dask client;
with none configured, such a client's cluster is used (prefect-dask's rule) before a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from prefect.context import FlowRunContext
from prefect.utilities.importtools import from_qualified_name
from prefect_dask import DaskTaskRunner
from prefect_dask.client import PrefectDaskClient

from liftos.errors import LiftOSError
from liftos.settings import settings

ADDRESS_VARIABLE = "liftos-dask-address"
ADDRESS_ENV = "LIFTOS_DASK_ADDRESS"

log = logging.getLogger(__name__)


def configured_address() -> tuple[str | None, str]:
    """The scheduler address and where it came from (for the run log)."""
    context = FlowRunContext.get()
    parameters = context.parameters if context else {}
    if parameters.get("dask_address"):
        return parameters["dask_address"], "flow parameter dask_address"
    try:
        from prefect.variables import Variable

        value = Variable.get(ADDRESS_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - no API reachable: the other sources still apply
        value = None
    if value:
        return str(value), f"Prefect Variable {ADDRESS_VARIABLE}"
    if os.environ.get(ADDRESS_ENV):
        return os.environ[ADDRESS_ENV], f"environment {ADDRESS_ENV}"
    return None, "none configured"


def handshake(address: str, timeout: float | None = None) -> None:
    """Complete distributed's comm handshake with ``address`` within ``timeout`` seconds
    (default: distributed's connect timeout, ``distributed.comm.timeouts.connect``).

    Raises OSError when nothing there accepts connections, LiftOSError when something accepts
    and never answers: distributed's own Client would wait on such a peer forever (its
    handshake read has no timeout), hanging a refresh or ``liftos cluster up``/``status``.
    """
    if address.startswith("inproc://"):
        return
    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import connect

    if timeout is None:
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")

    async def greet() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 1)
        await comm.close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever this thread runs
        try:
            pool.submit(asyncio.run, greet()).result()
        except TimeoutError as exc:  # the peer accepted, then said nothing
            raise LiftOSError(f"{address} accepts connections but is not a Dask scheduler: no "
                              f"handshake within {timeout:.0f} s") from exc


def cluster_spec(path: Path | None = None) -> tuple[str, dict[str, Any]]:
    default = settings().deployment_file("dask-cluster.yaml")
    spec = yaml.safe_load((path or Path(os.environ.get("LIFTOS_DASK_CLUSTER", default)))
                          .read_text()) or {}
    kwargs = dict(spec.get("cluster_kwargs") or {})
    if "distributed.LocalCluster" in spec.get("cluster_class", "distributed.LocalCluster"):
        kwargs.setdefault("silence_logs", logging.WARNING)
    return spec.get("cluster_class", "distributed.LocalCluster"), kwargs


class LiftOSDaskTaskRunner(DaskTaskRunner):
    """A DaskTaskRunner that decides between an existing scheduler and a local cluster at run
    time, so one deployment works on a laptop and against a shared cluster."""

    def __init__(self, address: str | None = None):
        super().__init__(address=address)

    def duplicate(self) -> LiftOSDaskTaskRunner:
        return type(self)(address=self.address)

    @property
    def client(self):
        origin = "the task runner"
        if self._client is None and self._cluster is None and not self.address:
            address, origin = configured_address()
            if address:
                self.logger.info("Dask scheduler %s (from %s)", address, origin)
                self.address = address
            else:
                name, kwargs = cluster_spec()
                self.cluster_class = name
                self.resolved_cluster_class = from_qualified_name(name)
                self.cluster_kwargs = kwargs
        try:
            if self._client is None and self.address:
                return self._connect(self.address)
            return DaskTaskRunner.client.fget(self)
        except LiftOSError as exc:
            raise LiftOSError(f"{exc} (address from {origin})") from exc
        except OSError as exc:
            if not self.address:
                raise
            raise LiftOSError(
                f"the Dask scheduler {self.address} (from {origin}) does not answer: start it "
                f"(`liftos cluster up`), or point {ADDRESS_VARIABLE} / {ADDRESS_ENV} elsewhere "
                "(unset, a run starts a local cluster)") from exc

    def _connect(self, address: str) -> PrefectDaskClient:
        """A client of ``address`` itself: prefect-dask would use any Dask client already open
        in this process instead (a notebook's, an in-process worker's), and the run would go
        to a cluster nobody configured."""
        handshake(address)
        self._connect_to = address
        self._client = self._exit_stack.enter_context(
            PrefectDaskClient(address, **self.client_kwargs))
        return self._client


def home_worker(client: Any, tenant: str) -> str | None:
    """The worker holding a compiled model that ``tenant``'s fits used (the least busy one if
    several), or None: a first fit, or a cluster that cannot say."""
    from liftos.model.mmm import held_models

    try:
        held = client.run(held_models, on_error="return")
        processing = client.processing()
    except Exception:  # noqa: BLE001 - routing is an optimisation; the fit runs anywhere
        return None
    holders = [address for address, models in held.items() if isinstance(models, dict)
               and any(tenant in owners for owners in models.values())]
    return min(holders, key=lambda a: len(processing.get(a, ())), default=None)


@contextlib.contextmanager
def near_compiled_model(tenant: str) -> Iterator[None]:
    """Tasks submitted inside go to the worker that holds ``tenant``'s compiled model (a loose
    restriction: if that worker is gone, any worker runs them). On a standing cluster the
    tenant's next refresh then samples without compiling; on a per-run cluster it is a no-op."""
    import dask

    context = FlowRunContext.get()
    runner = getattr(context, "task_runner", None)
    home = home_worker(runner.client, tenant) if isinstance(runner, DaskTaskRunner) else None
    if home is None:
        yield
        return
    log.info("fit of %s sent to %s, which holds its compiled model", tenant, home)
    with dask.annotate(workers=[home], allow_other_workers=True):
        yield
