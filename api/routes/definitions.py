"""Deployments and process definitions, and starting instances of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..deps import engine_of
from ..headers import download_headers
from ..idempotency import idempotent
from ..identity import Principal
from ..models import (
    MAX_INT,
    DefinitionOut,
    DeployedDecision,
    DeployedDefinition,
    DeploymentOut,
    DeploymentWarning,
    FormOut,
    InstanceOut,
    StartInstance,
)
from ..problems import ApiProblem
from ..security import require

router = APIRouter(tags=["definitions"])
MAX_UPLOAD = 5 * 1024 * 1024


@router.post("/deployments", response_model=DeploymentOut, status_code=201)
async def deploy(request: Request,
                 files: Annotated[list[UploadFile], File(description=".bpmn and .dmn files and form schemas (.json)")],
                 principal: Annotated[Principal, Depends(require("designer"))]) -> DeploymentOut:
    bpmn, forms = [], []
    for upload in files:
        content = await upload.read(MAX_UPLOAD + 1)
        name = upload.filename or "upload"
        if len(content) > MAX_UPLOAD:
            raise ApiProblem(413, "Too large", f"{name} is larger than {MAX_UPLOAD // 1024 // 1024} MiB", "too-large")
        if name.endswith((".bpmn", ".xml", ".dmn")):  # a .dmn file holds decisions: engine/decisions.py
            bpmn.append((name, content))
        elif name.endswith(".json"):
            forms.append((name, content))
        else:
            raise ApiProblem(422, "Invalid request", f"{name}: expected a .bpmn or .dmn file or a .json form schema",
                             "validation", [{"field": "files", "message": f"{name} is neither .bpmn, .dmn nor .json"}])
    # The upload is read on the event loop; parsing and storing take seconds for a large file, so they run in the
    # threadpool and never hold up other requests.
    result = await run_in_threadpool(engine_of(request).deploy, bpmn, forms, deployed_by=principal.name,
                                     source="api")
    created = {d.id for d in result.created}
    return DeploymentOut(
        deployment_id=result.deployment_id,
        definitions=[DeployedDefinition(**d.__dict__, created=d.id in created) for d in result.definitions],
        forms=[FormOut(**f.__dict__) for f in result.forms],
        decisions=[DeployedDecision(**d.__dict__, created=d in result.created_decisions) for d in result.decisions],
        warnings=[DeploymentWarning(message=w.message, file=w.file_name, element_id=w.element_id, line=w.line)
                  for w in result.warnings])


@router.get("/process-definitions", response_model=list[DefinitionOut])
def list_definitions(request: Request, _p: Annotated[Principal, Depends(require())],
                     all_versions: Annotated[bool, Query(alias="allVersions")] = False,
                     key: str | None = None) -> list[DefinitionOut]:
    engine = engine_of(request)
    with engine.db.read() as conn:
        infos = engine.repository.list(conn, key=key, latest_only=not all_versions)
    return [DefinitionOut(**i.__dict__) for i in infos]


@router.get("/process-definitions/{key}", response_model=DefinitionOut)
def get_definition(request: Request, key: str, _p: Annotated[Principal, Depends(require())]) -> DefinitionOut:
    engine = engine_of(request)
    with engine.db.read() as conn:
        return DefinitionOut(**engine.repository.get(conn, key).info.__dict__)


@router.get("/process-definitions/{key}/versions/{version}", response_model=DefinitionOut)
def get_definition_version(request: Request, key: str, version: Annotated[int, Path(ge=1, le=MAX_INT)],
                           _p: Annotated[Principal, Depends(require())]) -> DefinitionOut:
    engine = engine_of(request)
    with engine.db.read() as conn:
        return DefinitionOut(**engine.repository.get(conn, key, version).info.__dict__)


@router.get("/process-definitions/{key}/xml", response_class=PlainTextResponse,
            responses={200: {"content": {"application/xml": {}}}})
def get_definition_xml(request: Request, key: str, _p: Annotated[Principal, Depends(require())],
                       version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None) -> Response:
    """The deployed file as a download: a designer's XML may hold XHTML ``<script>``, so it is never shown as a page
    (the designer and the instance view load it with ``fetch``, which ignores the disposition)."""
    engine = engine_of(request)
    with engine.db.read() as conn:
        xml = engine.repository.xml(conn, key, version)
    file_name = f"{key}-v{version}.bpmn" if version else f"{key}.bpmn"
    return Response(xml, media_type="application/xml", headers=download_headers(file_name))


@router.post("/process-definitions/{key}/instances", response_model=InstanceOut, status_code=201)
def start_instance(request: Request, response: Response, key: str, body: StartInstance,
                   principal: Annotated[Principal, Depends(require("clerk", "manager", "integration", "designer"))]
                   ) -> BaseModel | Response:
    def start() -> InstanceOut:
        view = engine_of(request).start(key, body.variables, business_key=body.business_key, version=body.version,
                                        user=principal.name)
        return InstanceOut(**view.__dict__)

    return idempotent(request, principal, f"start:{key}", 201, start)
