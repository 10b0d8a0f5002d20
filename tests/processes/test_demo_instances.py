"""The demo's process instances: started on the demo CRM data at different stages, once."""

from __future__ import annotations

from api.demo_instances import seed_instances
from crm.demo import load_demo_data
from engine.queries import InstanceFilter

from .conftest import World


def test_demo_instances_stand_at_different_stages_and_are_seeded_once(world: World) -> None:
    engine = world.api.engine
    with engine.db.transaction() as conn:
        load_demo_data(conn)
    started = seed_instances(engine, wait_seconds=10)
    views = {engine.get_instance(i).business_key: engine.get_instance(i) for i in started}
    assert {"DEMO-ORDER-REVIEW", "DEMO-ORDER-PRODUCTION", "DEMO-INC-DSL", "DEMO-URLAUB"} <= set(views)
    assert views["DEMO-ORDER-REVIEW"].active_elements == ["review"]
    production = world.wait_for(lambda: "review" not in (v := engine.get_instance(
        views["DEMO-ORDER-PRODUCTION"].id)).active_elements and v.active_elements, "order past its review")
    assert production
    open_elements = {t.element_id for t in engine.list_tasks() if t.business_key == "DEMO-URLAUB"}
    assert open_elements == {"approve"}
    assert world.task(views["DEMO-INC-DSL"].id, "work_2nd", "support2")["priority"] > 0
    assert seed_instances(engine) == []
    assert engine.query_instances(InstanceFilter(limit=1))[1] == len(started)
