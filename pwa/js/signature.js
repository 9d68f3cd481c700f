// The recipient's signature for condolence money, drawn on the screen with a finger, a
// stylus or a mouse (Pointer Events), saved as a small PNG with a line saying what it is.

import { t } from './i18n.js';
import { canvas as makeCanvas, encode, thumbnail } from './imaging.js';

/** Open the signing pad; resolves to {bytes, thumb, width, height, mime} or null (cancelled). */
export function signaturePad({ caption = '' } = {}) {
  return new Promise((resolve) => {
    const wrap = document.createElement('div');
    wrap.className = 'sigpad';
    wrap.innerHTML = `<div class="sigbox"><p><b>${t('sig_title')}</b><br><small class="muted">${t('sig_hint')}</small></p>
      <canvas data-testid="sig-canvas"></canvas>
      <div class="row"><button type="button" class="btn" data-a="clear">${t('sig_clear')}</button>
      <button type="button" class="btn" data-a="cancel">${t('sig_cancel')}</button>
      <button type="button" class="btn primary" data-a="ok" data-testid="sig-ok">${t('sig_done')}</button></div></div>`;
    document.body.append(wrap);
    const cv = wrap.querySelector('canvas');
    const w = Math.min(640, wrap.querySelector('.sigbox').clientWidth - 26); // inside the box's padding
    const h = Math.round(w * 0.45);
    const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
    cv.style.width = `${w}px`;
    cv.style.height = `${h}px`;
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
    const ctx = cv.getContext('2d');
    const blank = () => { ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, cv.width, cv.height); };
    blank();
    ctx.lineWidth = 3 * dpr;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#111';
    let ink = 0;
    let last = null;
    const at = (e) => { const r = cv.getBoundingClientRect(); return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr]; };
    cv.addEventListener('pointerdown', (e) => { e.preventDefault(); cv.setPointerCapture?.(e.pointerId); last = at(e); });
    cv.addEventListener('pointermove', (e) => {
      if (!last) return;
      const p = at(e);
      ctx.beginPath();
      ctx.moveTo(...last);
      ctx.lineTo(...p);
      ctx.stroke();
      ink += Math.hypot(p[0] - last[0], p[1] - last[1]);
      last = p;
    });
    const up = () => { last = null; };
    cv.addEventListener('pointerup', up);
    cv.addEventListener('pointercancel', up);
    const close = (v) => { wrap.remove(); resolve(v); };
    wrap.querySelector('[data-a=clear]').onclick = () => { blank(); ink = 0; };
    wrap.querySelector('[data-a=cancel]').onclick = () => close(null);
    wrap.querySelector('[data-a=ok]').onclick = async () => {
      // A tap or a dot is not a signature.
      if (ink < 40 * dpr) { wrap.querySelector('small').textContent = t('sig_empty'); wrap.querySelector('small').className = 'warn'; return; }
      // The saved image: the strokes at 1x with a caption line under them.
      const out = makeCanvas(Math.round(w * 1.5), Math.round(h * 1.5) + 28);
      const o = out.getContext('2d');
      o.fillStyle = '#fff';
      o.fillRect(0, 0, out.width, out.height);
      o.drawImage(cv, 0, 0, Math.round(w * 1.5), Math.round(h * 1.5));
      o.fillStyle = '#444';
      o.font = '16px "Noto Sans CJK SC", "PingFang SC", sans-serif';
      o.fillText(caption, 8, out.height - 9);
      const bytes = await encode(out, 'image/png');
      close({ bytes, thumb: await thumbnail(out), width: out.width, height: out.height, mime: 'image/png' });
    };
  });
}
