"""``identity.user``: who a user is, for processes that write to the person who started them.

A start event's ``initiator`` gives a process the starting principal's name; this operator turns the name into
the display name and e-mail address of the user account. An integration (API key, ``key:<name>``) or a name
without an account has no mailbox: the display name is the name itself and ``email`` is None, so a process
decides with a gateway whether to mail at all instead of failing at the mail task.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from connectors.registry import ConnectorContext, Registry

from .identity import Identity

OPERATOR = "identity.user"


class UserRef(BaseModel):
    username: str = Field(min_length=1, max_length=200, description="a user name or an API-key principal")


class UserInfo(BaseModel):
    username: str
    display_name: str
    email: str | None


class IdentityActions:
    def __init__(self, engine: Engine, identity: Identity) -> None:
        self.engine = engine
        self.identity = identity

    def user(self, params: UserRef, context: ConnectorContext) -> UserInfo:
        """The display name and e-mail address of a user; a key or an unknown name has no address."""
        with self.engine.connect() as conn:
            profile = self.identity.profile(conn, params.username)
        if profile is None:
            return UserInfo(username=params.username, display_name=params.username, email=None)
        return UserInfo(username=profile.username, display_name=profile.display_name, email=profile.email)


def register(registry: Registry, engine: Engine, identity: Identity | None = None) -> IdentityActions:
    """``identity``: the app's identity service (default: a new one; only its user lookup is used)."""
    actions = IdentityActions(engine, identity or Identity())
    registry.register(OPERATOR, actions.user, UserRef, UserInfo)
    return actions
