"""The API and UI tests' sample process: the first version of the shipped vacation request (two user tasks of
the staff and management lanes, a gateway and a script, no connectors). It lives in ``bench/bpmn`` beside the
benchmark's reference model, so the tests, the latency bench and its figures use the same file and do not change
whenever the shipped model grows."""

from pathlib import Path

HERE = Path(__file__).parents[3] / "bench" / "bpmn"
BPMN = (HERE / "vacation-request.bpmn").read_bytes()
FORMS = [(p.name, p.read_bytes()) for p in sorted(HERE.glob("vacation-*.json"))]
