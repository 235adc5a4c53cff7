"""``liftos hub`` (API and web page for the demo), ``liftos api serve`` (the API) and
``liftos api token create|revoke|list`` (who may use it)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.resources import files

from liftos.access import SCOPES, TokenStore


def register(commands: argparse._SubParsersAction) -> None:
    hub = commands.add_parser(
        "hub", help="start the API and the hub web page on this machine, with a login printed",
        description="Starts `liftos api serve` and the Streamlit hub on 127.0.0.1 and prints a "
                    "token that may see --tenant (default: demo); the token is revoked when "
                    "the hub stops (Ctrl-C).")
    hub.add_argument("--tenant", action="append", default=None,
                     help="a tenant the printed login may see (repeat; default: demo)")
    hub.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    hub.add_argument("--port", type=int, default=8501, help="hub port (default: %(default)s)")
    hub.add_argument("--api-port", type=int, default=8765,
                     help="API port (default: %(default)s)")
    hub.set_defaults(handler=hub_command)
    api = commands.add_parser(
        "api", help="the LiftOS API (serve) and its access tokens (token create|revoke|list)",
        description="liftos api serve [--host H] [--port P]  |  liftos api token create --name N "
                    "--tenant T [--tenant T2] [--scope read|trigger|approve ...]  |  liftos api "
                    "token revoke ID  |  liftos api token list")
    actions = api.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the API (uvicorn) on this machine")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (default: %(default)s; one per core under load)")
    serve.set_defaults(handler=serve_command)
    token = actions.add_parser("token", help="create, revoke or list API tokens")
    verbs = token.add_subparsers(dest="verb", required=True, metavar="VERB")
    create = verbs.add_parser("create", help="a new token; its secret is printed once")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.add_argument("--tenant", action="append", required=True,
                        help="a tenant it may see (repeat for more)")
    create.add_argument("--scope", action="append", choices=SCOPES, default=None,
                        help="read (default), trigger, approve (repeat for more)")
    create.set_defaults(handler=create_command)
    revoke = verbs.add_parser("revoke", help="revoke a token by its id (it stops at once)")
    revoke.add_argument("token_id", help="the id shown by `liftos api token list`")
    revoke.set_defaults(handler=revoke_command)
    listing = verbs.add_parser("list", help="every token: id, name, tenants, scopes, state")
    listing.set_defaults(handler=list_command)


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    print(f"LiftOS API on http://{args.host}:{args.port} (OpenAPI: /docs), {args.workers} "
          "worker(s)", flush=True)
    uvicorn.run("liftos_app.hub.api:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning")
    return 0


def hub_command(args: argparse.Namespace) -> int:
    """The API and the page as two processes; the login is a fresh token, revoked on exit."""
    store = TokenStore()
    token, plain = store.create("hub login", args.tenant or ["demo"], list(SCOPES))
    api_url = f"http://{args.host}:{args.api_port}"
    api = subprocess.Popen([sys.executable, "-m", "liftos_app.cli", "api", "serve", "--host",
                            args.host, "--port", str(args.api_port)])
    page = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(files("liftos_app.hub") / "page.py"),
         "--server.address", args.host, "--server.port", str(args.port),
         "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"],
        env={**os.environ, "LIFTOS_API_URL": api_url}, stdout=subprocess.DEVNULL)
    print(f"LiftOS hub: http://{args.host}:{args.port}  (API {api_url}, OpenAPI {api_url}/docs)")
    print(f"sign in with: {plain}")
    print(f"(token {token.id}, tenants {', '.join(token.tenants)}; revoked when the hub stops; "
          "Ctrl-C stops)", flush=True)
    try:
        while api.poll() is None and page.poll() is None:
            try:
                api.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for process in (page, api):
            process.terminate()
            process.wait(timeout=30)
        store.revoke(token.id)
    return 0


def create_command(args: argparse.Namespace) -> int:
    token, plain = TokenStore().create(args.name, args.tenant, args.scope or ["read"])
    print(f"token {token.id} for {token.name}: tenants {', '.join(token.tenants)}; scopes "
          f"{', '.join(token.scopes)}")
    print(f"secret (shown once, store it now): {plain}")
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    token = TokenStore().revoke(args.token_id)
    print(f"token {token.id} ({token.name}) revoked at {token.revoked_at}")
    return 0


def list_command(args: argparse.Namespace) -> int:
    tokens = TokenStore().list()
    if not tokens:
        print("no tokens; create one with `liftos api token create --name N --tenant T`")
    for t in tokens:
        state = f"revoked {t.revoked_at}" if t.revoked_at else "live"
        print(f"{t.id}  {t.name:<20} tenants {','.join(t.tenants):<20} scopes "
              f"{','.join(t.scopes):<20} created {t.created_at}  {state}")
    return 0
