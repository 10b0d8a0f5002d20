// The instance view: the deployed diagram with completed elements and active tokens highlighted.
(function () {
  const container = document.getElementById("viewer");
  const viewer = new BpmnJS({ container });
  const split = (value) => (value ? value.split(",").filter(Boolean) : []);
  fetch(container.dataset.xmlUrl).then((r) => r.text()).then(async (xml) => {
    await viewer.importXML(xml);
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    canvas.zoom("fit-viewport");
    for (const id of split(container.dataset.completed)) if (registry.get(id)) canvas.addMarker(id, "done");
    for (const id of split(container.dataset.active)) if (registry.get(id)) canvas.addMarker(id, "active");
    container.dataset.ready = "true";
  });
})();
