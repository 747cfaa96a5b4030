// A small live chart on a canvas: an app's CPU (a line) and memory (a filled area) over the
// last minutes, one sample a second. Each series is scaled to its own maximum in view; the
// card shows the current values as numbers beside it.

export const HISTORY = 180; // samples kept: three minutes at one a second

export class History {
  constructor() {
    this.cpu = [];
    this.mem = [];
  }

  push(cpu, mem) {
    this.cpu.push(cpu);
    this.mem.push(mem);
    if (this.cpu.length > HISTORY) {
      this.cpu.shift();
      this.mem.shift();
    }
  }
}

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// The line of `values`, from 0 at the bottom to 1.25 x their maximum (at least `floor`) at
// the top, so that a flat series sits below the top rather than along it.
function path(ctx, values, width, height, floor) {
  const max = Math.max(...values.map((v) => v || 0), floor) * 1.25;
  const step = width / (HISTORY - 1);
  const x0 = width - (values.length - 1) * step;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = x0 + i * step;
    const y = height - 2 - ((v || 0) / max) * (height - 6);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  return x0;
}

// Draw `history` into `canvas`, sized to the canvas's box at the screen's pixel density.
export function draw(canvas, history) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = colour("--grid");
  ctx.lineWidth = 1;
  for (const f of [0.25, 0.5, 0.75]) {
    ctx.beginPath();
    ctx.moveTo(0, Math.round(height * f) + 0.5);
    ctx.lineTo(width, Math.round(height * f) + 0.5);
    ctx.stroke();
  }
  if (history.mem.length > 1) {
    const x0 = path(ctx, history.mem, width, height, 1);
    ctx.lineTo(width, height);
    ctx.lineTo(x0, height);
    ctx.closePath();
    ctx.fillStyle = colour("--mem-fill");
    ctx.fill();
    path(ctx, history.mem, width, height, 1);
    ctx.strokeStyle = colour("--mem");
    ctx.lineWidth = 1;
    ctx.stroke();
  }
  if (history.cpu.length > 1) {
    path(ctx, history.cpu, width, height, 4); // below 4 % the line stays low: idle looks idle
    ctx.strokeStyle = colour("--cpu");
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}
