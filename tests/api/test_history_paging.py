"""History pages (issue 15 item 5): an instance with 20 000 history events is read page by page over REST with an
opaque cursor that events appended meanwhile do not disturb, and its page shows the newest 100 fast."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from engine.database import utcnow
from engine.stepper import HistoryEntry
from tests.support.bpmn_builder import Bpmn, properties
from tests.support.live_app import Api, live_app
from tests.support.sessions import login

EVENTS = 20_000


@pytest.fixture
def long_instance(db_url: str) -> Iterator[tuple[Api, str, httpx.Client]]:
    with live_app(db_url) as api:
        bpmn = Bpmn("long-runner", "Dauerläufer")
        bpmn.node("start", "startEvent")
        bpmn.node("work", "userTask", "Arbeiten", body=properties(candidateGroups="servicedesk"))
        bpmn.node("end", "endEvent")
        bpmn.chain("start", "work", "end")
        api.engine.deploy([("long.bpmn", bpmn.xml())])
        with api.engine.db.transaction() as conn:
            api.identity.add_user(conn, "lena", "lena-password", ["clerk"], ["servicedesk"])
        client = api.client()
        me = client.post("/auth/login", json={"username": "lena", "password": "lena-password"})
        client.headers["X-CSRF-Token"] = me.json()["csrfToken"]
        instance_id = client.post("/process-definitions/long-runner/instances", json={}).json()["id"]
        start = utcnow()
        entries = [HistoryEntry("timer.fired", element_id="work", element_name=f"Runde {n}", user_id=None,
                                data={"pass": n}, at=start + timedelta(milliseconds=n)) for n in range(EVENTS)]
        with api.engine.transaction() as conn:
            api.engine.store._write_history(conn, instance_id, entries)  # the engine's own history writer
        yield api, instance_id, client


def _next(response: httpx.Response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    found = re.match(r'<([^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1).removeprefix("/api/v1")


def test_history_pages_walk_every_event_once_even_while_events_are_appended(
        long_instance: tuple[Api, str, httpx.Client]) -> None:
    _api, instance_id, client = long_instance
    first = client.get(f"/process-instances/{instance_id}/history")
    assert first.status_code == 200 and len(first.json()) == 100  # the default page, oldest first
    assert first.json()[0]["type"] == "instance.started"
    seen = [e["id"] for e in first.json()]
    url = _next(first)
    appended = False
    while url is not None:
        response = client.get(url, params={"limit": 1000} if "limit=" not in url else None)
        assert response.status_code == 200 and len(response.json()) <= 1000
        seen += [e["id"] for e in response.json()]
        if not appended:  # a claim writes a history event while the client is in the middle of its walk
            [task] = client.get("/tasks", params={"processKey": "long-runner"}).json()["items"]
            assert client.post(f"/tasks/{task['id']}/claim").status_code == 200
            appended = True
        url = _next(response)
    everything = client.get(f"/process-instances/{instance_id}/history", params={"limit": 1000, "order": "desc"})
    newest = everything.json()[0]
    assert newest["type"] == "task.claimed" and seen[-1] == newest["id"]  # the appended event came last, once
    assert seen == sorted(set(seen)) and len(seen) >= EVENTS + 2


def test_history_newest_first_limits_and_bad_cursors(long_instance: tuple[Api, str, httpx.Client]) -> None:
    _api, instance_id, client = long_instance
    newest = client.get(f"/process-instances/{instance_id}/history", params={"order": "desc", "limit": 3})
    ids = [e["id"] for e in newest.json()]
    assert ids == sorted(ids, reverse=True) and newest.json()[0]["elementName"] == f"Runde {EVENTS - 1}"
    older = client.get(_next(newest) or "")
    assert [e["id"] for e in older.json()][0] < ids[-1]
    assert client.get(f"/process-instances/{instance_id}/history", params={"limit": 1001}).status_code == 422
    bad = client.get(f"/process-instances/{instance_id}/history", params={"cursor": "not-ours"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"


def test_instance_page_shows_the_newest_page_fast(long_instance: tuple[Api, str, httpx.Client]) -> None:
    api, instance_id, _client = long_instance
    browser, _token = login(api.base_url, "lena", "lena-password")
    try:
        timings = []
        for _ in range(3):
            began = time.perf_counter()
            page = browser.get(f"/instances/{instance_id}")
            timings.append(time.perf_counter() - began)
            assert page.status_code == 200
        assert statistics.median(timings) < 0.3, timings
        assert page.text.count("<li data-type=") == 100
        assert f"</strong> Runde {EVENTS - 1} " in page.text and "instance.started" not in page.text
        assert 'data-completed="start"' in page.text  # the diagram's completed elements, from the index
        older = re.search(r'href="(/instances/[^"?]+\?cursor=[^"]+)"', page.text)
        assert older is not None
        second = browser.get(older.group(1).replace("&amp;", "&"))
        assert f"Runde {EVENTS - 101}" in second.text and f"</strong> Runde {EVENTS - 1} " not in second.text
    finally:
        browser.close()
