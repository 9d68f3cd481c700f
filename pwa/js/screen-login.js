// Screen: sign in.

import { errorText, getLang, label, setLang, t } from './i18n.js';
import { $, api, engine, h, main, S, store, toast } from './ui.js';
import { checkStorage, refreshReference, syncNow } from './status.js';
import { go, render, renderChrome } from './router.js';

// ---------- sign in --------------------------------------------------------------
export async function viewLogin() {
  const lastUser = await store.getMeta('username', '');
  const pending = await store.pendingEntries(); // entries, as the sync bar counts them
  const revoked = (await store.getMeta('auth_needed')) === 'device_revoked' || !!(await store.getMeta('revoked_device'));
  const why = revoked ? t('device_revoked') : pending ? t('signin_again') : '';
  main().innerHTML = `<section class="card narrow">
    <h1>${t('app')}</h1>
    ${why ? `<p class="warn" data-testid="signin-why" data-code="${revoked ? 'device_revoked' : ''}">${why}${pending ? ` (${pending} ${t('waiting')})` : ''}</p>` : ''}
    <form id="loginf" autocomplete="on">
      <label>${t('username')}<input name="username" autocomplete="username" required value="${h(lastUser)}" autocapitalize="none"></label>
      <label>${t('password')}<input name="password" type="password" autocomplete="current-password" required></label>
      <p id="loginerr" class="err" role="alert"></p>
      <button class="btn primary block" type="submit">${t('signin')}</button>
    </form>
    <p class="center"><button class="link" id="langsw">${getLang() === 'zh' ? 'English' : '中文'}</button></p></section>`;
  $('#langsw').onclick = () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); renderChrome(); render(); };
  $('#loginf').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const err = $('#loginerr');
    if (!navigator.onLine) { err.textContent = t('need_network'); return; }
    try {
      // The same device_id keeps the mutation counter going: queued entries are sent as
      // they are. A revoked device is never asked for again: the server makes a new one.
      const deviceId = await store.getMeta('device_id');
      const revokedId = await store.getMeta('revoked_device');
      const body = { username: f.get('username'), password: f.get('password'), device_name: navigator.userAgent.slice(0, 60) };
      if (deviceId && deviceId !== revokedId) body.device_id = deviceId;
      let r;
      let renewed = false;
      try {
        r = await api('POST', '/api/auth/login', body);
      } catch (e) {
        // 403 device_revoked: this phone's device was revoked (the 401 that says so never
        // reached the app). The cadre has just typed the password: sign in as a new device.
        // 409 device_taken with nothing queued: another person's phone, start afresh.
        const retry = body.device_id && (e.code === 'device_revoked' || (e.code === 'device_taken' && !(await store.outboxCount())));
        if (!retry) throw e;
        if (e.code === 'device_revoked') { await store.setMeta('revoked_device', body.device_id); renewed = true; }
        delete body.device_id;
        r = await api('POST', '/api/auth/login', body);
      }
      const prev = await store.getMeta('user');
      if (prev && prev.id !== r.user.id && (await store.outboxCount())) {
        err.textContent = t('signout_block', { n: await store.pendingEntries() });
        return;
      }
      // Token, device and the queue's numbering after the server's last_mid: one transaction.
      const n = await store.pendingEntries();
      await store.signedIn({ token: r.token, device_id: r.device_id, user: r.user, last_mid: r.last_mid ?? 0 });
      engine.emit({ authNeeded: false, error: null });
      S.user = r.user;
      if ((renewed || revoked) && n) toast(t('device_renewed', { n }));
      checkStorage();
      await refreshReference(true).catch(() => {});
      go('#/home');
      syncNow('signin');
    } catch (e) {
      err.textContent = `${t('signin_fail')}: ${errorText(e.code || 'network')}`;
    }
  };
}
