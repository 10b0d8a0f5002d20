"""The ``silverflow`` command: serve, worker, migrate, deploy, demo-data, run-instance.

Every command reports bad input as one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import DeploymentError, EngineError

from .identity import IdentityError
from .settings import PROJECT_ROOT, Settings


class UsageError(Exception):
    """Bad input from the command line."""


def _engine(settings: Settings) -> Any:
    from .app import build_engine

    return build_engine(settings)


def migrate_database(url: str) -> None:
    """``alembic upgrade head`` on ``url`` with the project's migrations, wherever we are called from."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate_database(settings.database_url)
    print(f"database migrated: {settings.database_url}")
    return 0


def _read_files(paths: Sequence[Path]) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    bpmn, forms = [], []
    for path in paths:
        if path.is_dir():
            nested = sorted(p for p in path.rglob("*") if p.suffix in (".bpmn", ".dmn", ".json"))
            more_bpmn, more_forms = _read_files(nested)
            bpmn += more_bpmn
            forms += more_forms
            continue
        if not path.exists():
            raise UsageError(f"no such file: {path}")
        if path.suffix in (".bpmn", ".dmn"):  # decisions deploy beside processes: engine/decisions.py
            bpmn.append((path.name, path.read_bytes()))
        elif path.suffix == ".json":
            forms.append((path.name, path.read_bytes()))
        else:
            raise UsageError(f"cannot deploy {path}: expected a .bpmn or .dmn file or a .json form schema")
    return bpmn, forms


def _deploy(settings: Settings, paths: Sequence[Path], user: str | None) -> int:
    bpmn, forms = _read_files(paths)
    if not bpmn and not forms:
        raise UsageError("nothing to deploy: no .bpmn, .dmn or .json files given")
    result = _engine(settings).deploy(bpmn, forms, deployed_by=user, source="cli")
    created = {(d.key, d.version) for d in result.created}
    for definition in result.definitions:
        status = "deployed" if (definition.key, definition.version) in created else "unchanged"
        print(f"{status}: {definition.key} version {definition.version}")
    for form in result.forms:
        print(f"form: {form.key} version {form.version}")
    for decision in result.decisions:
        status = "deployed" if decision in result.created_decisions else "unchanged"
        print(f"{status}: decision {decision.key} version {decision.version}")
    return 0


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    return _deploy(settings, [Path(p) for p in args.files], args.user)


DEMO_USERS = [
    # username, password, roles, groups (named like the BPMN lanes)
    ("admin", "silverflow-admin", ["admin"], []),
    ("designer", "silverflow-designer", ["designer"], []),
    ("manager", "silverflow-manager", ["manager"], ["management", "hr", "staff"]),
    ("sales", "silverflow-sales", ["clerk"], ["sales", "staff"]),
    ("backoffice", "silverflow-backoffice", ["clerk"], ["backoffice", "billing", "staff"]),
    ("servicedesk", "silverflow-servicedesk", ["clerk"], ["servicedesk", "staff"]),
    ("technik", "silverflow-technik", ["clerk"], ["provisioning", "support2", "staff"]),
]


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    if args.accounts < 0:
        raise UsageError(f"--accounts must not be negative, got {args.accounts}")
    paths = [p for p in (settings.processes_dir, settings.forms_dir) if p.exists()]
    _deploy(settings, paths, "demo-data")
    from crm.demo import BULK_OWNER, load_bulk_accounts, load_demo_data

    from .identity import Identity

    engine = _engine(settings)
    identity = Identity()
    with engine.db.transaction() as conn:
        for username, password, roles, groups in DEMO_USERS:
            identity.ensure_user(conn, username, password, roles, groups)
        load_demo_data(conn)
        bulk = load_bulk_accounts(conn, args.accounts) if args.accounts else 0
    print("demo CRM data loaded (products, accounts, contacts, quotes, orders, incidents)")
    if args.accounts:
        print(f"{bulk} generated accounts added ({args.accounts} requested, owner {BULK_OWNER})")
    if args.instances:
        print(f"demo process instances started: {len(_seed_instances(engine, args.local_systems))}")
    print("demo users (username / password — roles):")
    for username, password, roles, groups in DEMO_USERS:
        print(f"  {username:12s} / {password:24s} — {', '.join(roles)}; groups {', '.join(groups) or '-'}")
    return 0


