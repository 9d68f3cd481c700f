// Screen: settings (language, storage, export/import, sign out).

import { getLang, label, setLang, t } from './i18n.js';
import { $, fmtBytes, h, main, S, store, toast } from './ui.js';
import { afterSave, checkStorage } from './status.js';
import { go, render, renderChrome } from './router.js';
import { swVersion } from './updates.js';
import { bindPhotoSettings, photoSettingsCard } from './photos.js';
import { photosWaiting } from './uploads.js';

// ---------- settings ---------------------------------------------------------------------------
export async function viewSettings() {
  const st = await checkStorage();
  const version = await swVersion();
  main().innerHTML = `<h1>${t('settings')}</h1>
    <section class="card"><h2>${t('language')}</h2><div class="seg"><button class="btn segb${getLang() === 'zh' ? ' on' : ''}" data-lang="zh">中文</button><button class="btn segb${getLang() === 'en' ? ' on' : ''}" data-lang="en">English</button></div></section>
    <section class="card"><h2>${t('storage')}</h2>
      <p data-testid="persisted" class="${st.persisted ? 'ok' : 'warn'}">${st.persisted ? t('persisted') : t('not_persisted')}</p>
      ${st.quota ? `<p class="small ${st.nearlyFull ? 'warn' : 'muted'}">${t('used', { u: fmtBytes(st.usage), q: fmtBytes(st.quota) })}</p>` : ''}
      <p class="small muted">${t('export_hint')}</p>
      <button class="btn block" id="exp" data-testid="export">${t('export')}</button>
      <label class="btn block filebtn">${t('import')}<input type="file" id="imp" accept=".json,application/json" data-testid="import"></label></section>
    ${await photoSettingsCard(st)}
    <section class="card"><p class="small muted">${t('version')}: <span data-testid="version">${h(version)}</span> · ${h(S.user?.display_name || S.user?.username || '')}</p>
      <button class="btn block" id="signout">${t('signout')}</button></section>`;
  main().querySelectorAll('[data-lang]').forEach((b) => { b.onclick = () => { setLang(b.dataset.lang); renderChrome(); render(); }; });
  bindPhotoSettings(main());
  $('#exp').onclick = exportUnsent;
  $('#imp').onchange = async (e) => {
    try {
      const file = JSON.parse(await e.target.files[0].text());
      const mids = await store.importUnsent(file);
      toast(t('imported', { n: file.records.length }));
      if (mids.length) afterSave();
    } catch { toast(t('import_bad')); }
  };
  $('#signout').onclick = async () => {
    const n = await store.pendingEntries(); // entries, as the sync bar counts them
    if (n) { toast(t('signout_block', { n })); return; }
    // Photos not uploaded yet would be left to the next person's sign-in: send them first.
    const photos = (await photosWaiting(store)).count;
    if (photos) { toast(t('ph_signout_block', { n: photos })); return; }
    await store.setMeta('token', null);
    S.user = null;
    await store.setMeta('user', null);
    go('#/login');
  };
}

async function exportUnsent() {
  const data = await store.exportUnsent();
  data.device_id = await store.getMeta('device_id');
  const blob = new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `fieldvisit-unsent-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '')}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}
