// Screen: problem follow-up (问题跟进) and the in-app 督办 reminders.
// The colours are the server's (GET /api/problems/deadlines, server/deadlines.py): the
// phone keeps the last answer with its time and computes none itself. The list is built
// in memory and painted PAGE cards at a time (more as the end comes near), so
// 500 problems open as fast as 20.

import { recordState } from './store.js';
import { label, t, vocab } from './i18n.js';
import { api, fmtTime, h, main, S, store, toast } from './ui.js';
import { afterSave } from './status.js';
import { reasonText } from './entry-view.js';
import { searchEnterprises } from './search.js';

const LADDER = ['enterprise', 'government', 'source'];
const RANK = { enterprise: 0, government: 1, source: 2, resolved: 3, closed: 3 };
const URGENCY = { red: 0, yellow: 1, blue: 2 };
const PAGE = 20;
const F = { stage: '', tag: '', category: '', q: '' }; // kept while the app runs
let rows = [];
let shown = 0;
let fetchedAt = 0;

/** The server's colours and the user's reminders, kept on the phone for offline use. */
async function fetchDeadlines() {
  if (!navigator.onLine) return false;
  try {
    const [d, r] = await Promise.all([api('GET', '/api/problems/deadlines'), api('GET', '/api/reminders')]);
    const at = new Date().toISOString();
    await store.setMeta('deadlines', { at, today: d.today, items: Object.fromEntries(d.items.map((i) => [i.id, i])) });
    await store.setMeta('reminders', { at, items: r.items });
    fetchedAt = Date.now();
    return true;
  } catch { return false; }
}

function build(all, dls) {
  const ents = new Map((S.ref?.enterprises || []).map((e) => [e.id, e]));
  const visits = new Map();
  for (const r of all) {
    if (r.entity === 'enterprise') ents.set(r.id, r.data);
    else if (r.entity === 'visit') visits.set(r.id, r.data);
  }
  return all.filter((p) => p.entity === 'problem' && !p.data.canonical_id && !['resolved', 'closed'].includes(p.data.stage))
    .map((p) => {
      const stage = p.data.stage || 'enterprise';
      const v = visits.get(p.data.visit_id);
      let ent = ents.get(v?.enterprise_id);
      for (let i = 0; i < 5 && ent?.canonical_id && ents.has(ent.canonical_id); i++) ent = ents.get(ent.canonical_id);
      const srv = dls?.items[p.id];
      // A colour is for the stage the server saw: a move not yet synced has none yet.
      const dl = srv && srv.stage === stage ? srv : null;
      return { p, stage, dl, moved: !!srv && !dl, ent, method: v?.method,
        opened: v?.visited_at || p.created_local || '', due: dl?.due_date || p.data.due_date || '9999' };
    })
    .sort((a, b) => (URGENCY[a.dl?.colour] ?? 3) - (URGENCY[b.dl?.colour] ?? 3)
      || a.due.localeCompare(b.due) || String(a.opened).localeCompare(String(b.opened)) || a.p.id.localeCompare(b.p.id));
}

function dlBadge(x) {
  if (x.moved) return `<span class="dl">${t('dl_pending')}</span>`;
  const c = x.dl?.colour;
  if (!x.dl) return '';
  const text = c === 'red' ? t('dl_red', { n: x.dl.days_overdue }) : c === 'blue' ? t('dl_blue', { n: x.dl.days_left }) : t(`dl_${c || 'none'}`);
  return `<span class="dl dl-${c || 'none'}" data-colour="${c || 'none'}">${text}</span>`;
}

const ownerText = (x) => {
  const lvl = x.dl?.owner_level || x.p.data.owner_level;
  return lvl === 'work_group' && x.dl?.owner ? x.dl.owner : lvl ? t(`ow_${lvl}`) : '';
};

