"""IPAM: the embedded pools on both databases (incl. many threads at once) and the NetBox backend over HTTP."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from connectors.ipam import EmbeddedIpam, IpamConfig, NetboxIpam, ReleaseParams, ReserveParams, first_free
from connectors.registry import BusinessError, ConnectorContext
from engine.database import create_db_engine


def ctx(key: str) -> ConnectorContext:
    return ConnectorContext(key, "instance", "reserve_ip", "K-1")


@pytest.fixture
def ipam(db_url: str) -> Iterator[EmbeddedIpam]:
    engine = create_db_engine(db_url)
    yield EmbeddedIpam(engine, {"small": "192.0.2.0/29", "v6": "2001:db8::/64", "blocks": "198.51.100.0/24"})
    engine.dispose()


def test_first_free_skips_network_and_broadcast() -> None:
    pool = ipaddress.ip_network("192.0.2.0/30")
    assert str(first_free(pool, [], None)) == "192.0.2.1/32"
    assert str(first_free(pool, [ipaddress.ip_network("192.0.2.1/32")], None)) == "192.0.2.2/32"
    assert first_free(pool, [ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("192.0.2.2/32")], None) is None


def test_reserve_single_addresses_until_exhausted_then_release(ipam: EmbeddedIpam) -> None:
    addresses = [ipam.reserve(ReserveParams(pool="small"), ctx(f"k{i}")).address for i in range(6)]
    assert addresses == [f"192.0.2.{i}" for i in range(1, 7)]  # .0 and .7 are never handed out
    with pytest.raises(BusinessError) as raised:
        ipam.reserve(ReserveParams(pool="small"), ctx("k-full"))
    assert raised.value.code == "PoolExhausted"
    assert ipam.release(ReleaseParams(network="192.0.2.3/32"), ctx("r"))["released"] is True
    assert ipam.reserve(ReserveParams(pool="small"), ctx("k-again")).address == "192.0.2.3"


def test_a_retried_job_gets_the_same_address(ipam: EmbeddedIpam) -> None:
    first = ipam.reserve(ReserveParams(pool="small"), ctx("same-key"))
    again = ipam.reserve(ReserveParams(pool="small"), ctx("same-key"))
    assert first == again
    assert ipam.reserve(ReserveParams(pool="small"), ctx("other")).address != first.address


def test_prefixes_are_aligned_and_do_not_overlap(ipam: EmbeddedIpam) -> None:
    single = ipam.reserve(ReserveParams(pool="blocks"), ctx("a"))
    block = ipam.reserve(ReserveParams(pool="blocks", prefix_length=29), ctx("b"))
    assert single.network == "198.51.100.1/32" and block.network == "198.51.100.8/29"
    v6 = ipam.reserve(ReserveParams(pool="v6", prefix_length=120), ctx("c"))
    assert v6.network == "2001:db8::/120" and v6.prefix_length == 120
    with pytest.raises(BusinessError, match="UnknownPool|no IP pool"):
        ipam.reserve(ReserveParams(pool="nope"), ctx("d"))


def test_simultaneous_reservations_never_share_an_address(ipam: EmbeddedIpam) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def reserve(n: int) -> None:
        barrier.wait()
        try:
            for m in range(4):
                results.append(ipam.reserve(ReserveParams(pool="blocks"), ctx(f"t{n}-{m}")).address)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 64 and len(set(results)) == 64
    with ipam.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ipam_allocation")).scalar_one() == 64


class FakeNetbox:
    """The two NetBox endpoints the backend uses, on loopback."""

    def __init__(self) -> None:
        self.addresses: list[dict[str, object]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                from urllib.parse import parse_qs, urlparse

                query = parse_qs(urlparse(self.path).query)
                found = [a for a in outer.addresses
                         if all(str(a.get(k)) == v[0] for k, v in query.items())]
                self._json(200, {"count": len(found), "results": found})

            def do_POST(self) -> None:  # noqa: N802
                if self.headers.get("Authorization") != "Token secret-token":
                    self._json(403, {"detail": "Invalid token"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                used = {a["address"] for a in outer.addresses}
                for host in list(ipaddress.ip_network("203.0.113.0/29").hosts()):
                    if f"{host}/29" not in used:
                        item = {"id": len(outer.addresses) + 1, "address": f"{host}/29",
                                "description": body["description"]}
                        outer.addresses.append(item)
                        self._json(201, item)
                        return
                self._json(409, {"detail": "no available IPs"})

            def do_DELETE(self) -> None:  # noqa: N802
                outer.addresses = [a for a in outer.addresses if f"/{a['id']}/" not in self.path]
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def netbox() -> Iterator[FakeNetbox]:
    fake = FakeNetbox()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_netbox_backend(netbox: FakeNetbox) -> None:
    backend = NetboxIpam(IpamConfig(backend="netbox", netbox_url=netbox.url, netbox_token="secret-token",
                                    netbox_prefix_ids={"customer-static": 7}))
    first = backend.reserve(ReserveParams(pool="customer-static"), ctx("nb-1"))
    assert first.address == "203.0.113.1" and first.prefix_length == 29
    assert backend.reserve(ReserveParams(pool="customer-static"), ctx("nb-1")) == first  # idempotent
    assert backend.reserve(ReserveParams(pool="customer-static"), ctx("nb-2")).address == "203.0.113.2"
    assert backend.release(ReleaseParams(network="203.0.113.1/29"), ctx("r"))["released"] is True
    for n in range(5):
        backend.reserve(ReserveParams(pool="customer-static"), ctx(f"fill-{n}"))
    with pytest.raises(BusinessError, match="no free"):
        backend.reserve(ReserveParams(pool="customer-static"), ctx("overflow"))
    bad = NetboxIpam(IpamConfig(backend="netbox", netbox_url=netbox.url, netbox_token="wrong",
                                netbox_prefix_ids={"customer-static": 7}))
    import httpx

    with pytest.raises(httpx.HTTPStatusError):
        bad.reserve(ReserveParams(pool="customer-static"), ctx("denied"))
