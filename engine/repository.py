"""Process and form definitions: deploy (versioned by checksum) and the parsed-spec cache."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .decisions import ParsedDecision, is_decision_file, parse_decision_files
from .errors import DeploymentError, NotFound, Problem
from .parsing import ParsedFile, ParsedProcess, checksum, element_line, parse_files, parse_process
from .participants import is_confidential
from .schema import decision_definition, deployment, form_definition, process_definition
from .specs import ExternalServiceTask


@dataclass(frozen=True)
class DefinitionInfo:
    id: str
    key: str
    version: int
    name: str | None
    checksum: str
    file_name: str | None
    deployed_at: datetime
    deployed_by: str | None


@dataclass(frozen=True)
class DecisionInfo:
    id: str
    key: str
    version: int
    name: str | None
    checksum: str
    file_name: str | None
    deployed_at: datetime
    deployed_by: str | None


@dataclass(frozen=True)
class FormInfo:
    key: str
    version: int
    checksum: str


@dataclass
class DeploymentResult:
    deployment_id: str | None
    definitions: list[DefinitionInfo]
    forms: list[FormInfo]
    created: list[DefinitionInfo]
    # Parsed specs of the created versions: cached by the caller only after its transaction committed, so a
    # deploy that fails later (a start timer, the database) leaves no definition behind that was never stored.
    loaded: list[LoadedDefinition] = field(default_factory=list)
    # What deployed but will not run as drawn (data stores, non-executable processes), per element and line.
    warnings: list[Problem] = field(default_factory=list)
    # DMN decisions of the deployment (engine/decisions.py), and those of them that are new versions.
    decisions: list[DecisionInfo] = field(default_factory=list)
    created_decisions: list[DecisionInfo] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedDefinition:
    info: DefinitionInfo
    parsed: ParsedProcess


def _info(row: Any) -> DefinitionInfo:
    return DefinitionInfo(row.id, row.key, row.version, row.name, row.checksum, row.file_name,
                          as_utc(row.deployed_at) or utcnow(), row.deployed_by)


_INFO_COLUMNS = [process_definition.c[name] for name in
                 ("id", "key", "version", "name", "checksum", "file_name", "deployed_at", "deployed_by")]


def strip_schema_suffix(name: str) -> str:
    """A form key from a schema file name or a modeller's reference to it ("approval.schema.json")."""
    for suffix in (".schema.json", "-schema.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def form_key_from_file_name(file_name: str) -> str:
    return strip_schema_suffix(file_name.rsplit("/", 1)[-1])


class DefinitionRepository:
    """Stores definitions and caches parsed specs per (key, version): an instance never re-parses XML."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, int], LoadedDefinition] = {}
        self._forms: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # -- deploy ---------------------------------------------------------------------------------------
    def deploy(self, conn: Connection, files: list[tuple[str, bytes]], forms: list[tuple[str, bytes]],
               deployed_by: str | None, source: str | None = None,
               check_service: Callable[[str, set[str]], str | None] | None = None) -> DeploymentResult:
        form_docs, problems = self._validate_forms(forms)
        decision_files = [f for f in files if is_decision_file(f[0])]
        files = [f for f in files if not is_decision_file(f[0])]
        new_decisions, decision_problems = parse_decision_files(decision_files)
        if decision_problems:
            raise DeploymentError(problems + decision_problems)
        # A process is parsed with the latest version of each decision it calls, this deployment's first.
        stored_decisions = _latest_decisions(conn)
        decision_sources = {row.key: (row.key, row.file_name or row.key, row.dmn_xml.encode("utf-8"))
                            for row in stored_decisions.values()}
        decision_sources.update({d.key: (d.key, d.file_name, d.xml) for d in new_decisions})
        parsed_files, bpmn_problems = parse_files(files, list(decision_sources.values())) if files else ([], [])
        problems.extend(bpmn_problems)
        if check_service is not None:
            problems.extend(_service_problems(parsed_files, check_service))
        known = {row.key for row in conn.execute(sa.select(process_definition.c.key).distinct())}
        deployed_keys = {key for parsed in parsed_files for key in parsed.processes}
        for parsed in parsed_files:
            for process in parsed.processes.values():
                for called in sorted(process.called_keys - known - deployed_keys):
                    problems.append(Problem(f"call activity calls process '{called}', which is not deployed",
                                            parsed.file_name, _call_activity_id(process, called), None))
        if problems:
            raise DeploymentError(problems)

        now = utcnow()
        deployment_id = str(uuid.uuid4())
        created: list[DefinitionInfo] = []
        definitions: list[DefinitionInfo] = []
        created_forms: list[FormInfo] = []
        loaded: list[LoadedDefinition] = []
        deployment_row_written = False

        def ensure_deployment_row() -> None:
            nonlocal deployment_row_written
            if not deployment_row_written:
                conn.execute(deployment.insert().values(id=deployment_id, deployed_at=now,
                                                        deployed_by=deployed_by, source=source))
                deployment_row_written = True

        decisions: list[DecisionInfo] = []
        created_decisions: list[DecisionInfo] = []
        decision_versions = {key: row.version for key, row in stored_decisions.items()}
        for decision in new_decisions:
            stored = stored_decisions.get(decision.key)
            if stored is not None and stored.checksum == decision.checksum:
                decisions.append(_decision_info(stored))
                continue
            ensure_deployment_row()
            decision_info = _store_decision(conn, decision, (stored.version + 1) if stored else 1, deployment_id,
                                            now, deployed_by)
            decision_versions[decision.key] = decision_info.version
            decisions.append(decision_info)
            created_decisions.append(decision_info)

        def store_process(key: str, process: ParsedProcess, file_name: str | None, xml: str, digest: str) -> None:
            latest = conn.execute(
                sa.select(*_INFO_COLUMNS, process_definition.c.decision_versions)
                .where(process_definition.c.key == key).order_by(process_definition.c.version.desc()).limit(1)
            ).first()
            bound = {k: decision_versions[k] for k in sorted(process.decision_keys)}
            if latest is not None and latest.checksum == digest and _bound(latest.decision_versions) == bound:
                definitions.append(_info(latest))
                return
            ensure_deployment_row()
            info = DefinitionInfo(str(uuid.uuid4()), key, (latest.version + 1) if latest else 1,
                                  process.name, digest, file_name, now, deployed_by)
            conn.execute(process_definition.insert().values(
                id=info.id, deployment_id=deployment_id, key=key, version=info.version, name=info.name,
                file_name=info.file_name, checksum=info.checksum, bpmn_xml=xml, deployed_at=now,
                deployed_by=deployed_by, confidential=is_confidential(process.spec),
                decision_versions=json.dumps(bound) if bound else None))
            loaded.append(LoadedDefinition(info, process))
            created.append(info)
            definitions.append(info)

        for parsed in parsed_files:
            for key, process in parsed.processes.items():
                store_process(key, process, parsed.file_name, parsed.xml.decode("utf-8"), parsed.checksum)
        # A new decision version reaches new instances: the latest version of every other process calling it
        # gets a new version bound to it (same XML and checksum); running instances keep theirs.
        changed = {d.key for d in created_decisions}
        deployed_keys = {key for parsed in parsed_files for key in parsed.processes}
        for row in _latest_processes_calling(conn, changed) if changed else []:
            if row.key in deployed_keys:
                continue
            try:
                process = parse_process(row.file_name or row.key, row.bpmn_xml.encode("utf-8"), row.key,
                                        list(decision_sources.values()))
            except Exception as exc:  # noqa: BLE001 - refuse the deploy, never half-write it
                raise DeploymentError([Problem(f"process '{row.key}' version {row.version} calls a changed "
                                               f"decision and cannot be parsed with it: {exc}", row.file_name)]
                                      ) from exc
            store_process(row.key, process, row.file_name, row.bpmn_xml, row.checksum)
        for key, raw, doc in form_docs:
            digest = checksum(raw)
            latest_form = conn.execute(
                sa.select(form_definition.c.version, form_definition.c.checksum)
                .where(form_definition.c.key == key).order_by(form_definition.c.version.desc()).limit(1)
            ).first()
            if latest_form is not None and latest_form.checksum == digest:
                created_forms.append(FormInfo(key, latest_form.version, digest))
                continue
            version = (latest_form.version + 1) if latest_form else 1
            conn.execute(form_definition.insert().values(
                id=str(uuid.uuid4()), key=key, version=version, checksum=digest,
                schema_json=json.dumps(doc), deployed_at=now, deployed_by=deployed_by))
            created_forms.append(FormInfo(key, version, digest))
        return DeploymentResult(deployment_id if deployment_row_written else None, definitions,
                                created_forms, created, loaded, [w for parsed in parsed_files for w in parsed.warnings],
                                decisions, created_decisions)

    @staticmethod
    def _validate_forms(forms: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes, dict[str, Any]]],
                                                                 list[Problem]]:
        docs, problems = [], []
        for file_name, raw in forms:
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict):
                    raise ValueError("a form schema must be a JSON object")
                jsonschema.Draft202012Validator.check_schema(doc)
            except (ValueError, jsonschema.SchemaError) as exc:
                message = exc.message if isinstance(exc, jsonschema.SchemaError) else str(exc)
                problems.append(Problem(f"invalid form schema: {message}", file_name))
                continue
            docs.append((form_key_from_file_name(file_name), raw, doc))
        return docs, problems

    # -- lookup ---------------------------------------------------------------------------------------
    def remember(self, loaded: LoadedDefinition) -> None:
        """Cache a parsed definition; for a new version only once the deploy committed."""
        with self._lock:
            self._specs[(loaded.info.key, loaded.info.version)] = loaded

    def get(self, conn: Connection, key: str, version: int | None = None) -> LoadedDefinition:
        """The definition (latest unless a version is given), parsed at most once per process."""
        if version is not None:
            cached = self._specs.get((key, version))
            if cached is not None:
                return cached
        query = sa.select(*_INFO_COLUMNS).where(process_definition.c.key == key)
        query = query.where(process_definition.c.version == version) if version is not None else \
            query.order_by(process_definition.c.version.desc()).limit(1)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"process definition '{key}'" + (f" version {version}" if version else "")
                           + " is not deployed")
        cached = self._specs.get((row.key, row.version))
        if cached is not None:
            return cached
        stored = conn.execute(sa.select(process_definition.c.bpmn_xml, process_definition.c.decision_versions)
                              .where(process_definition.c.id == row.id)).one()
        decisions = _decision_sources(conn, _bound(stored.decision_versions))
        loaded = LoadedDefinition(_info(row), parse_process(row.file_name or key, stored.bpmn_xml.encode("utf-8"),
                                                            key, decisions))
        self.remember(loaded)
        return loaded

    def resolve_called(self, conn: Connection, loaded: LoadedDefinition,
                       pinned: dict[str, int] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
        """Specs for every process a definition calls, transitively: latest versions unless pinned."""
        specs: dict[str, Any] = dict(loaded.parsed.embedded)
        versions: dict[str, int] = {}
        pending = sorted(loaded.parsed.called_keys)
        while pending:
            key = pending.pop()
            if key in versions:
                continue
            called = self.get(conn, key, (pinned or {}).get(key))
            versions[key] = called.info.version
            specs[key] = called.parsed.spec
            specs.update(called.parsed.embedded)
            pending.extend(sorted(called.parsed.called_keys - set(versions)))
        return specs, versions

    def list(self, conn: Connection, key: str | None = None, latest_only: bool = True) -> list[DefinitionInfo]:
        query = sa.select(*_INFO_COLUMNS).order_by(process_definition.c.key, process_definition.c.version)
        if key is not None:
            query = query.where(process_definition.c.key == key)
        rows = [_info(row) for row in conn.execute(query)]
        if latest_only:
            latest: dict[str, DefinitionInfo] = {}
            for info in rows:
                latest[info.key] = info
            rows = list(latest.values())
        return rows

    def count_keys(self, conn: Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count(sa.distinct(process_definition.c.key)))).scalar_one())

    def xml(self, conn: Connection, key: str, version: int | None = None) -> str:
        info = self.get(conn, key, version).info
        return str(conn.execute(sa.select(process_definition.c.bpmn_xml)
                                .where(process_definition.c.id == info.id)).scalar_one())

    def form(self, conn: Connection, key: str) -> dict[str, Any] | None:
        """The latest schema of a form key, or None when no such form is deployed."""
        row = conn.execute(sa.select(form_definition.c.version, form_definition.c.schema_json)
                           .where(form_definition.c.key == key)
                           .order_by(form_definition.c.version.desc()).limit(1)).first()
        if row is None:
            return None
        cached = self._forms.get(key)
        if cached is not None and cached[0] == row.version:
            return cached[1]
        doc: dict[str, Any] = json.loads(row.schema_json)
        with self._lock:
            self._forms[key] = (row.version, doc)
        return doc


def _decision_info(row: Any) -> DecisionInfo:
    return DecisionInfo(row.id, row.key, row.version, row.name, row.checksum, row.file_name,
                        as_utc(row.deployed_at) or utcnow(), row.deployed_by)


def _bound(decision_versions: str | None) -> dict[str, int]:
    return dict(sorted(json.loads(decision_versions).items())) if decision_versions else {}


def _latest_decisions(conn: Connection) -> dict[str, Any]:
    """The latest version of every decision, with its XML."""
    latest = (sa.select(decision_definition.c.key, sa.func.max(decision_definition.c.version).label("version"))
              .group_by(decision_definition.c.key).subquery())
    rows = conn.execute(sa.select(decision_definition).join(latest, sa.and_(
        decision_definition.c.key == latest.c.key, decision_definition.c.version == latest.c.version)))
    return {row.key: row for row in rows}


def _decision_sources(conn: Connection, versions: dict[str, int]) -> list[tuple[str, str, bytes]]:
    """(key, file name, XML) of the given decision versions, for parsing a stored process again."""
    if not versions:
        return []
    rows = conn.execute(sa.select(decision_definition.c.key, decision_definition.c.version,
                                  decision_definition.c.file_name, decision_definition.c.dmn_xml)
                        .where(decision_definition.c.key.in_(list(versions)))).all()
    found = {row.key: row for row in rows if versions.get(row.key) == row.version}
    missing = sorted(set(versions) - set(found))
    if missing:
        raise NotFound(f"decision {', '.join(missing)} of the process definition is not stored")
    return [(row.key, row.file_name or row.key, row.dmn_xml.encode("utf-8")) for row in found.values()]


def _store_decision(conn: Connection, decision: ParsedDecision, version: int, deployment_id: str, now: datetime,
                    deployed_by: str | None) -> DecisionInfo:
    info = DecisionInfo(str(uuid.uuid4()), decision.key, version, decision.name, decision.checksum,
                        decision.file_name, now, deployed_by)
    conn.execute(decision_definition.insert().values(
        id=info.id, deployment_id=deployment_id, key=info.key, version=version, name=info.name,
        file_name=info.file_name, checksum=info.checksum, dmn_xml=decision.xml.decode("utf-8"), deployed_at=now,
        deployed_by=deployed_by))
    return info


def _latest_processes_calling(conn: Connection, decision_keys: set[str]) -> list[Any]:
    """The latest version of each process whose latest version calls one of ``decision_keys``."""
    latest = (sa.select(process_definition.c.key, sa.func.max(process_definition.c.version).label("version"))
              .group_by(process_definition.c.key).subquery())
    rows = conn.execute(sa.select(process_definition).join(latest, sa.and_(
        process_definition.c.key == latest.c.key, process_definition.c.version == latest.c.version))
        .where(process_definition.c.decision_versions.is_not(None))).all()
    return [row for row in rows if set(_bound(row.decision_versions)) & decision_keys]


def _service_problems(parsed_files: list[ParsedFile],
                      check_service: Callable[[str, set[str]], str | None]) -> list[Problem]:
    problems = []
    for parsed in parsed_files:
        for process in parsed.processes.values():
            for spec in (process.spec, *process.embedded.values()):
                for task_spec in spec.task_specs.values():
                    if isinstance(task_spec, ExternalServiceTask):
                        message = check_service(task_spec.operation_name, set(task_spec.operation_params))
                        if message:
                            problems.append(Problem(message, parsed.file_name, task_spec.bpmn_id,
                                                    element_line(parsed.xml, task_spec.bpmn_id)))
    return problems


def _call_activity_id(process: ParsedProcess, called: str) -> str | None:
    from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity

    for spec in (process.spec, *process.embedded.values()):
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, CallActivity) and task_spec.spec == called:
                return str(task_spec.bpmn_id)
    return None
