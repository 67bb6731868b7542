// The image viewer: fit, zoom at the cursor, drag to pan, boxes on and off. The stage's size comes
// from data-width / data-height (no inline style: the page's CSP forbids them); its transform is set
// through the CSSOM, which the policy allows.
import {$$} from "./dom.js";

export function setupViewer({viewer, stage, boxes, boxesToggle}) {
  if (!viewer) return null;
  stage.style.width = `${Number(stage.dataset.width)}px`;
  stage.style.height = `${Number(stage.dataset.height)}px`;
  let view = {scale: 1, x: 0, y: 0, fit: 1};
  function apply() {
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    boxes.style.setProperty("--label", `${14 / view.scale}px`);
    viewer.dataset.scale = view.scale.toFixed(3);
  }
  function fit() {
    const width = stage.offsetWidth, height = stage.offsetHeight;
    const scale = Math.min(viewer.clientWidth / width, viewer.clientHeight / height);
    view = {scale, fit: scale, x: (viewer.clientWidth - width * scale) / 2, y: (viewer.clientHeight - height * scale) / 2};
    apply();
  }
  function zoomAt(px, py, factor) {
    const scale = Math.min(Math.max(view.scale * factor, view.fit / 2), 16);
    view.x = px - (px - view.x) * (scale / view.scale);
    view.y = py - (py - view.y) * (scale / view.scale);
    view.scale = scale;
    apply();
  }
  const zoom = (factor) => zoomAt(viewer.clientWidth / 2, viewer.clientHeight / 2, factor);
  const showBoxes = () => boxes.classList.toggle("off", !boxesToggle.checked);
  function toggleBoxes() {
    boxesToggle.checked = !boxesToggle.checked;
    showBoxes();
  }

  fit();
  window.addEventListener("resize", fit);
  viewer.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = viewer.getBoundingClientRect();
    zoomAt(event.clientX - rect.left, event.clientY - rect.top, event.deltaY < 0 ? 1.15 : 1 / 1.15);
  }, {passive: false});
  let drag = null;
  viewer.addEventListener("pointerdown", (event) => {
    drag = {x: event.clientX, y: event.clientY};
    viewer.setPointerCapture(event.pointerId);
    viewer.classList.add("dragging");
  });
  viewer.addEventListener("pointermove", (event) => {
    if (!drag) return;
    view.x += event.clientX - drag.x;
    view.y += event.clientY - drag.y;
    drag = {x: event.clientX, y: event.clientY};
    apply();
  });
  const stop = () => { drag = null; viewer.classList.remove("dragging"); };
  viewer.addEventListener("pointerup", stop);
  viewer.addEventListener("pointercancel", stop);
  for (const button of $$("[data-zoom]")) {
    button.addEventListener("click", () => {
      const how = button.dataset.zoom;
      if (how === "reset") fit(); else zoom(how === "in" ? 1.25 : 0.8);
    });
  }
  boxesToggle.addEventListener("change", showBoxes);
  return {fit, zoom, toggleBoxes};
}
