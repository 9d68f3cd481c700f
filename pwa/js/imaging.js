// Photos made small and stamped in the browser: scaled to a longest edge, a visible stamp
// drawn in the bottom-left corner, encoded as JPEG at falling quality until it fits the
// target size. Re-encoding from pixels drops every EXIF field of the original (camera
// serial, its GPS); what the record keeps (time, clock, position) travels as data.

const QUALITIES = [0.82, 0.74, 0.66, 0.58, 0.5, 0.42];

/** Decode a picked file, turned upright (EXIF orientation), as something drawImage takes. */
async function decode(file) {
  if (typeof createImageBitmap === 'function') {
    try {
      return await createImageBitmap(file, { imageOrientation: 'from-image' });
    } catch {
      try { return await createImageBitmap(file); } catch { /* the <img> path below */ }
    }
  }
  // Older iOS and the WeChat browser: an <img> decodes it (upright in current engines).
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

function canvas(w, h) {
  if (typeof OffscreenCanvas === 'function') return new OffscreenCanvas(w, h);
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  return c;
}

async function encode(cv, type, quality) {
  const blob = cv.convertToBlob ? await cv.convertToBlob({ type, quality })
    : await new Promise((resolve) => cv.toBlob(resolve, type, quality));
  return new Uint8Array(await blob.arrayBuffer());
}

/** The stamp: up to four lines (time, place, coordinates, work group) on a dark band. */
export function drawStamp(ctx, w, h, lines) {
  const text = lines.filter(Boolean);
  if (!text.length) return;
  const size = Math.max(14, Math.round(Math.max(w, h) / 56));
  const pad = Math.round(size * 0.5);
  ctx.font = `600 ${size}px "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif`;
  ctx.textBaseline = 'top';
  const maxW = w - 4 * pad;
  const fit = (s) => {
    let out = s;
    while (out.length > 1 && ctx.measureText(out).width > maxW) out = out.slice(0, -1);
    return out === s ? s : `${out.slice(0, -1)}…`;
  };
  const rows = text.map(fit);
  const boxW = Math.min(w - 2 * pad, Math.max(...rows.map((s) => ctx.measureText(s).width)) + 2 * pad);
  const lineH = Math.round(size * 1.3);
  const boxH = rows.length * lineH + 2 * pad - (lineH - size);
  const x = pad;
  const y = h - pad - boxH;
  ctx.fillStyle = 'rgba(0,0,0,0.55)';
  ctx.fillRect(x, y, boxW, boxH);
  ctx.fillStyle = '#ffd54f'; // a thin accent, as the stamps of field apps have
  ctx.fillRect(x, y, Math.max(3, Math.round(size / 6)), boxH);
  ctx.fillStyle = '#fff';
  rows.forEach((s, i) => ctx.fillText(s, x + pad, y + pad + i * lineH));
}

/**
 * A picked photo → {bytes, thumb, width, height, quality}: JPEG, longest edge ≤ maxEdge,
 * ≤ targetBytes where the quality ladder gets there (then the size is halved once more).
 */
export async function compressPhoto(file, { maxEdge = 1600, targetBytes = 250 * 1024, stamp = [] } = {}) {
  const src = await decode(file);
  const sw = src.width;
  const sh = src.height;
  let edge = Math.min(maxEdge, Math.max(sw, sh));
  let out = null;
  for (let round = 0; round < 3 && !out; round++) {
    const k = edge / Math.max(sw, sh);
    const w = Math.max(1, Math.round(sw * k));
    const h = Math.max(1, Math.round(sh * k));
    const cv = canvas(w, h);
    const ctx = cv.getContext('2d');
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(src, 0, 0, w, h);
    drawStamp(ctx, w, h, stamp);
    let last = null;
    for (const q of QUALITIES) {
      last = { bytes: await encode(cv, 'image/jpeg', q), width: w, height: h, quality: q, cv };
      if (last.bytes.byteLength <= targetBytes) break;
    }
    if (last.bytes.byteLength <= targetBytes || round === 2) out = last;
    edge = Math.round(edge * 0.75);
  }
  src.close?.();
  out.thumb = await thumbnail(out.cv);
  delete out.cv;
  return out;
}

/** A small JPEG of a drawn canvas, what the phone keeps once the photo is uploaded. */
export async function thumbnail(cv, edge = 240) {
  const k = Math.min(1, edge / Math.max(cv.width, cv.height));
  const t = canvas(Math.max(1, Math.round(cv.width * k)), Math.max(1, Math.round(cv.height * k)));
  const ctx = t.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, t.width, t.height);
  ctx.drawImage(cv, 0, 0, t.width, t.height);
  return encode(t, 'image/jpeg', 0.7);
}

export { canvas, encode };

/** SHA-256 of the bytes as the phone made them, hex (the server checks it and stores by it). */
export async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}
