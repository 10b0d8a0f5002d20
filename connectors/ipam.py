"""IP address management: ``ipam.reserve`` and ``ipam.release``.

The embedded default keeps IPv4/IPv6 pools in our database (pools from configuration, e.g. 192.0.2.0/24 for
static customer addresses): first free address or aligned prefix, never a network or broadcast address.
Allocations of one pool are serialised by locking the pool's row (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's writer lock does the same), so two simultaneous reservations never get the same address. A retried
job presents the same idempotency key and gets the same allocation back. NetBox is the alternative backend
(``SILVERFLOW_IPAM_BACKEND=netbox``), through its ``available-ips`` endpoint with token authentication.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import BaseModel, Field

from .registry import BusinessError, ConnectorContext, Registry

metadata = sa.MetaData()
ipam_pool = sa.Table(
    "ipam_pool", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("network", sa.String(64), nullable=False),
)
ipam_allocation = sa.Table(
    "ipam_allocation", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pool", sa.String(100), sa.ForeignKey("ipam_pool.name"), nullable=False),
    sa.Column("network", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_ipam_allocation_pool_active", "pool", "released_at"),
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class IpamConfig:
    backend: str = "embedded"
    pools: dict[str, str] = field(default_factory=lambda: {"customer-static": "192.0.2.0/24",
                                                           "customer-v6": "2001:db8:100::/48"})
    database_url: str | None = None
    netbox_url: str = ""
    netbox_token: str = ""
    netbox_prefix_ids: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def from_env() -> IpamConfig:
        """``SILVERFLOW_IPAM_POOLS="customer-static=192.0.2.0/24,customer-v6=2001:db8:100::/48"``."""
        pools = os.environ.get("SILVERFLOW_IPAM_POOLS")
        netbox_ids = os.environ.get("SILVERFLOW_NETBOX_PREFIX_IDS", "")
        return IpamConfig(
            backend=os.environ.get("SILVERFLOW_IPAM_BACKEND", "embedded"),
            pools=dict(p.split("=", 1) for p in pools.split(",")) if pools else IpamConfig().pools,
            database_url=os.environ.get("SILVERFLOW_DATABASE_URL"),
            netbox_url=os.environ.get("SILVERFLOW_NETBOX_URL", ""),
            netbox_token=os.environ.get("SILVERFLOW_NETBOX_TOKEN", ""),
            netbox_prefix_ids={k: int(v) for k, v in (p.split("=", 1) for p in netbox_ids.split(",") if p)})


class ReserveParams(BaseModel):
    pool: str = Field(min_length=1)
    prefix_length: int | None = Field(default=None, ge=1, le=128, description="None: a single address")
    reference: str | None = None


class ReserveResult(BaseModel):
    pool: str
    network: str
    address: str
    prefix_length: int


class ReleaseParams(BaseModel):
    network: str


def _block(pool: IpNetwork, prefix_length: int | None) -> int:
    return prefix_length if prefix_length is not None else pool.max_prefixlen


def first_free(pool: IpNetwork, taken: list[IpNetwork], prefix_length: int | None) -> IpNetwork | None:
    """The first aligned block of the wanted size overlapping nothing taken; single IPv4 addresses skip the
    pool's network and broadcast addresses."""
    size = _block(pool, prefix_length)
    if size < pool.prefixlen:
        return None
    taken_sorted = sorted(taken, key=lambda n: int(n.network_address))
    for candidate in pool.subnets(new_prefix=size):
        if prefix_length is None and pool.version == 4 and pool.prefixlen < 31 and \
                candidate.network_address in (pool.network_address, pool.broadcast_address):
            continue
        if not any(candidate.overlaps(t) for t in taken_sorted):
            return candidate
    return None


