// The process designer: bpmn-js modeler; "Bereitstellen" deploys through the REST API (same session).
(function () {
  const canvas = document.getElementById("canvas");
  const key = canvas.dataset.key;
  const csrf = canvas.dataset.csrf;
  const status = document.getElementById("status");
  const problems = document.getElementById("problems");
  const modeler = new BpmnJS({ container: canvas });
  window.silverflowModeler = modeler;

  const EMPTY = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" id="Definitions_new" targetNamespace="http://silverflow.example/bpmn">
  <bpmn:process id="new-process" name="Neuer Prozess" isExecutable="true"><bpmn:startEvent id="start" name="Start"/></bpmn:process>
  <bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" bpmnElement="new-process">
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="180" y="160" width="36" height="36"/></bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>`;

  function say(text, kind) { status.textContent = text; status.className = kind || ""; }

  async function load() {
    let xml = EMPTY;
    if (key) {
      const response = await fetch(`/api/v1/process-definitions/${encodeURIComponent(key)}/xml`);
      if (!response.ok) { say(`Laden fehlgeschlagen (${response.status})`, "error"); return; }
      xml = await response.text();
    }
    try { await modeler.importXML(xml); modeler.get("canvas").zoom("fit-viewport"); say("", ""); canvas.dataset.ready = "true"; }
    catch (err) { say(`Diagramm nicht lesbar: ${err.message}`, "error"); }
  }

  document.getElementById("deploy").addEventListener("click", async () => {
    problems.innerHTML = "";
    const { xml } = await modeler.saveXML({ format: true });
    const form = new FormData();
    form.append("files", new Blob([xml], { type: "application/xml" }), document.getElementById("file-name").value);
    const response = await fetch("/api/v1/deployments", { method: "POST", body: form, headers: { "X-CSRF-Token": csrf } });
    const body = await response.json();
    if (response.ok) {
      const parts = body.definitions.map((d) => `${d.key} v${d.version}${d.created ? "" : " (unverändert)"}`);
      say(`Bereitgestellt: ${parts.join(", ")}`, "ok");
    } else {
      say(body.title + ": " + (body.errors ? "" : body.detail), "error");
      for (const problem of body.errors || []) {
        const item = document.createElement("li");
        item.textContent = `${problem.elementId || problem.field || ""}${problem.line ? " (Zeile " + problem.line + ")" : ""}: ${problem.message}`;
        problems.appendChild(item);
        if (problem.elementId) {
          try { modeler.get("canvas").addMarker(problem.elementId, "problem"); } catch (e) { /* not on the diagram */ }
        }
      }
    }
  });

  document.getElementById("open-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    document.getElementById("file-name").value = file.name;
    await modeler.importXML(await file.text());
    modeler.get("canvas").zoom("fit-viewport");
  });

  document.getElementById("download").addEventListener("click", async () => {
    const { xml } = await modeler.saveXML({ format: true });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
    link.download = document.getElementById("file-name").value;
    link.click();
  });

  load();
})();
