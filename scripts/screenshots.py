"""Screenshots of every page at 1366×768 into docs/screenshots/ (``make screenshots``; not part of ``make test``).

Builds a throw-away installation in a temporary directory the way a user would (``silverflow migrate`` and
``silverflow demo-data --local-systems``: shipped processes and forms, demo users, CRM data and demo process
instances, whose mails land in the temporary outbox), serves it with a real Uvicorn on a free loopback port and
drives Debian's Chromium (headless, no sandbox) through Playwright, logged in as the demo user each page is for.
Diagrams are captured once bpmn-js has rendered them. Run: ``python -m scripts.screenshots [--out DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import ViewportSize, sync_playwright

from api.cli import DEMO_USERS
from api.cli import main as silverflow
from engine.queries import InstanceFilter, TaskFilter

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
PASSWORDS = {username: password for username, password, _roles, _groups in DEMO_USERS}


@dataclass(frozen=True)
class Shot:
    """One PNG: ``name`` (file stem), the page ``path``, the demo ``user`` it is for, and what to wait for."""

    name: str
    path: str
    user: str | None
    ready: str = "main"  # a selector that is there once the page shows what it is about
    prepare: Callable[[Any], None] | None = None


def _build_quote(page: Any) -> None:
    """Click three catalogue products into the quote builder, so the screenshot shows positions and totals."""
    page.wait_for_selector("#catalogue [data-product]")
    for row, code in enumerate(("ADSL100", "MODEM-7590", "SETUP-DSL")):
        page.click(f"#catalogue [data-product='{code}']")
        page.wait_for_selector(f"#quantity-{row}")
    page.wait_for_function("document.querySelector('[data-total=gross]')?.textContent.trim() !== ''")


def _first(conn: sa.Connection, sql: str) -> Any:
    return conn.execute(sa.text(sql)).scalar()


def _shots(engine: Any, outbox: Path) -> list[Shot]:
    """The pages worth showing, with records of the demo data picked for them."""
    with engine.db.read() as conn:
        customer = _first(conn, "SELECT account_id FROM crm_booked_service GROUP BY account_id "
                                "ORDER BY count(*) DESC, account_id LIMIT 1")
        quoted = _first(conn, "SELECT id FROM crm_quote ORDER BY id LIMIT 1")
        open_incident = _first(conn, "SELECT id FROM crm_incident WHERE status <> 'closed' "
                                     "ORDER BY opened_at DESC LIMIT 1")
        problem = _first(conn, "SELECT id FROM crm_problem ORDER BY id LIMIT 1")
    tasks, _total = engine.query_tasks(TaskFilter(limit=50, sort="created"))
    task = next((t for t in tasks if t.element_id == "review"), tasks[0] if tasks else None)
    running, _ = engine.query_instances(InstanceFilter(state="running", limit=50))
    instance = next((i for i in running if task is not None and i.id == task.instance_id), None) or (
        running[0] if running else None)
    mails = sorted(p.name for p in outbox.glob("*.eml"))
    canvas = "#canvas[data-ready=true] .djs-element"
    shots = [
        Shot("01-login", "/login", None, "form"),
        Shot("02-dashboard", "/", "manager"),
        Shot("03-task-inbox", "/tasks", "backoffice", "table"),
        Shot("05-customers", "/customers", "sales", "table"),
        Shot("07-products", "/products", "manager", "table"),
        Shot("10-service-desk-board", "/service-desk", "servicedesk"),
        Shot("13-designer-list", "/designer", "designer", "table"),
        Shot("14-designer", "/designer/edit?key=order", "designer", canvas),
        Shot("15-instances", "/instances", "manager", "table"),
        Shot("18-failed-jobs", "/incidents", "manager"),
        Shot("19-opportunities", "/opportunities", "sales"),
        Shot("20-appointments", "/appointments", "sales"),
        Shot("21-start-process", "/start", "sales"),
    ]
    if task is not None:
        shots.append(Shot("04-task-form", f"/tasks/{task.id}", "backoffice", "form"))
    if customer is not None:
        shots.append(Shot("06-customer-360", f"/customers/{customer}", "sales"))
        shots.append(Shot("08-quote-builder", f"/customers/{customer}/quotes/new", "sales", "#catalogue",
                          _build_quote))
    if quoted is not None:
        shots.append(Shot("09-quote", f"/quotes/{quoted}", "sales"))
    if open_incident is not None:
        shots.append(Shot("11-incident", f"/service-desk/incidents/{open_incident}", "servicedesk"))
    if problem is not None:
        shots.append(Shot("12-problem", f"/service-desk/problems/{problem}", "servicedesk"))
    if instance is not None:
        shots.append(Shot("16-instance", f"/instances/{instance.id}", "manager",
                          "#viewer[data-ready=true] .djs-element"))
    shots.append(Shot("17-outbox", "/outbox", "manager"))
    if mails:
        shots.append(Shot("17-outbox-mail", f"/outbox/{mails[-1]}", "manager"))
    return sorted(shots, key=lambda shot: shot.name)


@contextlib.contextmanager
def _installation(workdir: Path) -> Iterator[tuple[str, Any, Path]]:
    """A migrated database with the demo data, served on a free loopback port: (base URL, app, outbox)."""
    outbox = workdir / "outbox"
    os.environ.update({
        "SILVERFLOW_OUTBOX_DIR": str(outbox),
        "SILVERFLOW_DOCUMENTS_DIR": str(workdir / "documents"),
    })
    url = f"sqlite:///{workdir / 'silverflow.db'}"
    with contextlib.redirect_stdout(sys.stderr):
        for argv in (["migrate"], ["demo-data", "--local-systems"]):
            if silverflow(["--database-url", url, *argv]) != 0:
                raise SystemExit(f"silverflow {' '.join(argv)} failed")
    from api.app import create_app
    from api.settings import Settings
    from tests.support.servers import serve_app

    app = create_app(Settings(database_url=url))
    app.state.outbox_dir = outbox
    try:
        with serve_app(app, start_timeout=30) as base_url:
            yield base_url, app, outbox
    finally:
        app.state.engine.db.dispose()


def _login(context: Any, base_url: str, user: str) -> None:
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.close()


def capture(out: Path) -> list[Path]:
    """Take every screenshot; returns the files written (pages a role may not open or that are missing are
    reported and skipped, so a page added or removed later never breaks the run)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="silverflow-screens-") as tmp, \
            _installation(Path(tmp)) as (base_url, app, outbox), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        contexts: dict[str | None, Any] = {}
        try:
            for shot in _shots(app.state.engine, outbox):
                if shot.user not in contexts:
                    contexts[shot.user] = browser.new_context(viewport=VIEWPORT, locale="de-DE")
                    if shot.user:
                        _login(contexts[shot.user], base_url, shot.user)
                page = contexts[shot.user].new_page()
                page.set_default_timeout(15_000)
                response = page.goto(base_url + shot.path)
                status = response.status if response is not None else 0
                if status != 200:
                    print(f"skipped {shot.name}: {shot.path} answered HTTP {status}", file=sys.stderr)
                    page.close()
                    continue
                page.wait_for_selector(shot.ready)
                if shot.prepare is not None:
                    shot.prepare(page)
                page.wait_for_load_state("networkidle")
                page.evaluate("window.scrollTo(0, 0)")
                page.mouse.move(0, 0)  # no hover highlight on whatever was clicked last
                time.sleep(0.3)  # let bpmn-js finish its zoom and CSS transitions settle
                target = out / f"{shot.name}.png"
                page.screenshot(path=str(target))
                written.append(target)
                print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}  ({shot.path})")
                page.close()
        finally:
            for context in contexts.values():
                context.close()
            browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Chromium not found: apt-get install chromium")
    written = capture(args.out)
    for stale in set(args.out.glob("*.png")) - set(written):  # a page that went away leaves no old picture
        stale.unlink()
    print(f"{len(written)} screenshots in {args.out}")


if __name__ == "__main__":
    main()
