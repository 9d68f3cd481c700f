// Photo evidence on an entry (issue 18): camera or gallery on a visit, a problem or a
// home visit, the recipient's signature for condolence money; each photo scaled, stamped
// and kept with the form until 保存 writes it with the entry (one transaction), then
// uploaded after the records (js/uploads.js). The screens only place slots:
// photoSlot(type, id) in their HTML and mountPhotos(root) after rendering.

import { label, t } from './i18n.js';
import { captureTimes, isoLocal, photoBytes, photoList, photoSettings, photosOf, photosWaiting, PhotoUploader, uploadAfterSync, PHOTO_DEFAULTS } from './uploads.js';
import { engine, fmtBytes, h, S, store, toast } from './ui.js';
import { scheduleDraft } from './form.js';
import { uuid } from './store.js';

export const uploader = new PhotoUploader({ store, isBusy: () => engine.status.running });
window.fieldvisit.uploader = uploader; // for tests and for support on a phone

/** Wire uploads to the sync engine (after each good round) and the screens (progress). */
export function startPhotos(onChange = () => {}) {
  uploadAfterSync(uploader, engine);
  uploader.on((ev) => {
    if (ev.id) badge(ev);
    if (ev.state === 'uploaded' || ev.idle || ev.error) onChange();
    // Left over (cut off, closed): the browser's Background Sync finishes it after the tab is gone.
    if (ev.error) S.swReg?.sync?.register('outbox').catch(() => {});
  });
  // A safety net like the records' one-minute check: photos waiting while nothing runs
  // (a start signal missed, a record synced by another tab) are picked up within 30 s.
  setInterval(async () => {
    if (navigator.onLine && !uploader.running && !uploader.timer && !engine.status.running && (await photosWaiting(store)).count) uploader.kick();
  }, 30000);
}

/** The place of an entry's photos in a screen's HTML; `sign`: with the signature button. */
export const photoSlot = (type, id, sign = false) =>
  `<div class="photos" data-photos="${h(type)}" data-rid="${h(id)}"${sign ? ' data-sign="1"' : ''}></div>`;

const stateText = (p, prog) => {
  if (p.unsaved) return t('ph_unsaved');
  const ev = prog || {};
  const st = ev.state || p.state;
  if (st === 'uploaded') return t('ph_uploaded');
  if (st === 'failed') return t('ph_failed');
  if (st === 'uploading') return t('ph_uploading', { n: Math.floor((100 * (ev.offset ?? p.offset ?? 0)) / (ev.size || p.size || 1)) });
  return t('ph_pending');
};

function badge(ev) {
  document.querySelectorAll(`[data-photo-id="${CSS.escape(ev.id)}"]`).forEach((fig) => {
    const p = { state: ev.state, size: ev.size, offset: ev.offset };
    fig.dataset.state = ev.state;
    fig.querySelector('figcaption').textContent = stateText(p, ev);
  });
}