function card(x) {
  const { p, stage } = x;
  const st = recordState(p);
  const due = x.dl?.due_date || p.data.due_date;
  return `<li class="card pcard c-${x.dl?.colour || 'none'}" data-testid="prob-card" data-id="${p.id}">
    ${st === 'synced' ? '' : `<span class="badge ${st}">${t(`st_${st}`)}</span>`}${dlBadge(x)}
    <b>${h(label('categories', p.data.category))}</b>${p.data.tag ? ` · ${h(label('problem_tags', p.data.tag))}` : ''}
    <p class="desc">${h(p.data.description)}</p>
    <p class="small muted" data-testid="prob-ent">${h(x.ent?.name || label('methods', x.method) || '—')} · <span class="nw">${t('raised')} ${h(String(x.opened).slice(0, 10))}</span></p>
    <p class="small">${t('stage')}: <b data-testid="prob-stage">${h(label('stages', stage))}</b>${due ? ` · ${t('due')} <b data-testid="prob-due">${h(due)}</b>` : ''}${ownerText(x) ? ` · ${t('owner')} ${h(ownerText(x))}` : ''}</p>
    ${p.conflict ? `<p class="warn small">${t('conflict_msg', { v: label('stages', p.conflict.server_value) })}</p>` : ''}
    ${p.error ? `<p class="err small">${h(reasonText(p.error))}</p>` : ''}
    <button class="btn small" data-move>${t('change_stage')}</button></li>`;
}

function matching() {
  let list = rows;
  if (F.stage) list = list.filter((x) => x.stage === F.stage);
  if (F.tag) list = list.filter((x) => x.p.data.tag === F.tag);
  if (F.category) list = list.filter((x) => x.p.data.category === F.category);
  const q = F.q.trim().toLowerCase();
  if (q) {
    // The enterprise search of the new-visit form: name fragments and pinyin initials.
    const ents = new Set(searchEnterprises([...new Set(list.map((x) => x.ent).filter(Boolean))], q, Infinity));
    list = list.filter((x) => ents.has(x.ent) || String(x.p.data.description || '').toLowerCase().includes(q));
  }
  return list;
}

function paint(n = PAGE) {
  const list = matching();
  shown = 0;
  main().querySelector('#plist').innerHTML = '';
  main().querySelector('#pcount').textContent = t('n_problems', { n: list.length });
  main().querySelector('#pnone').hidden = list.length > 0;
  more(list, n);
}

function more(list = matching(), n = PAGE) {
  const ul = main().querySelector('#plist');
  ul.insertAdjacentHTML('beforeend', list.slice(shown, shown + n).map(card).join(''));
  shown = Math.min(list.length, shown + n);
  const btn = main().querySelector('#pmore');
  btn.hidden = shown >= list.length;
  btn.textContent = t('more', { n: list.length - shown });
  check();
}

// More cards whenever the list's end is within a screen of view: on scrolling, and
// after each paint (a short filtered list, a jump to the end), checked once a frame.
let ticking = false;
function check() {
  if (ticking) return;
  ticking = true;
  requestAnimationFrame(() => {
    ticking = false;
    const b = document.querySelector('#pmore');
    if (S.route === 'problems' && b && !b.hidden && b.getBoundingClientRect().top < innerHeight + 600) more();
  });
}
globalThis.addEventListener?.('scroll', check, { passive: true });

const remLink = (rem) => {
  const n = (rem?.items || []).filter((i) => !i.acknowledged_at).length;
  return `${t('reminders')}${n ? ` (${n})` : ''}`;
};
// The time of the colours shown; offline they are the last ones fetched.
const statusLine = (dls) => (dls ? t(navigator.onLine ? 'dl_at' : 'dl_offline', { t: fmtTime(dls.at) }) : t('dl_never'));

// What the screen was last built from: a repeated visit paints it at once and repaints
// only if the phone's records, colours or reminders changed meanwhile.
let cached = null;
const read = () => Promise.all([store.list(), store.getMeta('deadlines'), store.getMeta('reminders')]);
const sig = ([all, dls, rem]) => `${dls?.at}|${rem?.at}|${rem?.items.filter((i) => i.acknowledged_at).length}|${all
  .map((r) => `${r.key}:${r.version}:${r.pending?.length}:${!!r.error}:${!!r.conflict}:${!!r.deleted}`).join()}`;

