// Pure helpers of the outbox: which fields a mutation carries, how batches are cut,
// how push results are read, how retries back off. No storage, no network.

/** Writable fields per entity (docs/sync-protocol.md); everything else is read-only. */
export const WRITABLE = {
  enterprise: ['name', 'uscc', 'district_code', 'address', 'type_tags', 'focus_tags', 'head_count', 'has_union'],
  visit: ['method', 'visited_at', 'district_code', 'work_group_code', 'enterprise_id', 'place', 'participants',
    'workers_met', 'workers_by_group', 'materials', 'consultations', 'notes', 'lat', 'lng', 'separate_from'],
  problem: ['visit_id', 'category', 'tag', 'description', 'stage', 'stage_note', 'resolution'],
  home_visit: ['visit_id', 'district_code', 'visited_at', 'worker_name', 'phone', 'id_number', 'hardship',
    'amount_cents', 'notes'],
};

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
const empty = (v) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

/** Fields of `data` a create sends: writable and not empty. */
export function createFields(entity, data) {
  const out = {};
  for (const f of WRITABLE[entity]) if (!empty(data[f])) out[f] = data[f];
  return out;
}

/** Writable fields that differ between `before` and `after` (only what the person changed). */
export function changedFields(entity, before, after) {
  const out = {};
  for (const f of WRITABLE[entity]) {
    if (!(f in after)) continue;
    if (!same(before?.[f], after[f])) out[f] = after[f] === '' ? null : after[f];
  }
  return out;
}

/**
 * The mutation (without mid) a save produces, or null when nothing changed.
 * A record the server has never confirmed is sent as a full create: a create of an
 * existing id is applied as an update, so this is always safe to replay, and it is
 * how an entry the server rejected is sent again after the cadre fixed it.
 */
export function mutationFor(entity, id, rec, data, { del = false } = {}) {
  if (del) return { op: 'delete', entity, id };
  if (!rec || !rec.known || rec.error) {
    const fields = rec?.known ? fieldsAll(entity, { ...rec.data, ...data }) : createFields(entity, { ...rec?.data, ...data });
    return rec?.known
      ? { op: 'update', entity, id, fields, base_version: rec.version ?? null }
      : { op: 'create', entity, id, fields };
  }
  const fields = changedFields(entity, rec.data, data);
  if (!Object.keys(fields).length) return null;
  return { op: 'update', entity, id, fields, base_version: rec.version ?? null };
}

/**
 * Joining a visit another cadre recorded (the same meeting): an update that only adds
 * `username` to its participants. The server merges it with what it holds, so two
 * cadres joining at once are both kept (docs/sync-protocol.md, "Joining a visit").
 */
export function joinMutation(id, rec, username) {
  return { op: 'update', entity: 'visit', id, fields: { participants_add: [username] }, base_version: rec?.version ?? null };
}

/** Participants with `names` added (never removed), in order. */
export const withParticipants = (list, names) => [...new Set([...(list || []), ...names])];

function fieldsAll(entity, data) {
  const out = {};
  for (const f of WRITABLE[entity]) if (f in data && data[f] !== undefined) out[f] = data[f];
  return out;
}

/**
 * Take mutations in mid order until `maxCount` or `maxBytes` of JSON is reached (at least
 * one). An entry's mutations (same `entry`) are never split: the server judges them together.
 */
export function cutBatch(entries, { maxCount = 100, maxBytes = 256 * 1024 } = {}) {
  const out = [];
  let bytes = 0;
  for (const e of entries) {
    const size = JSON.stringify(e).length;
    const sameEntry = e.entry && out.length && out[out.length - 1].entry === e.entry;
    if (out.length && !sameEntry && (out.length >= maxCount || bytes + size > maxBytes)) break;
    out.push(e);
    bytes += size;
  }
  return out;
}

/** The wire form of an outbox entry (drops local bookkeeping). */
export function wireMutation(e) {
  const m = { mid: e.mid, op: e.op, entity: e.entity, id: e.id };
  if (e.op !== 'delete') m.fields = e.fields || {};
  if (e.op === 'update' && e.base_version != null) m.base_version = e.base_version;
  if (e.entry) m.entry = e.entry;
  return m;
}

/**
 * What one push result means for the phone:
 *   done     - applied (or a replay of an applied one): leaves the outbox
 *   rejected - leaves the outbox, the record shows the reason
 *   conflict - leaves the outbox, the record shows the server's value
 *   reused   - stays in the outbox: the server holds another change under this mid
 *              (`mid_reused`, nothing applied); the queue is numbered again after the
 *              answer's last_mid and sent again
 *   retry    - stays in the outbox (gap or unknown status)
 */
export function readResult(r) {
  let status = r.status;
  let info = r;
  if (status === 'duplicate') {
    const orig = r.original;
    if (orig && typeof orig === 'object') { info = { ...r, ...orig }; status = orig.status || 'applied'; }
    else status = typeof orig === 'string' ? orig : 'applied';
  }
  if (status === 'applied') return { outcome: 'done', version: info.version ?? null };
  if (status === 'rejected' && info.code === 'mid_reused') return { outcome: 'reused', code: 'mid_reused' };
  if (status === 'rejected') {
    const error = { code: info.code || 'rejected', message: info.message || '', field: info.field || null };
    // entry_rejected: another record of the same entry was refused; `cause` says which and why.
    if (info.cause && typeof info.cause === 'object') {
      const c = info.cause;
      error.cause = { mid: c.mid ?? null, entity: c.entity || null, id: c.id || null, code: c.code || 'invalid', field: c.field || null, message: c.message || '' };
    }
    return { outcome: 'rejected', error };
  }
  if (status === 'conflict') {
    return { outcome: 'conflict', version: info.version ?? null,
      conflict: { code: info.code || 'conflict', field: info.field || null, message: info.message || '', server_value: info.server_value ?? null } };
  }
  return { outcome: 'retry', code: info.code || status };
}

/** Exponential backoff with "full jitter" between base/2 and the capped exponential. */
export function backoffDelay(attempt, { base = 5000, max = 10 * 60 * 1000, random = Math.random } = {}) {
  const cap = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Apply pending mutations (mid above what the server reflects) on top of server data. */
export function overlay(serverData, pending) {
  let data = { ...serverData };
  let deleted = false;
  for (const e of pending) {
    if (e.op === 'delete') deleted = true;
    else {
      const { participants_add: add, ...fields } = e.fields || {};
      data = { ...data, ...fields };
      if (add) data.participants = withParticipants(data.participants, add);
    }
  }
  return { data, deleted };
}

/** Next sensible batch size: grow on success, halve on trouble. */
export function nextBatchSize(current, ok, { min = 10, max = 200 } = {}) {
  return ok ? Math.min(max, current * 2) : Math.max(min, Math.floor(current / 2));
}