class EmbeddedIpam:
    def __init__(self, engine: sa.engine.Engine, pools: dict[str, str]) -> None:
        self.engine = engine
        self.pools = {name: ipaddress.ip_network(net, strict=True) for name, net in pools.items()}

    def reserve(self, params: ReserveParams, context: ConnectorContext) -> ReserveResult:
        pool = self.pools.get(params.pool)
        if pool is None:
            raise BusinessError("UnknownPool", f"no IP pool '{params.pool}' (known: {', '.join(self.pools)})")
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(ipam_allocation.c.network, ipam_allocation.c.pool)
                                    .where(ipam_allocation.c.idempotency_key == context.idempotency_key)).first()
            if existing is not None:  # a retried job gets what it got the first time
                return _result(existing.pool, ipaddress.ip_network(existing.network), params.prefix_length)
            self._lock_pool(conn, params.pool, pool)
            taken = [ipaddress.ip_network(row.network) for row in conn.execute(
                sa.select(ipam_allocation.c.network).where(ipam_allocation.c.pool == params.pool)
                .where(ipam_allocation.c.released_at.is_(None)))]
            block = first_free(pool, taken, params.prefix_length)
            if block is None:
                raise BusinessError("PoolExhausted", f"IP pool '{params.pool}' has no free "
                                    f"{'address' if params.prefix_length is None else f'/{params.prefix_length}'}")
            conn.execute(ipam_allocation.insert().values(
                id=str(uuid.uuid4()), pool=params.pool, network=str(block), idempotency_key=context.idempotency_key,
                reference=params.reference or context.business_key, allocated_at=datetime.now(UTC),
                released_at=None))
        return _result(params.pool, block, params.prefix_length)

    def release(self, params: ReleaseParams, context: ConnectorContext) -> dict[str, Any]:
        network = str(ipaddress.ip_network(params.network, strict=False))
        with self.engine.begin() as conn:
            released = conn.execute(ipam_allocation.update().where(ipam_allocation.c.network == network)
                                    .where(ipam_allocation.c.released_at.is_(None))
                                    .values(released_at=datetime.now(UTC))).rowcount
        return {"network": network, "released": bool(released)}

    def _lock_pool(self, conn: sa.engine.Connection, name: str, pool: IpNetwork) -> None:
        row = conn.execute(sa.select(ipam_pool.c.name).where(ipam_pool.c.name == name)
                           .with_for_update()).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(ipam_pool.insert().values(name=name, network=str(pool)))
            except sa.exc.IntegrityError:
                pass  # created by a concurrent reservation a moment ago
            conn.execute(sa.select(ipam_pool.c.name).where(ipam_pool.c.name == name).with_for_update())


def _result(pool: str, block: IpNetwork, prefix_length: int | None) -> ReserveResult:
    return ReserveResult(pool=pool, network=str(block), address=str(block.network_address),
                         prefix_length=block.prefixlen)


class NetboxIpam:
    """NetBox's REST API: ``POST /api/ipam/prefixes/{id}/available-ips/`` hands out the next free address."""

    def __init__(self, config: IpamConfig) -> None:
        self.config = config

    def reserve(self, params: ReserveParams, context: ConnectorContext) -> ReserveResult:
        prefix_id = self.config.netbox_prefix_ids.get(params.pool)
        if prefix_id is None:
            raise BusinessError("UnknownPool", f"no NetBox prefix configured for pool '{params.pool}'")
        if params.prefix_length is not None:
            raise BusinessError("Unsupported", "the NetBox backend reserves single addresses only")
        headers = {"Authorization": f"Token {self.config.netbox_token}", "Accept": "application/json"}
        base = self.config.netbox_url.rstrip("/")
        existing = httpx.get(f"{base}/api/ipam/ip-addresses/", params={"description": context.idempotency_key},
                             headers=headers, timeout=10)
        existing.raise_for_status()
        if existing.json().get("results"):
            return _netbox_result(params.pool, existing.json()["results"][0]["address"])
        response = httpx.post(f"{base}/api/ipam/prefixes/{prefix_id}/available-ips/", headers=headers, timeout=10,
                              json={"description": context.idempotency_key, "status": "active"})
        if response.status_code == 409 or (response.status_code == 400 and "available" in response.text):
            raise BusinessError("PoolExhausted", f"NetBox prefix {prefix_id} has no free address")
        response.raise_for_status()
        return _netbox_result(params.pool, response.json()["address"])

    def release(self, params: ReleaseParams, context: ConnectorContext) -> dict[str, Any]:
        headers = {"Authorization": f"Token {self.config.netbox_token}"}
        base = self.config.netbox_url.rstrip("/")
        found = httpx.get(f"{base}/api/ipam/ip-addresses/", params={"address": params.network}, headers=headers,
                          timeout=10)
        found.raise_for_status()
        for item in found.json().get("results", []):
            httpx.delete(f"{base}/api/ipam/ip-addresses/{item['id']}/", headers=headers, timeout=10).raise_for_status()
        return {"network": params.network, "released": bool(found.json().get("results"))}


def _netbox_result(pool: str, cidr: str) -> ReserveResult:
    interface = ipaddress.ip_interface(cidr)
    return ReserveResult(pool=pool, network=str(interface.network), address=str(interface.ip),
                         prefix_length=interface.network.prefixlen)


def register(registry: Registry, config: IpamConfig | None = None, engine: sa.engine.Engine | None = None) -> None:
    config = config or IpamConfig.from_env()
    backend: EmbeddedIpam | NetboxIpam
    if config.backend == "netbox":
        backend = NetboxIpam(config)
    else:
        if engine is None:
            if not config.database_url:
                return  # no database to keep pools in: the operators stay unregistered
            engine = sa.create_engine(config.database_url)
        backend = EmbeddedIpam(engine, config.pools)
    registry.register("ipam.reserve", backend.reserve, ReserveParams, ReserveResult)
    registry.register("ipam.release", backend.release, ReleaseParams)
