// The marks drawn on the lanes: shapes (★ ▲ ▼ ◆ ✕ ○), glyphs (↱) and small notes.
//
// Runs in the browser, called by timeline.js. Shapes, not colours, carry the meaning, so
// each one stays readable for colour-blind viewers (palette.js).

/** How a point event of the page's own vocabulary is drawn on its process lane (null: not
 * drawn, only hoverable). A lesson's own kinds have the shapes its spec's `marks` gives
 * (experiments/spec.py's MARK_SHAPES, each drawn by drawShape below). */
const MARKS = {
  "print": "tick",
  "queue.put": "up",
  "queue.get": "down",
  "queue.full": "upAlert",
  "queue.empty": "downAlert",
  "error": "cross",
  "run.error": "cross",
  "proc.reap": "ring",
  "proc.start": null,
  "proc.exit": null,
  // A traced program's primitives (objects.js); no lesson emits these kinds by hand.
  "lock.timeout": "downAlert", // an acquire that gave up
  "event.set": "flag", // a signal to whoever waits
  "cond.notify": "flag",
  "barrier.pass": "bar", // through the barrier
  "pipe.send": "up",
  "pipe.recv": "down",
};

/** The shape of an event's mark: the page's for its own kinds, else the lesson's
 * (`lessonMarks`: its spec's `marks`), else a cross for any *.error, else a diamond. */
export function markShape(kind, lessonMarks = {}) {
  if (kind in MARKS) return MARKS[kind];
  if (Object.hasOwn(lessonMarks, kind)) return lessonMarks[kind];
  return kind.endsWith(".error") ? "cross" : "diamond";
}

/** A small note at x (to its right; to its left where it would pass `maxX`, the canvas's
 * right edge: a label is never cut). */
export function drawNote(ctx, text, x, y, h, theme, maxX = Infinity) {
  ctx.font = theme.smallFont;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const w = ctx.measureText(text).width;
  if (x + w + 2 > maxX) x = Math.max(0, x - 16 - w);
  ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
  ctx.fillRect(x - 2, y + h / 2 - 7, w + 4, 14);
  ctx.fillStyle = theme.text;
  ctx.fillText(text, x, y + h / 2);
}

export function drawGlyph(ctx, glyph, x, y, h, color, theme, bold) {
  ctx.fillStyle = color;
  ctx.font = bold ? `bold ${Math.max(12, Math.min(20, h + 4))}px system-ui, sans-serif` : theme.font;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(glyph, x, y + h / 2);
}

export function drawShape(ctx, shape, x, cy, s, color, theme) {
  const r = s / 2;
  ctx.fillStyle = color;
  ctx.strokeStyle = theme.bg;
  ctx.lineWidth = 1;
  ctx.beginPath();
  switch (shape) {
    case "star":
      for (let k = 0; k < 10; k++) {
        const rad = k % 2 ? r * 0.45 : r * 1.15;
        const a = -Math.PI / 2 + (k * Math.PI) / 5;
        ctx.lineTo(x + rad * Math.cos(a), cy + rad * Math.sin(a));
      }
      break;
    case "up": case "upAlert":
      ctx.moveTo(x, cy - r); ctx.lineTo(x + r, cy + r); ctx.lineTo(x - r, cy + r);
      break;
    case "down": case "downAlert":
      ctx.moveTo(x - r, cy - r); ctx.lineTo(x + r, cy - r); ctx.lineTo(x, cy + r);
      break;
    case "flag": // a pennant on its pole
      ctx.moveTo(x - r * 0.6, cy + r); ctx.lineTo(x - r * 0.6, cy - r); ctx.lineTo(x + r, cy - r * 0.45);
      ctx.lineTo(x - r * 0.6, cy + r * 0.1);
      break;
    case "bar": // a gate passed: an upright bar across the lane
      ctx.rect(x - Math.max(1, r * 0.3), cy - r * 1.1, Math.max(2, r * 0.6), r * 2.2);
      break;
    case "ring":
      ctx.arc(x, cy, r * 0.6, 0, 2 * Math.PI);
      ctx.closePath();
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      return;
    case "cross": {
      ctx.strokeStyle = color;
      ctx.lineWidth = Math.max(2, s / 4);
      ctx.moveTo(x - r, cy - r); ctx.lineTo(x + r, cy + r);
      ctx.moveTo(x + r, cy - r); ctx.lineTo(x - r, cy + r);
      ctx.stroke();
      return;
    }
    default: // diamond
      ctx.moveTo(x, cy - r); ctx.lineTo(x + r * 0.8, cy); ctx.lineTo(x, cy + r); ctx.lineTo(x - r * 0.8, cy);
  }
  ctx.closePath();
  ctx.fill();
  if (s >= 7) ctx.stroke();
  if (shape === "upAlert" || shape === "downAlert") {
    ctx.strokeStyle = theme.error;
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}
