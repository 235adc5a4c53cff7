"""``liftos cluster up|down|status``: a standing Dask cluster on this machine whose workers keep
compiled models warm between refreshes (see ``flows/cluster.py``)."""

from __future__ import annotations

import argparse
import json


def register(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser(
        "cluster", help="a standing Dask cluster (up|down|status) that keeps compiled models warm",
        description="liftos cluster up [--workers N] [--threads T] [--port P] | liftos cluster "
                    "down | liftos cluster status [--json]. `up` registers the scheduler as the "
                    "Prefect Variable liftos-dask-address, so every flow's heavy stages run "
                    "there; `down` clears it.")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start a scheduler and worker processes, detached")
    up.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    up.add_argument("--threads", type=int, default=1, help="threads per worker (default: 1)")
    up.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    up.add_argument("--port", type=int, default=8786, help="scheduler port (default: 8786)")
    up.add_argument("--dashboard-port", type=int, default=8787,
                    help="dashboard port (default: 8787)")
    up.add_argument("--memory-limit", default="auto",
                    help="per worker, e.g. 6GiB (default: auto, a share of this machine)")
    up.add_argument("--no-register", action="store_true",
                    help="do not set the Prefect Variable; use LIFTOS_DASK_ADDRESS instead")
    up.set_defaults(handler=up_command)
    down = actions.add_parser("down", help="stop the cluster and clear the Prefect Variable")
    down.set_defaults(handler=down_command)
    status = actions.add_parser("status", help="workers, their tasks and the models they hold")
    status.add_argument("--address", help="a scheduler (default: the one `up` started)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=status_command)


def up_command(args: argparse.Namespace) -> int:
    from liftos.home import DataHome
    from liftos_app.flows.cluster import up

    print(f"starting a Dask scheduler and {args.workers} worker(s)...", flush=True)
    cluster = up(args.workers, args.threads, args.host, args.port, args.dashboard_port,
                 args.memory_limit)
    print(f"Dask cluster up: {cluster.address} (dashboard {cluster.dashboard}), workers "
          f"{', '.join(map(str, cluster.worker_pids))}")
    if args.no_register:
        print(f"flows use it with: export LIFTOS_DASK_ADDRESS={cluster.address}")
    else:
        _register(cluster.address)
        cluster.registered = True
        cluster.save(DataHome())
        print("registered as the Prefect Variable liftos-dask-address: flows run their heavy "
              "stages there")
    print("stop it with: liftos cluster down")
    return 0


def down_command(args: argparse.Namespace) -> int:
    from liftos_app.flows.cluster import down

    cluster = down()
    if cluster is None:
        print("no LiftOS Dask cluster was running")
        return 0
    if cluster.registered:
        _register(cluster.address, clear=True)
    print(f"Dask cluster at {cluster.address} stopped")
    return 0


def status_command(args: argparse.Namespace) -> int:
    from liftos.errors import LiftOSError
    from liftos_app.flows.cluster import Cluster, status

    started = Cluster.load()
    address = args.address or (started.address if started else None)
    if address is None:
        raise LiftOSError("no LiftOS Dask cluster is running here (`liftos cluster up`), and "
                          "no --address was given")
    report = status(address)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"scheduler {report['address']}: {len(report['workers'])} worker(s)")
    for worker in report["workers"]:
        models = "; ".join(f"{sig} ({', '.join(owners) or 'no tenant'})"
                           for sig, owners in worker["models"].items()) or "none"
        print(f"  {worker['name']} pid {worker['pid']}: {worker['threads']} thread(s), "
              f"{worker['memory_mb']} MB, {worker['running']} task(s); compiled models: {models}")
    return 0


def _register(address: str, clear: bool = False) -> None:
    """Point the Prefect Variable at the cluster (or clear it if it still points there)."""
    from prefect.variables import Variable

    from liftos_app.flows.dask_runner import ADDRESS_VARIABLE
    from liftos_app.flows.embedded import embedded_api

    with embedded_api():
        if not clear:
            Variable.set(ADDRESS_VARIABLE, address, overwrite=True)
        elif Variable.get(ADDRESS_VARIABLE, default=None) == address:
            Variable.unset(ADDRESS_VARIABLE)