def _seed_instances(engine: Any, with_local_systems: bool) -> list[str]:
    """Demo instances; with the local systems (SMTP sink, simulators) up meanwhile, so mails and partner calls of
    the scenarios go through instead of waiting for their retries."""
    from .demo_instances import seed_instances
    from .local_systems import start_local_systems

    systems = None
    if with_local_systems:
        try:
            systems = start_local_systems("http://127.0.0.1:8000/api/v1/integrations/supplier/shipments", "-")
        except OSError as exc:  # a running `make run` holds the ports: its worker moves the instances on
            print(f"local systems not started ({exc}); the demo instances wait for them", file=sys.stderr)
    try:
        return seed_instances(engine)
    finally:
        if systems is not None:
            systems.stop()


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from .identity import Identity

    password = args.password or (getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().strip())
    with _engine(settings).db.transaction() as conn:
        Identity().add_user(conn, args.username, password, args.role, args.group, args.name, args.email)
    print(f"user {args.username} added with roles {', '.join(args.role) or '-'}")
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    from .identity import Identity

    with _engine(settings).db.transaction() as conn:
        created = Identity().create_key(conn, args.name, args.role, args.group, created_by="cli")
    print(f"API key {created.id} ({created.name}); shown once, store it now:")
    print(created.secret)
    return 0


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from .identity import Identity

    with _engine(settings).db.transaction() as conn:
        if not Identity().revoke_key(conn, args.key_id):
            raise UsageError(f"no active API key with id {args.key_id}")
    print(f"API key {args.key_id} revoked")
    return 0


def _parse_vars(pairs: Sequence[str]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"variable '{pair}' must look like name=value")
        name, raw = pair.split("=", 1)
        try:
            variables[name] = json.loads(raw)
        except json.JSONDecodeError:
            variables[name] = raw
    return variables


