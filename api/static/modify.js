// Instance repair on the instance page: a click on a diagram element (or the element list) picks the element and
// offers only the actions that fit it (a token there: move, cancel, skip a waiting service; else start before/after).
(function () {
  const panel = document.getElementById("modify");
  const container = document.getElementById("viewer");
  if (!panel) return;
  const form = panel.querySelector("form");
  const element = form.elements.namedItem("element");
  const action = form.elements.namedItem("action");
  const target = form.elements.namedItem("target");
  const tokensNote = panel.querySelector("[data-role=tokens]");
  let byId = {};
  let tokens = [];
  let waiting = [];

  const option = (value, text) => {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = text;
    return node;
  };

  function offer() {
    const id = element.value;
    const info = byId[id];
    const here = tokens.filter((t) => t.elementId === id);
    const boundary = info && info.type === "BoundaryEvent";
    const allowed = {
      moveToken: here.length > 0,
      cancel: here.length > 0,
      skipTask: here.length > 0 && waiting.includes(id),
      startBeforeActivity: Boolean(info) && !boundary,
      startAfterActivity: Boolean(info) && info.startAfter,
    };
    for (const choice of action.options) choice.disabled = !allowed[choice.value];
    if (action.selectedOptions.length === 0 || action.selectedOptions[0].disabled) {
      const first = Array.from(action.options).find((o) => !o.disabled);
      if (first) action.value = first.value;
    }
    tokensNote.textContent = here.length ? `${here.length} aktive(r) Token` : "";
    show();
  }

  function show() {
    for (const row of form.querySelectorAll("[data-for]")) row.hidden = row.dataset.for !== action.value;
    target.required = action.value === "moveToken";
  }

  function pick(id) {
    if (!byId[id]) return;
    element.value = id;
    offer();
    panel.scrollIntoView({ block: "nearest" });
    if (container) {
      for (const node of container.querySelectorAll(".picked")) node.classList.remove("picked");
      const shape = container.querySelector(`[data-element-id="${CSS.escape(id)}"]`);
      if (shape) shape.classList.add("picked");
    }
  }

  fetch(panel.dataset.optionsUrl, { credentials: "same-origin" }).then((r) => r.json()).then((options) => {
    tokens = options.tokens;
    waiting = options.waitingServices;
    for (const item of options.elements) {
      byId[item.id] = item;
      const label = item.name === item.id ? item.id : `${item.name} (${item.id})`;
      element.appendChild(option(item.id, label));
      if (item.type !== "BoundaryEvent") target.appendChild(option(item.id, label));
    }
    const first = tokens.length ? tokens[0].elementId : "";
    if (first) element.value = first;
    offer();
    panel.dataset.ready = "true";
  });

  element.addEventListener("change", offer);
  action.addEventListener("change", show);
  if (container) {
    container.addEventListener("click", (event) => {
      const node = event.target.closest("[data-element-id]");
      if (node) pick(node.getAttribute("data-element-id"));
    });
  }
})();
