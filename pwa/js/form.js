// Shared form helpers: drafts (autosave), steppers, dotted-path fields.

import { h, S, store } from './ui.js';

// Drafts: written 300 ms after a change, and when the form is left or the page hides.
// Never for a form nobody touched; never once saving has begun (the save drops the
// draft in its own transaction, after any draft write already under way has landed).
export let draftTimer = null;
export let draftWriting = Promise.resolve();
export function scheduleDraft() {
  if (S.form) S.form.touched = true;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(flushDraft, 300);
}
export function flushDraft() {
  clearTimeout(draftTimer);
  const F = S.form;
  if (!F || F.saved || F.saving || !F.touched) return draftWriting;
  const form = structuredClone(F);
  draftWriting = draftWriting.then(() => store.putDraft({ id: F.visitId, form })).catch(() => {});
  return draftWriting;
}
/** Saving begins: no draft is written from now on, and a write under way lands first. */
export async function beginSave(F) {
  clearTimeout(draftTimer);
  F.saving = true;
  await draftWriting;
}

export const stepper = (name, value, lbl, big = false) => `<div class="stepper${big ? ' big' : ''}"><span>${h(lbl)}</span>
  <button type="button" class="btn step" data-step="${name}" data-d="-1" aria-label="-">−</button>
  <input type="number" inputmode="numeric" min="0" data-num="${name}" value="${value}" aria-label="${h(lbl)}">
  <button type="button" class="btn step" data-step="${name}" data-d="1" aria-label="+">＋</button></div>`;

export function setPath(obj, path, value) {
  const parts = path.split('.');
  let o = obj;
  for (const k of parts.slice(0, -1)) o = o[k];
  o[parts[parts.length - 1]] = value;
}
export const getPath = (obj, path) => path.split('.').reduce((o, k) => o?.[k], obj);