def cmd_run_instance(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    started = engine.start(args.key, _parse_vars(args.var), business_key=args.business_key,
                           version=args.version, user=args.user)
    # a quick local run does the service tasks, and goes on with a step longer than its budget, itself
    engine.run_jobs(kinds=("service", "continue"))
    instance = engine.get_instance(started.id)
    print(f"instance {instance.id} of {instance.process_key} v{instance.process_version}: {instance.state}")
    for task in engine.list_tasks(instance_id=instance.id):
        groups = ",".join(task.candidate_groups) or "-"
        print(f"  open task {task.id}: {task.name} (groups {groups}, form {task.form_key or '-'})")
    print(f"  variables: {json.dumps(instance.variables, default=str)}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    app = create_app(settings)
    systems = None
    if args.local_systems:
        from .identity import Identity
        from .local_systems import start_local_systems
        from .mail_intake import ServiceDeskMail

        with app.state.engine.db.transaction() as conn:  # the supplier's webhook authenticates with this key
            key = Identity().create_key(conn, "local-supplier-simulator", ["integration"], [], "serve").secret
        systems = start_local_systems(f"http://{args.host}:{args.port}/api/v1/integrations/supplier/shipments", key,
                                      mail_intake=ServiceDeskMail(app.state.engine))
        print("Lokale Systeme: SMTP-Sink :8025 (var/outbox), E-Mail-Annahme :8026 (Service Desk), Registrar :8101, "
              "Lieferant :8102", flush=True)
    print(f"Silverflow läuft auf http://{args.host}:{args.port}/  (API-Doku: /api/docs)", flush=True)
    try:
        # X-Forwarded-For is believed only from the proxies the operator names: anyone else could rotate it to
        # slip past the per-address login limit
        proxies = settings.trusted_proxies
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=bool(proxies),
                    forwarded_allow_ips=proxies or None)
    finally:
        if systems is not None:
            systems.stop()
    return 0


def cmd_mail_intake(args: argparse.Namespace, settings: Settings) -> int:
    """Receive the service desk's mail over SMTP until interrupted (a real installation's MX or a forward
    delivers to it); each mail becomes an incident or a reply to one."""
    from connectors.mail_intake import IntakeConfig, start_intake

    from .mail_intake import ServiceDeskMail

    config = IntakeConfig.from_env()
    config = IntakeConfig(args.host or config.host, args.port or config.port, config.addresses, config.max_bytes)
    try:
        controller = start_intake(ServiceDeskMail(_engine(settings)), config)
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc}") from None
    print(f"E-Mail-Annahme auf {config.host}:{config.port} für {', '.join(config.addresses)} (Ctrl+C beendet)",
          flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    finally:
        controller.stop()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.concurrency > 1:
        return _worker_processes(args, settings)
    from .worker import JobWorker

    worker = JobWorker(_engine(settings), args.interval, lock_seconds=args.lock_seconds)
    if args.once:
        print(f"ran {worker.run_once()} job(s)")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_requested.set())
    print(f"worker {worker.worker_id} started on {settings.database_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever()
    return 0


def _worker_processes(args: argparse.Namespace, settings: Settings) -> int:
    """One worker process per unit of concurrency (Spiff is CPU-bound and not thread-safe), supervised:
    a child that dies is started again, and the children die with this process even on kill -9."""
    command = [sys.executable, "-m", "api.cli", "--database-url", settings.database_url, "worker",
               "--interval", str(args.interval), "--lock-seconds", str(args.lock_seconds)]
    stopping = threading.Event()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, preexec_fn=_die_with_parent)

    children = [spawn() for _ in range(args.concurrency)]

    def stop(*_: object) -> None:
        stopping.set()
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping.wait(0.5):
            for index, child in enumerate(children):
                if child.poll() is not None:
                    print(f"worker process {child.pid} exited with {child.returncode}; starting another",
                          file=sys.stderr, flush=True)
                    children[index] = spawn()
    except KeyboardInterrupt:
        stop()
    return max(child.wait() for child in children)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the supervising parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="silverflow", description="Silverflow BPM platform")
    from .worker import LEASE_SECONDS

    parser.add_argument("--database-url", help="overrides SILVERFLOW_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API and pages (with an embedded timer worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--local-systems", action="store_true",
                       help="also serve an SMTP sink (var/outbox), the service desk's mail intake (:8026) and the "
                            "registrar and supplier simulators")
    serve.set_defaults(func=cmd_serve)

    intake = sub.add_parser("mail-intake", help="receive the service desk's mail over SMTP (incidents, replies)")
    intake.add_argument("--host", default=None, help="default $SILVERFLOW_INTAKE_HOST or 127.0.0.1")
    intake.add_argument("--port", type=int, default=None, help="default $SILVERFLOW_INTAKE_PORT or 8026")
    intake.set_defaults(func=cmd_mail_intake)

    worker = sub.add_parser("worker", help="run due jobs: service tasks, timers, timer starts")
    worker.add_argument("--interval", type=float, default=0.05, help="idle poll interval in seconds")
    worker.add_argument("--concurrency", type=int, default=1, help="worker processes to start")
    worker.add_argument("--lock-seconds", type=float, default=LEASE_SECONDS,
                        help="lease of a claimed job; a live worker renews it, a dead one's jobs return after it")
    worker.add_argument("--once", action="store_true", help="run one batch of due jobs and exit")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=cmd_migrate)

    deploy = sub.add_parser("deploy", help="deploy BPMN files and form schemas")
    deploy.add_argument("files", nargs="+")
    deploy.add_argument("--user", default=None, help="who deploys (recorded with the version)")
    deploy.set_defaults(func=cmd_deploy)

    demo = sub.add_parser("demo-data", help="deploy the shipped processes and forms, load the demo CRM data and "
                                            "users, start demo process instances at different stages")
    demo.add_argument("--no-instances", dest="instances", action="store_false",
                      help="no demo process instances")
    demo.add_argument("--local-systems", action="store_true",
                      help="run the SMTP sink and the partner simulators while the demo instances start")
    demo.add_argument("--accounts", type=int, default=0, metavar="N",
                      help="also generate N bulk accounts (e.g. 100000, the data set of bench/ui_pages.py)")
    demo.set_defaults(func=cmd_demo_data)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    user_add = user.add_parser("add", help="add a user (password from --password or standard input)")
    user_add.add_argument("username")
    user_add.add_argument("--password")
    user_add.add_argument("--role", action="append", default=[], help="designer, clerk, manager, admin, integration")
    user_add.add_argument("--group", action="append", default=[], help="a group (named like a BPMN lane)")
    user_add.add_argument("--name")
    user_add.add_argument("--email")
    user_add.set_defaults(func=cmd_user_add)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(dest="key_command", required=True)
    key_create = key.add_parser("create", help="create an API key for an integration")
    key_create.add_argument("name")
    key_create.add_argument("--role", action="append", default=["integration"])
    key_create.add_argument("--group", action="append", default=[])
    key_create.set_defaults(func=cmd_key_create)
    key_revoke = key.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=cmd_key_revoke)

    run = sub.add_parser("run-instance", help="start an instance and show where it waits")
    run.add_argument("key")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--business-key")
    run.add_argument("--version", type=int)
    run.add_argument("--user")
    run.set_defaults(func=cmd_run_instance)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings(database_url=args.database_url) if args.database_url else Settings()
    try:
        return int(args.func(args, settings))
    except DeploymentError as exc:
        print(f"silverflow: deploy refused: {exc}", file=sys.stderr)
    except (UsageError, EngineError, IdentityError) as exc:
        print(f"silverflow: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        print(f"silverflow: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
