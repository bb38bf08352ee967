// Pointer and keyboard on the timelines: wheel zooms, drag pans (and scrolls lanes),
// hover or tap shows what is under the pointer, keys zoom, pan, fit and play.
//
// Runs in the browser; wired once by dashboard.js, which owns the View, the Clock and
// the panels.

import { hover } from "./hover.js";
import { t } from "./i18n.js";

export function wireTimelineInput({ timelinesEl, tooltip, view, clock, runNow, anyLive, togglePlay,
  panels, theme, redraw }) {
  function panelOf(target) {
    const section = target.closest(".run-timeline");
    return panels().find((p) => p.timelineEl === section) || null;
  }

  let drag = null;
  // Touch: a tap shows a mark's details until the next tap (a touch screen has no hover,
  // and its pointerleave follows every pointerup); two fingers pinch-zoom about their middle.
  let pinned = false;
  const touches = new Map(); // pointerId -> {x, y}
  let pinch = null; // {dist, panel}

  timelinesEl.addEventListener("wheel", (event) => {
    const panel = panelOf(event.target);
    if (!panel || !event.target.matches("canvas")) return;
    event.preventDefault();
    const tl = panel.timeline;
    if (event.shiftKey && event.target.matches(".procs")) {
      tl.scroll += Math.sign(event.deltaY) * Math.max(1, Math.round(tl.geom.visible / 8));
    } else {
      const rect = event.target.getBoundingClientRect();
      const at = tl.tAt(event.clientX - rect.left, view);
      view.zoom(Math.exp(event.deltaY * 0.0015), at, runNow(performance.now()), anyLive());
    }
    redraw();
  }, { passive: false });

  timelinesEl.addEventListener("pointerdown", (event) => {
    const panel = panelOf(event.target);
    if (!panel || !event.target.matches("canvas") || event.button !== 0) return;
    if (pinned) { // the next tap closes the details it keeps
      pinned = false;
      tooltip.hidden = true;
    }
    if (event.pointerType === "touch") {
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (touches.size === 2) {
        const [a, b] = [...touches.values()];
        pinch = { dist: Math.hypot(a.x - b.x, a.y - b.y) || 1, panel, canvas: event.target };
        drag = null;
        return;
      }
    }
    event.target.setPointerCapture(event.pointerId);
    drag = { panel, x: event.clientX, y: event.clientY, scroll: panel.timeline.scroll, moved: false,
      canvas: event.target };
  });

  timelinesEl.addEventListener("pointermove", (event) => {
    if (touches.has(event.pointerId)) touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pinch && touches.size >= 2) {
      const [a, b] = [...touches.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y) || 1;
      const rect = pinch.canvas.getBoundingClientRect();
      const at = pinch.panel.timeline.tAt((a.x + b.x) / 2 - rect.left, view);
      view.zoom(pinch.dist / dist, at, runNow(performance.now()), anyLive());
      pinch.dist = dist;
      redraw();
      return;
    }
    if (drag) {
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      const tl = drag.panel.timeline;
      // From the last position, not movementX: touch pointers report no movement in Chromium.
      const stepX = event.clientX - (drag.lastX ?? drag.x);
      drag.lastX = event.clientX;
      view.pan((-stepX / tl.geom.plotW) * (view.t1 - view.t0), runNow(performance.now()), anyLive());
      if (drag.canvas.matches(".procs")) tl.scroll = drag.scroll - Math.round(dy / tl.geom.laneH);
      redraw();
      tooltip.hidden = true;
      pinned = false;
      return;
    }
    if (!pinned) showTooltip(event);
  });

  const lift = (event) => {
    touches.delete(event.pointerId);
    if (pinch) {
      if (touches.size < 2) pinch = null;
      drag = null;
      return;
    }
    const tapped = drag && !drag.moved;
    drag = null;
    if (tapped) {
      const info = showTooltip(event); // a tap (touch screens have no hover) shows the details
      pinned = event.pointerType !== "mouse" && !tooltip.hidden;
      // What was picked, for the page (what_if.js: a token holder's actions on a process).
      const panel = panelOf(event.target);
      if (info && panel) {
        panel.timelineEl.dispatchEvent(new CustomEvent("procscope:pick", { bubbles: true,
          detail: { panel, info } }));
      }
    }
  };
  timelinesEl.addEventListener("pointerup", lift);
  timelinesEl.addEventListener("pointercancel", (event) => { touches.delete(event.pointerId); pinch = null; drag = null; });
  timelinesEl.addEventListener("pointerleave", () => { if (!pinned) tooltip.hidden = true; });

  function showTooltip(event) {
    const panel = panelOf(event.target);
    if (!panel || !event.target.matches("canvas")) {
      tooltip.hidden = true;
      return;
    }
    const rect = event.target.getBoundingClientRect();
    const perfNow = performance.now();
    const clip = Math.min(clock.time(perfNow), panel.model.now(perfNow));
    const info = hover(panel.timeline, event.target.matches(".cores") ? "cores" : "procs",
      event.clientX - rect.left, event.clientY - rect.top, view, clip, theme());
    if (!info) {
      tooltip.hidden = true;
      return null;
    }
    // The rows' keys are English words other modules read ("pid"): translated only here.
    const rows = info.rows.map(([k, v]) => `<tr><th>${esc(t(k))}</th><td>${esc(String(v))}</td></tr>`).join("");
    tooltip.innerHTML = `<strong>${esc(info.title)}</strong>${rows ? `<table>${rows}</table>` : ""}`;
    tooltip.hidden = false;
    const w = tooltip.offsetWidth;
    const h = tooltip.offsetHeight;
    const x = event.clientX + 14 + w > innerWidth ? event.clientX - w - 14 : event.clientX + 14;
    const y = event.clientY + 14 + h > innerHeight ? event.clientY - h - 10 : event.clientY + 14;
    tooltip.style.left = `${Math.max(4, x)}px`;
    tooltip.style.top = `${Math.max(4, y)}px`;
    return info;
  }

  function esc(s) {
    return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  }

  timelinesEl.addEventListener("keydown", (event) => {
    const panel = panelOf(event.target);
    if (!panel) return;
    const now = runNow(performance.now());
    const live = anyLive();
    const span = view.t1 - view.t0;
    const keys = {
      ArrowLeft: () => view.pan(-span * 0.1, now, live),
      ArrowRight: () => view.pan(span * 0.1, now, live),
      ArrowUp: () => { panel.timeline.scroll -= 1; },
      ArrowDown: () => { panel.timeline.scroll += 1; },
      PageUp: () => { panel.timeline.scroll -= panel.timeline.geom.visible; },
      PageDown: () => { panel.timeline.scroll += panel.timeline.geom.visible; },
      "+": () => view.zoom(0.7, (view.t0 + view.t1) / 2, now, live),
      "=": () => view.zoom(0.7, (view.t0 + view.t1) / 2, now, live),
      "-": () => view.zoom(1 / 0.7, (view.t0 + view.t1) / 2, now, live),
      "0": () => view.fit(),
      f: () => view.fit(),
      " ": togglePlay,
    };
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    action();
    redraw();
  });
}
