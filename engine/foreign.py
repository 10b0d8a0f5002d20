"""What other modelling tools write, made fit for deploying: encodings, vendor extensions, data stores, link
events and definitions referenced from the file level.

The stored XML stays what the modeller drew (re-encoded as UTF-8 only); the changes here apply to the copies
that are validated and executed, on every parse (deploy and after a restart alike), so both see the same.
"""

from __future__ import annotations

import codecs
import copy
import re
from typing import Any

from .errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
_B = f"{{{BPMN_NS}}}"
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DECLARED_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")
_OPEN_PLACES = {f"{_B}extensionElements", f"{_B}documentation"}
_ELEMENT_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-fA-F]+>")


def as_utf8(xml: bytes, declared: str | None) -> bytes:
    """The document re-encoded as UTF-8, its declaration saying so; line numbers stay as they were.

    ``declared`` is the encoding the XML parser found (a byte order mark decides before it: without a
    declaration lxml reports UTF-8 for a UTF-16 file with a mark). Raises ValueError when it cannot be decoded.
    """
    codec = next((name for bom, name in _BOMS if xml.startswith(bom)), None) or declared or "utf-8"
    try:
        text = xml.decode(codec)
    except (LookupError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the file as {codec}: {exc}") from exc
    text = _DECLARED_ENCODING.sub(r"\1\2UTF-8\2", text.lstrip("\ufeff"), count=1)
    return text.encode("utf-8")


def readable(message: str) -> str:
    """A parser's message in words: lxml element reprs become the element's name."""
    return _ELEMENT_REPR.sub(lambda m: f"the {m.group(1)} element", message).strip()


def validation_copy(root: Any) -> Any:
    """The tree the BPMN schema judges: without diagram interchange (layout is no business of execution and
    tools put their own elements and attributes there) and without vendor elements outside the places the
    schema leaves open to them (extension elements, documentation)."""
    tree = copy.deepcopy(root)
    for node in list(tree.iter(f"{{{BPMNDI_NS}}}BPMNDiagram")):
        node.getparent().remove(node)
    for node in list(tree.iter()):
        if not isinstance(node.tag, str) or node.tag.startswith(_B) or node.getparent() is None:
            continue
        if not any(ancestor.tag in _OPEN_PLACES for ancestor in node.iterancestors()):
            node.getparent().remove(node)
    return tree


def execution_copy(root: Any, file_name: str) -> tuple[Any, list[Problem], list[Problem]]:
    """The tree the engine runs, with the warnings and problems found on the way.

    Data stores are kept for the diagram only: the engine reads and writes none. Event definitions referenced
    from the file level are placed in their events. Link events become the sequence flow they stand for.
    """
    tree = copy.deepcopy(root)
    warnings: list[Problem] = []
    problems: list[Problem] = []
    _drop_data_stores(tree, file_name, warnings)
    _inline_event_definitions(tree, file_name, problems)
    _resolve_links(tree, file_name, problems)
    return tree, warnings, problems


def _drop_data_stores(tree: Any, file_name: str, warnings: list[Problem]) -> None:
    references = set()
    for node in list(tree.iter(f"{_B}dataStore", f"{_B}dataStoreReference")):
        references.add(node.get("id"))
        warnings.append(Problem(f"{node.tag.split('}', 1)[1]} '{node.get('name') or node.get('id')}' is kept for "
                                "the diagram; the engine reads and writes no data store", file_name, node.get("id"),
                                node.sourceline))
        node.getparent().remove(node)
    for association in list(tree.iter(f"{_B}dataInputAssociation", f"{_B}dataOutputAssociation")):
        ends = {(ref.text or "").strip() for ref in association.iter(f"{_B}sourceRef", f"{_B}targetRef")}
        if ends & references:
            association.getparent().remove(association)


def _inline_event_definitions(tree: Any, file_name: str, problems: list[Problem]) -> None:
    shared = {node.get("id"): node for node in tree if isinstance(node.tag, str)
              and node.tag.endswith("EventDefinition")}
    for ref in list(tree.iter(f"{_B}eventDefinitionRef")):
        event = ref.getparent()
        definition = shared.get((ref.text or "").strip())
        if definition is None:
            problems.append(Problem(f"eventDefinitionRef '{(ref.text or '').strip()}' names no event definition of "
                                    "the file", file_name, event.get("id"), ref.sourceline))
            continue
        event.replace(ref, copy.deepcopy(definition))
    for definition in shared.values():
        tree.remove(definition)


def _resolve_links(tree: Any, file_name: str, problems: list[Problem]) -> None:
    """A link throw event hands its token to the catch event of the same name in the same process."""
    for scope in tree.iter(f"{_B}process", f"{_B}subProcess", f"{_B}transaction", f"{_B}adHocSubProcess"):
        throws, catches = [], {}
        for event in scope:
            link = event.find(f"{_B}linkEventDefinition")
            if link is None:
                continue
            name = link.get("name") or link.get("id")
            if event.tag == f"{_B}intermediateCatchEvent":
                if name in catches:
                    problems.append(Problem(f"link event '{name}' is caught twice in the same process", file_name,
                                            event.get("id"), event.sourceline))
                catches[name] = event
            elif event.tag == f"{_B}intermediateThrowEvent":
                throws.append((event, name))
            else:
                problems.append(Problem("link event definitions belong to intermediate throw and catch events",
                                        file_name, event.get("id"), event.sourceline))
        for event, name in throws:
            target = catches.get(name)
            if target is None:
                problems.append(Problem(f"link event '{name}' has no catch event of that name in the same process",
                                        file_name, event.get("id"), event.sourceline))
                continue
            flow_id = f"{event.get('id')}__link"
            flow = event.makeelement(f"{_B}sequenceFlow", {"id": flow_id, "sourceRef": event.get("id"),
                                                           "targetRef": target.get("id")})
            scope.append(flow)
            _plain_event(event)
        for event in catches.values():
            _plain_event(event, intermediate_throw=True)


def _plain_event(event: Any, intermediate_throw: bool = False) -> None:
    """A link event without its definition: a none event that passes its token on."""
    for link in event.findall(f"{_B}linkEventDefinition"):
        event.remove(link)
    if intermediate_throw:  # Spiff runs a none intermediate throw event as a pass-through; a none catch it refuses
        event.tag = f"{_B}intermediateThrowEvent"