export async function viewProblems(arg) {
  if (arg === 'reminders') return viewReminders();
  const fresh = read();
  const data = cached || (await fresh);
  const [all, dls, rem] = data;
  rows = build(all, dls);
  const sel = (k, all1, opts) => `<select data-pf="${k}" aria-label="${all1}"><option value="">${all1}</option>${opts.map(([c, l]) => `<option value="${c}"${F[k] === c ? ' selected' : ''}>${h(l)}</option>`).join('')}</select>`;
  main().innerHTML = `<h1>${t('problems')}</h1>
    <p class="small row"><span data-testid="dl-status">${statusLine(dls)}</span><a class="btn small" href="#/problems/reminders" data-testid="reminders-link">${remLink(rem)}</a></p>
    <input type="search" id="pq" data-testid="prob-search" placeholder="${t('p_search')}" value="${h(F.q)}">
    <div class="pf">${sel('stage', t('all_stages'), LADDER.map((s) => [s, label('stages', s)]))}${sel('tag', t('all_tags'), vocab('problem_tags'))}${sel('category', t('all_cats'), vocab('categories'))}</div>
    <p class="small muted" id="pcount"></p><p class="muted" id="pnone" hidden>${t('no_problems')}</p>
    <ul class="list" id="plist"></ul><button class="btn block" id="pmore" hidden></button>`;
  paint();
  const m = main();
  let timer = null;
  m.querySelector('#pq').oninput = (e) => { clearTimeout(timer); timer = setTimeout(() => { F.q = e.target.value; paint(); }, 150); };
  m.querySelectorAll('[data-pf]').forEach((s) => { s.onchange = () => { F[s.dataset.pf] = s.value; paint(); }; });
  m.querySelector('#pmore').onclick = () => more();
  m.querySelector('#plist').onclick = (e) => {
    const li = e.target.closest('[data-move]') && e.target.closest('li');
    if (li) moveSheet(rows.find((x) => x.p.id === li.dataset.id));
  };
  if (data === cached) {
    fresh.then((now) => {
      if (sig(now) === sig(cached) || S.route !== 'problems' || !m.querySelector('#plist')) return;
      cached = now;
      rows = build(now[0], now[1]);
      m.querySelector('[data-testid=dl-status]').textContent = statusLine(now[1]);
      m.querySelector('[data-testid=reminders-link]').textContent = remLink(now[2]);
      paint(Math.max(PAGE, shown));
    });
  } else cached = data;
  if (Date.now() - fetchedAt > 60e3) {
    fetchDeadlines().then(async (ok) => {
      if (!ok || S.route !== 'problems' || !m.querySelector('#plist')) return;
      // New colours repaint the list only: the search box keeps its focus and text.
      cached = await read();
      rows = build(cached[0], cached[1]);
      m.querySelector('[data-testid=dl-status]').textContent = statusLine(cached[1]);
      m.querySelector('[data-testid=reminders-link]').textContent = remLink(cached[2]);
      paint(Math.max(PAGE, shown));
    });
  }
}

