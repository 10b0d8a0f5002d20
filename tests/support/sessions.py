"""A person's browser session against a live app, as the page tests need it: logged in through the login form,
with the CSRF token every form post carries; and a poll for what the job worker does meanwhile."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx


def login(base_url: str, user: str, password: str, landing: str = "/",
          headers: dict[str, str] | None = None) -> tuple[httpx.Client, str]:
    """A client logged in as ``user`` (German pages unless ``headers`` say otherwise) and its CSRF token."""
    client = httpx.Client(base_url=base_url, timeout=30, headers=headers or {"Accept-Language": "de"})
    response = client.post("/login", data={"username": user, "password": password, "next": landing},
                           follow_redirects=True)
    assert response.status_code == 200, response.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert token is not None, "the landing page carries no CSRF token: login failed"
    return client, token.group(1)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """The first truthy value of ``condition``, polled every 50 ms; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
