"""The FastAPI application: the REST API under /api/v1 (the pages will share the app and its login)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from connectors import (
    billing,
    campaign_actions,
    contract_actions,
    crm_actions,
    default_registry,
    documents,
    ipam,
    mail,
    record_documents,
    sales_actions,
    staff_actions,
)
from connectors import registrar as registrar_connector
from connectors import supplier as supplier_connector
from connectors.mail import MailConfig
from connectors.registrar import RegistrarConfig
from connectors.registry import Registry
from connectors.supplier import SupplierConfig
from engine.database import Database
from engine.runtime import Engine
from engine.stepper import StepLimits

from . import api_docs, identity_actions, openapi, problems
from .headers import SecurityHeaders
from .identity import Identity, LoginLimiter
from .limits import BodyLimits
from .routes import (
    activities,
    appointments,
    booked_services,
    campaigns,
    contracts,
    crm,
    definitions,
    events,
    exchange,
    incidents,
    instances,
    integrations,
    invoices,
    jobs,
    opportunities,
    orders,
    quotes,
    staff_requests,
    system,
    tasks,
    webhooks,
)
from .services import ConnectorGateway
from .settings import Settings
from .ui import pages
from .worker import JobWorker

API_PREFIX = "/api/v1"


def shipped_registry(database: Database, registrar: RegistrarConfig | None = None,
                     supplier: SupplierConfig | None = None, mail_config: MailConfig | None = None) -> Registry:
    """Every shipped connector, configured from the environment unless given; those keeping state or
    changing business data use the engine's database."""
    registry = default_registry()
    ipam.register(registry, ipam.IpamConfig.from_env(), engine=database.engine)
    documents.register(registry)
    record_documents.register(registry, database.engine)
    crm_actions.register(registry, database.engine)
    sales_actions.register(registry, database.engine)
    contract_actions.register(registry, database.engine)
    campaign_actions.register(registry, database.engine)
    staff_actions.register(registry, database.engine)
    identity_actions.register(registry, database.engine)
    billing.register(registry, database.engine)
    registrar_connector.register(registry, registrar or RegistrarConfig.from_env())
    supplier_connector.register(registry, supplier or SupplierConfig.from_env())
    mail.register(registry, mail_config or MailConfig.from_env(), engine=database.engine)
    return registry


def build_engine(settings: Settings) -> Engine:
    database = Database(settings.database_url)
    limits = StepLimits(settings.step_seconds, settings.step_passes, settings.passes_without_wait)
    return Engine(database, ConnectorGateway(shipped_registry(database)), step_limits=limits)


def create_app(settings: Settings | None = None, engine: Engine | None = None,
               run_worker: bool = True, identity: Identity | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = engine or build_engine(settings)
    worker = JobWorker(engine, settings.worker_poll_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_worker:
            worker.start()
        yield
        worker.stop()

    app = FastAPI(title="Silverflow", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=f"{API_PREFIX}/openapi.json",
                  description="BPMN processes for the customer lifecycle of an ISP: deploy, start, work tasks, "
                              "correlate messages, watch jobs and incidents. Authenticate with "
                              "`Authorization: Bearer <api key>` or a login session.")
    app.state.engine = engine
    app.state.identity = identity or Identity()
    app.state.login_limiter = LoginLimiter()
    problems.install(app)
    openapi.install(app)
    app.add_middleware(BodyLimits, json_bytes=settings.max_json_bytes, upload_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    api_docs.install(app)
    for module in (definitions, instances, tasks, events, jobs, webhooks, integrations, crm,
                   quotes, orders, booked_services, invoices, contracts,  # sales
                   incidents, opportunities, campaigns, activities, appointments, staff_requests,  # service desk
                   exchange, system):
        app.include_router(module.router, prefix=API_PREFIX)
    from .routes import migration, modification  # instance repair and version migration (issue 18)
    from .ui import migration_pages, modification_pages
    for extra in (modification, migration):
        app.include_router(extra.router, prefix=API_PREFIX)
    for extra_pages in (modification_pages, migration_pages):
        app.include_router(extra_pages.router)

    pages.install(app)
    return app
