"""Users, groups, roles, API keys and browser sessions.

Passwords are hashed with Argon2id (memory-hard). API keys and session tokens are long random secrets, so
a SHA-256 of them is stored (a lookup by hash, nothing reversible); a key is shown once when created.
Groups are named like the BPMN lanes whose tasks their members work on.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from engine.database import Database, as_utc, utcnow

ROLES = ("designer", "clerk", "manager", "admin", "integration")
SESSION_HOURS = 12
KEY_PREFIX = "sfk_"

metadata = sa.MetaData()
UTC_DATETIME = sa.DateTime(timezone=True)

app_user = sa.Table(
    "app_user", metadata,
    sa.Column("username", sa.String(100), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200), nullable=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("groups", sa.String(1000), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTC_DATETIME, nullable=False),
)

api_key = sa.Table(
    "api_key", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("groups", sa.String(1000), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=True),
    sa.Column("created_at", UTC_DATETIME, nullable=False),
    sa.Column("revoked_at", UTC_DATETIME, nullable=True),
    sa.Column("last_used_at", UTC_DATETIME, nullable=True),
)

user_session = sa.Table(
    "user_session", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(100), sa.ForeignKey("app_user.username", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTC_DATETIME, nullable=False),
    sa.Column("expires_at", UTC_DATETIME, nullable=False),
)

idempotency_record = sa.Table(
    "idempotency_record", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("principal", sa.String(200), primary_key=True),
    sa.Column("endpoint", sa.String(300), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", UTC_DATETIME, nullable=False),
)


class IdentityError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (session or password) or an integration (API key)."""

    name: str
    roles: frozenset[str]
    groups: frozenset[str]
    kind: str = "user"
    csrf_token: str | None = None

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles)) or "admin" in self.roles


@dataclass(frozen=True)
class UserProfile:
    """What a process may know of a person: the name to show and where mail reaches them."""

    username: str
    display_name: str
    email: str | None


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(value: str) -> frozenset[str]:
    return frozenset(v for v in value.split(",") if v)


