"""Login guessing is throttled per address and password hashing is bounded, before any hash is computed."""

from __future__ import annotations

import threading
import time

from api.identity import LoginLimiter
from tests.support.live_app import Api


def test_guesses_with_ever_new_user_names_are_throttled_per_address(api: Api) -> None:
    attacker = api.client()
    limiter: LoginLimiter = LoginLimiter()
    for n in range(limiter.address_attempts):
        answer = attacker.post("/auth/login", json={"username": f"nobody-{n}", "password": "guess-guess"})
        assert answer.status_code == 401, answer.text
    refused = attacker.post("/auth/login", json={"username": "clara", "password": "clara-password"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_only_so_many_password_hashes_run_at_once() -> None:
    limiter = LoginLimiter(concurrent_hashes=1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter.hashing_turn() as turn:
            assert turn
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    started = time.monotonic()
    with limiter.hashing_turn(wait=0.2) as turn:
        assert turn is False and time.monotonic() - started < 1
    release.set()
    holder.join()
    with limiter.hashing_turn(wait=0.2) as turn:
        assert turn is True


def test_quiet_user_names_are_forgotten() -> None:
    limiter = LoginLimiter(window=0.05, max_keys=20)
    for n in range(100):
        limiter.failed(f"random-{n}", f"10.0.0.{n}")
        time.sleep(0.001)
    assert len(limiter._failures) < 150
    time.sleep(0.1)
    limiter.failed("one-more", "10.0.0.200")
    assert len(limiter._failures) <= 2 and not limiter.blocked("random-1", "10.0.0.1")