/** Fill every photo slot under `root` with the record's photos (saved and in the form) and buttons. */
export async function mountPhotos(root = document) {
  const slots = [...root.querySelectorAll('[data-photos]')];
  if (!slots.length) return;
  const saved = await photosOf(store, slots.map((s) => s.dataset.rid));
  const F = S.form;
  for (const slot of slots) {
    const rid = slot.dataset.rid;
    for (const u of slot.urls || []) URL.revokeObjectURL(u);
    slot.urls = [];
    const url = (bytes) => { const u = URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' })); slot.urls.push(u); return u; };
    const mine = [...saved.filter((p) => p.record_id === rid), ...(F?.photos || []).filter((p) => p.record_id === rid).map((p) => ({ ...p, unsaved: true }))];
    slot.innerHTML = `<div class="phlist">${mine.map((p) => `<figure class="ph" data-photo-id="${h(p.id)}" data-state="${p.unsaved ? 'unsaved' : h(p.state)}" data-testid="photo">
        <img src="${url(p.thumb)}" alt="${h(p.kind === 'signature' ? t('photo_sign') : t('photos'))}">
        <figcaption>${h(stateText(p, uploader.progress.get(p.id)))}</figcaption>
        ${p.unsaved ? `<button type="button" class="phrm" data-rmph="${h(p.id)}" aria-label="${t('remove')}">×</button>` : ''}</figure>`).join('')}</div>
      <div class="phbtns"><label class="btn small">${t('photo_take')}<input type="file" accept="image/*" capture="environment" hidden data-testid="photo-camera"></label>
      <label class="btn small">${t('photo_pick')}<input type="file" accept="image/*" multiple hidden data-testid="photo-gallery"></label>
      ${slot.dataset.sign ? `<button type="button" class="btn small" data-testid="photo-sign" data-signbtn>${t('photo_sign')}</button>` : ''}</div>`;
    slot.querySelectorAll('input[type=file]').forEach((inp) => {
      inp.onchange = async () => {
        const files = [...inp.files];
        inp.value = '';
        for (const f of files) await addPhoto(slot, f);
      };
    });
    slot.querySelector('[data-signbtn]')?.addEventListener('click', () => addSignature(slot));
    slot.querySelectorAll('[data-rmph]').forEach((b) => {
      b.onclick = () => { F.photos = F.photos.filter((p) => p.id !== b.dataset.rmph); scheduleDraft(); mountPhotos(slot.parentElement); };
    });
    slot.querySelectorAll('figure img').forEach((img) => { img.onclick = () => showFull(img.closest('figure').dataset.photoId); });
  }
}

/** Room left on the phone, or null when the browser does not say. */
async function spaceLeft() {
  try {
    const est = await navigator.storage?.estimate?.();
    return est?.quota ? est.quota - est.usage : null;
  } catch { return null; }
}

async function enoughSpace(need) {
  const left = await spaceLeft();
  if (left === null) return true;
  if (left < need * 4 + 2e6) { toast(t('ph_space_full')); return false; }
  if (left < 30e6) toast(t('ph_space_low')); // a warning before the phone is full
  return true;
}

/** Where the cadre is, only if location was already allowed (never a prompt from a photo). */
async function position(F) {
  try {
    const perm = await navigator.permissions?.query({ name: 'geolocation' });
    if (perm?.state === 'granted') {
      const pos = await new Promise((resolve, reject) => navigator.geolocation.getCurrentPosition(resolve, reject, { timeout: 8000, maximumAge: 120000 }));
      return { lat: pos.coords.latitude, lng: pos.coords.longitude, accuracy: Math.round(pos.coords.accuracy) };
    }
  } catch { /* no fix: the form's own position, if any */ }
  return F?.lat != null ? { lat: F.lat, lng: F.lng, accuracy: null } : {};
}

/** The stamp's lines: time, place (the enterprise), coordinates, work group. */
function stampLines(F, when, pos) {
  const ent = F?.newEnt?.name || (S.entList || S.ref?.enterprises || []).find((e) => e.id === F?.enterprise_id)?.name;
  // A home visit's place is the needy worker's home: the stamp names the method, never the person.
  const place = ent || label('methods', F?.method || 'interview');
  const wg = (S.ref?.work_groups || []).find((g) => g.code === S.user?.work_group_code)?.name || S.user?.work_group_code || '';
  const coords = pos.lat != null ? `${pos.lat.toFixed(5)}, ${pos.lng.toFixed(5)}${pos.accuracy ? ` ±${pos.accuracy}m` : ''}` : '';
  return [when.slice(0, 19).replace('T', ' '), place, coords, wg];
}

/** When the photo was taken: the file's time if plausible (a gallery photo keeps its own), else now. */
function takenAt(file) {
  const now = Date.now();
  const ts = file.lastModified;
  return captureTimes(store, Number.isFinite(ts) && ts > now - 400 * 864e5 && ts < now + 60e3 ? ts : now);
}

async function addPhoto(slot, file) {
  const F = S.form;
  if (!F) return;
  if (!(await enoughSpace(300e3))) return;
  const busy = document.createElement('p');
  busy.className = 'small muted';
  busy.textContent = t('ph_processing');
  slot.append(busy);
  try {
    const cfg = await photoSettings(store);
    const when = await takenAt(file);
    const pos = await position(F);
    const t0 = performance.now();
    const { compressPhoto } = await import('./imaging.js'); // loaded when first needed, precached
    const img = await compressPhoto(file, { maxEdge: cfg.max_edge, targetBytes: cfg.target_kb * 1024, stamp: stampLines(F, when.captured_at, pos) });
    window.fieldvisit.lastPhotoMs = performance.now() - t0;
    await keep(F, slot, { ...img, kind: 'photo', mime: 'image/jpeg', ...when, ...pos });
  } catch (e) {
    console.warn('photo not read', e);
    toast(t('ph_bad'));
  } finally {
    busy.remove();
  }
}

async function addSignature(slot) {
  const F = S.form;
  if (!F || !(await enoughSpace(100e3))) return;
  const when = await captureTimes(store, Date.now());
  const amount = F.home?.amount ? ` · ${t('amount')} ${F.home.amount}` : '';
  const { signaturePad } = await import('./signature.js');
  const sig = await signaturePad({ caption: `${t('sig_caption', { t: when.captured_at.slice(0, 16).replace('T', ' ') })}${amount}` });
  if (sig) await keep(F, slot, { ...sig, kind: 'signature', ...when, ...(await position(F)) });
}

/** A processed photo joins the form (and its draft) until 保存 stores it with the entry. */
async function keep(F, slot, img) {
  const { sha256Hex } = await import('./imaging.js');
  F.photos = F.photos || [];
  F.photos.push({
    id: uuid(), record_type: slot.dataset.photos, record_id: slot.dataset.rid, kind: img.kind, mime: img.mime,
    bytes: img.bytes, thumb: img.thumb, size: img.bytes.byteLength, sha256: await sha256Hex(img.bytes),
    width: img.width, height: img.height, captured_at: img.captured_at, device_time: img.device_time,
    lat: img.lat ?? null, lng: img.lng ?? null, accuracy: img.accuracy ?? null,
  });
  scheduleDraft();
  await mountPhotos(slot.parentElement);
}

/** The form's photos whose record this save writes, as rows for Store.save({photos}). */
export function photosForSave(F, changes) {
  const kept = new Set(changes.filter((c) => !c.del).map((c) => `${c.entity}:${c.id}`));
  const at = isoLocal();
  return (F.photos || []).filter((p) => kept.has(`${p.record_type}:${p.record_id}`))
    .map((p) => ({ ...p, state: 'pending', offset: 0, upload_url: null, created_local: at }));
}

async function showFull(id) {
  const inForm = (S.form?.photos || []).find((p) => p.id === id);
  const meta = inForm || (await photoList(store)).find((p) => p.id === id);
  if (!meta) return;
  const bytes = inForm?.bytes || (await photoBytes(store, id)) || meta.thumb;
  const box = document.createElement('div');
  box.className = 'phfull';
  box.dataset.testid = 'photo-full';
  const src = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
  box.innerHTML = `<img src="${src}" alt=""><p class="small">${h(meta.captured_at?.slice(0, 16).replace('T', ' ') || '')}${meta.lat != null ? ` · ${meta.lat.toFixed(5)}, ${meta.lng.toFixed(5)}` : ''}</p>`;
  box.onclick = () => { box.remove(); URL.revokeObjectURL(src); };
  document.body.append(box);
}

// ---------- settings ---------------------------------------------------------------------------
const CHOICES = { max_edge: [1024, 1280, 1600, 2048], target_kb: [150, 250, 400], chunk_kb: [32, 64, 128, 256] };

/** The Settings card: storage used and left, photos waiting, the photo settings. */
export async function photoSettingsCard(st) {
  const cfg = await photoSettings(store);
  const w = await photosWaiting(store);
  const left = st?.quota ? st.quota - st.usage : null;
  const sel = (k, lbl) => `<label>${lbl}<select data-phset="${k}">${CHOICES[k].map((v) => `<option value="${v}"${v === cfg[k] ? ' selected' : ''}>${v}${v === PHOTO_DEFAULTS[k] ? ` (${t('ph_default')})` : ''}</option>`).join('')}</select></label>`;
  return `<section class="card"><h2>${t('photos')}</h2>
    ${left !== null ? `<p class="small ${st.nearlyFull ? 'warn' : 'muted'}" data-testid="storage-left">${t('ph_left', { u: fmtBytes(st.usage), r: fmtBytes(left) })}</p>` : ''}
    <p class="small" data-testid="photos-local">${t('ph_local', { n: w.count, s: fmtBytes(w.bytes) })}</p>
    ${sel('max_edge', t('ph_edge'))}${sel('target_kb', t('ph_target'))}${sel('chunk_kb', t('ph_chunk'))}</section>`;
}

export function bindPhotoSettings(root) {
  root.querySelectorAll('[data-phset]').forEach((s) => {
    s.onchange = async () => {
      const cfg = { ...((await store.getMeta('photo_settings')) || {}), [s.dataset.phset]: Number(s.value) };
      await store.setMeta('photo_settings', cfg);
      toast(t('saved'));
    };
  });
}