def _check_roles(roles: list[str]) -> None:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise IdentityError("roles", f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")


class Identity:
    """The identity service; the hasher is tuned so a login costs tens of milliseconds, not seconds."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # -- users ----------------------------------------------------------------------------------------
    def add_user(self, conn: Connection, username: str, password: str, roles: list[str], groups: list[str],
                 display_name: str | None = None, email: str | None = None) -> None:
        if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise IdentityError("username", "use letters, digits, '.', '-' and '_'")
        if len(password) < 8:
            raise IdentityError("password", "must have at least 8 characters")
        _check_roles(roles)
        if conn.execute(sa.select(app_user.c.username).where(app_user.c.username == username)).first():
            raise IdentityError("username", f"'{username}' already exists")
        conn.execute(app_user.insert().values(
            username=username, display_name=display_name or username, email=email,
            password_hash=self.hasher.hash(password), roles=",".join(sorted(set(roles))),
            groups=",".join(sorted(set(groups))), active=True, created_at=utcnow()))

    def ensure_user(self, conn: Connection, username: str, password: str, roles: list[str], groups: list[str],
                    display_name: str | None = None) -> bool:
        """Create the user unless it exists (demo data); return whether it was created."""
        if conn.execute(sa.select(app_user.c.username).where(app_user.c.username == username)).first():
            return False
        self.add_user(conn, username, password, roles, groups, display_name)
        return True

    def profile(self, conn: Connection, username: str) -> UserProfile | None:
        """The user's display name and e-mail address; None for an unknown name."""
        row = conn.execute(sa.select(app_user.c.username, app_user.c.display_name, app_user.c.email)
                           .where(app_user.c.username == username)).first()
        return None if row is None else UserProfile(row.username, row.display_name, row.email or None)

    def members_of(self, conn: Connection, groups: frozenset[str]) -> frozenset[str]:
        """The active users in one of ``groups``: the people a manager of these groups answers for."""
        if not groups:
            return frozenset()
        rows = conn.execute(sa.select(app_user.c.username, app_user.c.groups).where(app_user.c.active.is_(True)))
        return frozenset(row.username for row in rows if _split(row.groups) & groups)

    def verify_password(self, conn: Connection, username: str, password: str) -> Principal | None:
        row = conn.execute(sa.select(app_user).where(app_user.c.username == username)).first()
        if row is None or not row.active:
            with contextlib.suppress(VerificationError):  # same cost whether or not the user exists
                self.hasher.verify(self._dummy, password)
            return None
        try:
            self.hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(row.username, _split(row.roles), _split(row.groups))

    # -- API keys -------------------------------------------------------------------------------------
    def create_key(self, conn: Connection, name: str, roles: list[str], groups: list[str],
                   created_by: str | None) -> CreatedKey:
        if not name.strip():
            raise IdentityError("name", "must not be empty")
        _check_roles(roles)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = str(uuid.uuid4())
        conn.execute(api_key.insert().values(
            id=key_id, name=name, key_hash=_digest(secret), prefix=secret[:10], roles=",".join(sorted(set(roles))),
            groups=",".join(sorted(set(groups))), created_by=created_by, created_at=utcnow(),
            revoked_at=None, last_used_at=None))
        return CreatedKey(key_id, name, secret)

    def revoke_key(self, conn: Connection, key_id: str) -> bool:
        return bool(conn.execute(api_key.update().where(api_key.c.id == key_id)
                                 .where(api_key.c.revoked_at.is_(None)).values(revoked_at=utcnow())).rowcount)

    def authenticate_key(self, conn: Connection, secret: str) -> Principal | None:
        row = conn.execute(sa.select(api_key).where(api_key.c.key_hash == _digest(secret))).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(f"key:{row.name}", _split(row.roles), _split(row.groups), kind="api_key")

    # -- sessions -------------------------------------------------------------------------------------
    def open_session(self, conn: Connection, username: str) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = utcnow()
        conn.execute(user_session.insert().values(token_hash=_digest(token), username=username, csrf_token=csrf,
                                                  created_at=now, expires_at=now + timedelta(hours=SESSION_HOURS)))
        return token, csrf

    def session_principal(self, conn: Connection, token: str) -> Principal | None:
        row = conn.execute(sa.select(user_session.c.username, user_session.c.csrf_token, user_session.c.expires_at,
                                     app_user.c.roles, app_user.c.groups, app_user.c.active)
                           .join(app_user, app_user.c.username == user_session.c.username)
                           .where(user_session.c.token_hash == _digest(token))).first()
        expires: datetime | None = as_utc(row.expires_at) if row is not None else None
        if row is None or not row.active or expires is None or expires < utcnow():
            return None
        return Principal(row.username, _split(row.roles), _split(row.groups), csrf_token=row.csrf_token)

    def close_session(self, conn: Connection, token: str) -> None:
        conn.execute(user_session.delete().where(user_session.c.token_hash == _digest(token)))


@dataclass
class LoginLimiter:
    """Failed logins are limited per user and address and per address, and password hashing is bounded for the
    whole process, all before a hash is computed: a flood of guesses (even for made-up user names, which cost a
    hash too) can neither try many passwords nor take every worker thread from the logged-in users."""

    attempts: int = 5  # per user name and address
    address_attempts: int = 30  # per address, any user names
    window: float = 300.0
    concurrent_hashes: int = 2
    max_keys: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hashing: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._hashing = threading.BoundedSemaphore(self.concurrent_hashes)

    def blocked(self, username: str, address: str) -> bool:
        with self._lock:
            return (len(self._recent(f"{username}|{address}")) >= self.attempts
                    or len(self._recent(f"|{address}")) >= self.address_attempts)

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) >= self.max_keys:  # made-up user names must not grow the map forever
                for key in [k for k, times in self._failures.items() if not times or times[-1] < now - self.window]:
                    del self._failures[key]
            self._recent(f"{username}|{address}").append(now)
            self._recent(f"|{address}").append(now)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop(f"{username}|{address}", None)

    @contextlib.contextmanager
    def hashing_turn(self, wait: float = 2.0) -> Iterator[bool]:
        """A turn to compute a password hash; False when too many are running (the caller answers 429)."""
        acquired = self._hashing.acquire(timeout=wait)
        try:
            yield acquired
        finally:
            if acquired:
                self._hashing.release()

    def _recent(self, key: str) -> deque[float]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] < time.monotonic() - self.window:
            recent.popleft()
        return recent


class LoginRefused(Exception):
    """A login that did not succeed: ``throttled`` (429, with ``retry_after``) or wrong credentials (401)."""

    def __init__(self, throttled: bool, retry_after: int = 0) -> None:
        super().__init__("throttled" if throttled else "unknown user or wrong password")
        self.throttled = throttled
        self.retry_after = retry_after


def log_in(database: Database, identity: Identity, limiter: LoginLimiter, username: str, password: str,
           address: str) -> tuple[Principal, str, str]:
    """Check the password (outside any write transaction: a hash takes tens of milliseconds) and open a
    session; the one login path of the REST API and the login page. Returns principal, token, CSRF token."""
    if limiter.blocked(username, address):
        raise LoginRefused(True, int(limiter.window))
    with limiter.hashing_turn() as turn:
        if not turn:
            raise LoginRefused(True, 5)
        with database.read() as conn:
            principal = identity.verify_password(conn, username, password)
    if principal is None:
        limiter.failed(username, address)
        raise LoginRefused(False)
    with database.transaction() as conn:
        token, csrf = identity.open_session(conn, principal.name)
    limiter.succeeded(username, address)
    return principal, token, csrf