// ---------- a stage move: choose, write why, confirm -------------------------------------
function moveSheet(x) {
  const from = x.stage;
  const opts = [...LADDER, 'resolved', 'closed'].filter((s) => s !== from);
  const el = document.createElement('div');
  el.className = 'sheet';
  el.dataset.testid = 'move-sheet';
  el.innerHTML = `<form class="panel" novalidate><h2>${t('change_stage')}</h2>
    <p class="small">${h(label('categories', x.p.data.category))} · ${h(x.ent?.name || '')}<br>${t('stage')}: <b>${h(label('stages', from))}</b></p>
    <fieldset class="opts"><legend>${t('new_stage')}</legend>${opts.map((s) => `<label class="opt"><input type="radio" name="to" value="${s}">
      ${h(RANK[s] < RANK[from] ? t('back_to', { v: label('stages', s) }) : label('stages', s))}</label>`).join('')}</fieldset>
    <label><span data-notelabel>${t('note_req')}</span><textarea name="note" rows="2"></textarea></label>
    <label data-res hidden>${t('resolution')}<textarea name="res" rows="2"></textarea></label>
    <p class="err small" data-msg></p>
    <div data-ask hidden class="card"><p data-q></p><p class="small" data-qn></p></div>
    <div class="row"><button type="button" class="btn" data-cancel>${t('cancel')}</button><button class="btn primary" data-go>${t('next')}</button></div></form>`;
  main().append(el);
  const f = el.querySelector('form');
  const to = () => f.to.value;
  let asking = false;
  // The confirmation replaces the form (its question and buttons in view), 返回修改 brings it back.
  const setAsk = (on) => {
    asking = on;
    el.querySelector('[data-ask]').hidden = !on;
    f.querySelectorAll('.opts, label:not(.opt)').forEach((x) => { x.hidden = on; });
    if (!on) f.onchange();
    el.querySelector('[data-go]').textContent = t(on ? 'confirm' : 'next');
    el.querySelector('[data-cancel]').textContent = t(on ? 'edit_again' : 'cancel');
  };
  f.onchange = () => {
    const s = to();
    el.querySelector('[data-res]').hidden = !['resolved', 'closed'].includes(s);
    el.querySelector('[data-notelabel]').textContent = t(s === 'closed' ? 'why_closed' : RANK[s] < RANK[from] ? 'why_back' : 'note_req');
  };
  el.querySelector('[data-cancel]').onclick = () => (asking ? setAsk(false) : el.remove());
  f.onsubmit = async (e) => {
    e.preventDefault();
    const s = to();
    const note = f.note.value.trim();
    const res = f.res.value.trim();
    const outcome = s === 'resolved' || s === 'closed';
    const msg = !s ? 'need_stage' : !note ? 'need_note' : outcome && !res ? 'need_res' : '';
    el.querySelector('[data-msg]').textContent = msg ? t(msg) : '';
    if (msg) return;
    if (!asking) {
      el.querySelector('[data-q]').textContent = t('confirm_move', { a: label('stages', from), b: label('stages', s) });
      el.querySelector('[data-qn]').textContent = [note, res].filter(Boolean).join(' / ');
      return setAsk(true);
    }
    const data = { stage: s, stage_note: note };
    if (outcome) data.resolution = res;
    // base_version comes from the record: the server refuses to overwrite a newer stage.
    await store.save([{ entity: 'problem', id: x.p.id, data }]);
    cached = null;
    el.remove();
    toast(t('moved'));
    afterSave();
    viewProblems();
  };
}

// ---------- reminders (督办提醒) ----------------------------------------------------------
async function viewReminders() {
  if (Date.now() - fetchedAt > 60e3) await fetchDeadlines();
  const [rem, all] = await Promise.all([store.getMeta('reminders'), store.list('problem')]);
  const probs = new Map(all.map((p) => [p.id, p.data]));
  const items = rem?.items || [];
  main().innerHTML = `<h1>${t('reminders')}</h1><p class="small"><a class="btn small" href="#/problems">${t('back')}</a>
    <span data-testid="dl-status">${statusLine(rem)}</span></p>
    ${items.length ? '' : `<p class="muted">${t('no_reminders')}</p>`}<ul class="list">${items.map((i) => {
    const p = probs.get(i.problem_id);
    return `<li class="card" data-testid="reminder" data-id="${i.id}"><span class="dl dl-${i.kind === 'near' ? 'blue' : 'red'}">${t(`rk_${i.kind}`)}</span>
      <b>${h(p ? label('categories', p.category) : i.category)}</b> · ${h(p ? label('stages', p.stage) : i.stage)}<br>
      <span class="small">${h(i.district)} · ${t('owner')} ${h(i.owner)} · ${t('due')} ${h(i.due_date)}${i.days_overdue ? ` · ${t('dl_red', { n: i.days_overdue })}` : ''}</span><br>
      ${i.acknowledged_at ? `<span class="small ok" data-acked>${t('acked', { t: fmtTime(i.acknowledged_at) })}</span>` : `<button class="btn small" data-ack="${i.id}">${t('ack')}</button>`}</li>`;
  }).join('')}</ul>`;
  main().querySelectorAll('[data-ack]').forEach((b) => {
    b.onclick = async () => {
      if (!navigator.onLine) return toast(t('ack_offline'));
      try {
        await api('POST', `/api/reminders/${b.dataset.ack}/ack`);
      } catch { return toast(t('ack_offline')); }
      const hit = items.find((i) => String(i.id) === b.dataset.ack);
      hit.acknowledged_at = new Date().toISOString();
      await store.setMeta('reminders', rem);
      cached = null;
      viewReminders();
    };
  });
}
