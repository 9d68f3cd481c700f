// UI text: Chinese first, English on request. Vocabulary labels come from the server's
// reference data when present; the copies below cover the first start offline.

const V = {
  methods: [['report', '听取汇报', 'District report'], ['symposium', '座谈会', 'Symposium'],
    ['interview', '个案访谈', 'Individual interview'], ['home_visit', '入户走访慰问', 'Home visit (needy worker)'],
    ['outreach', '宣传·法援·咨询', 'Publicity, legal aid, advice']],
  categories: [['employment', '就业', 'Employment'], ['wages', '工资', 'Wages'], ['social_insurance', '社保', 'Social insurance'],
    ['safety', '安全生产', 'Work safety'], ['housing', '住房', 'Housing'], ['schooling', '子女就学', 'Schooling'], ['other', '其他', 'Other']],
  problem_tags: [['hope', '最盼', 'Hope'], ['urgent', '最急', 'Urgent'], ['worry', '最忧', 'Worry'], ['resent', '最怨', 'Resent']],
  stages: [['enterprise', '与企业沟通协调', 'With the enterprise'], ['government', '争取党委和政府解决', 'Party committee & government'],
    ['source', '从源头上推动解决', 'At the source (policy)'], ['resolved', '已解决', 'Resolved'], ['closed', '未解决关闭', 'Closed unresolved']],
  focus_groups: [['needy', '困难职工', 'Needy'], ['laid_off', '下岗失业', 'Laid off'], ['migrant', '农民工', 'Migrant'], ['dispatched', '劳务派遣', 'Dispatched']],
  enterprise_type_tags: [['sme', '中小企业', 'SME'], ['non_public', '非公有制', 'Non-public'], ['restructured', '改制', 'Restructured'],
    ['difficulty', '经营困难', 'In difficulty'], ['labour_intensive', '劳动密集型', 'Labour-intensive']],
  places: [['enterprise', '企业', 'Enterprise'], ['workshop', '车间', 'Workshop'], ['team', '班组', 'Team'],
    ['living', '生活场所', 'Living place'], ['other', '其他', 'Other']],
};

const T = {
  app: ['职工走访', 'Field visits'],
  signin: ['登录', 'Sign in'], username: ['用户名', 'User name'], password: ['密码', 'Password'],
  signin_again: ['登录已过期。已保存的记录仍在本机，重新登录后自动发送。', 'Signed out. Saved entries stay on this phone and are sent after you sign in again.'],
  signin_fail: ['登录失败', 'Sign-in failed'], need_network: ['登录需要网络', 'Signing in needs a network'],
  online: ['在线', 'Online'], offline: ['离线', 'Offline'], waiting: ['条待发送', 'waiting'], all_sent: ['全部已发送', 'All sent'],
  last_sync: ['上次同步', 'Last sync'], never: ['从未', 'never'], syncing: ['正在同步…', 'Syncing…'], send_now: ['立即发送', 'Send now'],
  sync_error: ['同步出错', 'Sync error'], retry_at: ['将于 {t} 重试', 'retry at {t}'],
  home: ['首页', 'Home'], entries: ['我的记录', 'My entries'], problems: ['问题跟进', 'Problems'], settings: ['设置', 'Settings'],
  new_visit: ['＋ 新建走访', '+ New visit'], today: ['今天的记录', "Today's entries"], none_today: ['今天还没有记录', 'No entries today'],
  progress: ['本区进度', 'District progress'], ents_visited: ['走访企业', 'Enterprises'], types: ['种类型', 'types'],
  workers_met: ['面对面职工', 'Workers met'], target: ['目标', 'target'], progress_offline: ['（离线，显示上次数据）', '(offline, last known)'],
  drafts: ['未保存的草稿', 'Unsaved drafts'], continue: ['继续', 'Continue'], discard: ['放弃', 'Discard'],
  choose_method: ['选择走访方式', 'Choose the method'], method: ['走访方式', 'Method'], when: ['时间', 'When'],
  enterprise: ['企业', 'Enterprise'], search_ent: ['搜索企业：名称或拼音首字母', 'Search: name or pinyin initials'],
  new_ent: ['新建企业', 'New enterprise'], ent_name: ['企业名称', 'Enterprise name'], uscc: ['统一社会信用代码', 'Unified social credit code'],
  uscc_ok: ['校验通过', 'Check character OK'], uscc_partial: ['已输入 {n}/18 位', '{n}/18 characters'],
  uscc_bad: ['含无效字符 {c}（不用 I O S V Z）', 'Invalid character {c} (no I O S V Z)'],
  uscc_sum: ['校验位不符（应为 {c}），请核对；仍可保存', 'Check character should be {c}; please check — you can still save'],
  uscc_long: ['超过 18 位', 'More than 18 characters'], address: ['地址', 'Address'], ent_types: ['企业类型', 'Type'],
  no_ent: ['未选择企业', 'No enterprise chosen'], change: ['更换', 'Change'], place: ['地点', 'Place'],
  workers: ['面对面职工人数', 'Workers met'], of_which: ['其中', 'of whom'], materials: ['发放材料（份）', 'Materials handed out'],
  consultations: ['咨询人次', 'Consultations'], problems_raised: ['反映的问题', 'Problems raised'], add_problem: ['＋ 添加问题', '+ Add problem'],
  category: ['类别', 'Category'], description: ['问题描述', 'Description'], remove: ['删除', 'Remove'],
  home_visit: ['入户慰问', 'Home visit'], worker_name: ['职工姓名', "Worker's name"], phone: ['电话', 'Phone'],
  id_number: ['身份证号（仅上传，不在手机保留）', 'ID number (sent, not kept on the phone)'], hardship: ['困难情况', 'Hardship'],
  amount: ['慰问金（元）', 'Condolence money (yuan)'], notes: ['备注', 'Notes'], location: ['位置', 'Location'],
  add_location: ['记录当前位置', 'Record my location'], locating: ['定位中…', 'Locating…'], no_location: ['无法定位', 'Location unavailable'],
  save: ['保存', 'Save'], saved: ['已保存在本机', 'Saved on this phone'], delete: ['删除这条记录', 'Delete this entry'],
  confirm_delete: ['确定删除这条记录？', 'Delete this entry?'], required: ['请填写', 'Required'],
  st_local: ['已存本机', 'Saved on phone'], st_sending: ['发送中', 'Sending'], st_synced: ['已同步', 'Synced'],
  st_error: ['需处理', 'Needs attention'], st_conflict: ['有冲突', 'Conflict'], fix_hint: ['点开修改后重新保存即可再次发送', 'Open it, fix and save to send again'],
  field: ['字段', 'field'], total: ['合计', 'Total'],
  rej_invalid: ['内容不符合要求', 'Not accepted'], rej_forbidden: ['超出你的权限范围', 'Outside your scope'],
  rej_deleted: ['该记录已在服务器上删除', 'Deleted on the server'], rej_not_found: ['服务器上没有这条记录', 'Not on the server'],
  rej_visit_not_found: ['所属走访未上传成功', 'Its visit is not on the server'], rej_unknown_district: ['区县代码不存在', 'Unknown district'],
  rej_unknown_work_group: ['工作组不存在', 'Unknown work group'], rej_unknown_user: ['参与人不存在', 'Unknown participant'],
  f_phone: ['电话', 'Phone'], ric_bad: ['身份证号校验不通过，请核对', 'ID number check failed: please check it'],
  phone_bad: ['不像大陆手机号，请核对', 'Not a mainland mobile number: please check'], f_uscc: ['统一社会信用代码', 'Credit code'], f_id_number: ['身份证号', 'ID number'], no_entries: ['还没有记录', 'No entries yet'], more: ['显示更多', 'Show more'], draft_saved: ['草稿已自动保存', 'Draft autosaved'],
  stage: ['处理阶段', 'Stage'], no_problems: ['没有符合条件的问题', 'No matching open problems'],
  p_search: ['搜索问题描述、企业名称或拼音首字母', 'Search description, enterprise, pinyin initials'],
  all_stages: ['全部阶段', 'All stages'], all_tags: ['全部标签', 'All tags'], all_cats: ['全部类别', 'All categories'],
  n_problems: ['共 {n} 个问题', '{n} problems'], more: ['显示更多（还有 {n} 个）', 'Show more ({n} left)'],
  dl_red: ['超期{n}天', '{n} d overdue'], dl_yellow: ['滞后', 'Behind'], dl_blue: ['临近·剩{n}天', 'Due in {n} d'], dl_none: ['正常', 'On track'],
  dl_pending: ['阶段已变更，同步后更新', 'Stage changed: updates after sync'], dl_at: ['督办状态：{t}', 'Supervision status: {t}'],
  dl_offline: ['离线，显示 {t} 获取的督办状态', 'Offline: status as fetched {t}'], dl_never: ['尚未获取督办状态（需要网络）', 'No supervision status yet (needs a network)'],
  due: ['期限', 'Due'], owner: ['负责', 'Owner'], raised: ['反映于', 'Raised'],
  ow_work_group: ['工作组', 'Work group'], ow_district: ['区(市)县总工会', 'District federation'], ow_city: ['市总综合协调组', 'City coordination team'],
  change_stage: ['变更阶段', 'Change stage'], new_stage: ['新的阶段', 'New stage'], back_to: ['退回：{v}', 'Back to: {v}'],
  note_req: ['说明（必填）', 'Note (required)'], why_back: ['退回原因（必填）', 'Why it goes back (required)'],
  why_closed: ['未解决的原因（必填）', 'Why it stays unresolved (required)'], resolution: ['做了什么、结果如何（必填）', 'What was done (required)'],
  need_stage: ['请选择新的阶段', 'Choose the new stage'], need_note: ['请填写说明', 'Write a note'], need_res: ['请填写做了什么', 'Write what was done'],
  next: ['下一步', 'Next'], confirm: ['确认', 'Confirm'], cancel: ['取消', 'Cancel'], edit_again: ['返回修改', 'Edit'],
  confirm_move: ['确认把阶段从「{a}」改为「{b}」？', 'Change the stage from "{a}" to "{b}"?'], moved: ['已保存，将同步到服务器', 'Saved; it will sync'],
  reminders: ['督办提醒', 'Reminders'], no_reminders: ['没有督办提醒', 'No reminders'], ack: ['知道了', 'Acknowledge'],
  acked: ['已确认 {t}', 'Acknowledged {t}'], ack_offline: ['确认需要网络，请稍后再试', 'Acknowledging needs a network'],
  rk_near: ['临近提醒', 'Due soon'], rk_overdue: ['到期催办', 'Overdue'], rk_escalated: ['升级督办', 'Escalated'], conflict_msg: ['他人已改为「{v}」，你的推进未生效', 'Someone set it to "{v}"; your change was not applied'],
  language: ['语言 / Language', 'Language / 语言'], storage: ['存储', 'Storage'], persisted: ['持久存储：已获准', 'Persistent storage: granted'],
  not_persisted: ['持久存储：未获准（浏览器可能清理数据，请安装到主屏幕并及时同步）', 'Persistent storage: not granted (the browser may clear data; install the app and sync often)'],
  storage_full: ['手机存储快满了，请尽快同步或导出', 'Storage is nearly full: sync or export soon'],
  used: ['已用 {u} / 可用 {q}', '{u} used of {q}'], export: ['导出未发送记录', 'Export unsent entries'],
  import: ['导入记录文件', 'Import entries file'], imported: ['已导入 {n} 条', 'Imported {n}'], import_bad: ['文件无法读取', 'Unreadable file'],
  export_hint: ['最后手段：把未发送的记录存成文件，在另一部手机导入，不会重复。', 'Last resort: save unsent entries to a file and import them on another phone — no duplicates.'],
  version: ['版本', 'Version'], signout: ['退出登录', 'Sign out'], signout_block: ['还有 {n} 条未发送，请先同步或导出', '{n} entries unsent: sync or export first'],
  update_ready: ['新版本已就绪', 'A new version is ready'], update_now: ['更新', 'Update'],
  wechat: ['您正在微信中打开。请点右上角「…」→「在浏览器打开」，再「添加到主屏幕」，离线使用更可靠。', 'You opened this in WeChat. Tap "…" (top right) → "Open in browser", then "Add to Home screen" for reliable offline use.'],
  close: ['知道了', 'Got it'], outdated: ['应用需要更新，请刷新', 'The app must update: reload'], back: ['返回', 'Back'],
  visitor: ['走访人', 'By'], me: ['我', 'me'], edit: ['修改', 'Edit'], merged: ['已合并到其他记录', 'Merged into another record'],
  device_revoked: ['本机已被管理员停用，请重新登录；未同步的记录会保留并重新发送。', 'This phone was disabled by an administrator: sign in again. Unsent entries stay on the phone and are sent again.'],
  device_renewed: ['已重新登录。本机未同步的 {n} 条记录正在重新发送。', 'Signed in again. The {n} unsent entries on this phone are being sent again.'],
  rej_entry_rejected: ['{what}未通过，整条记录没有上传：{why}', '{what} was not accepted, so the whole entry was not sent: {why}'],
  rej_enterprise_not_found: ['所选企业不在服务器上（新建时未通过），请重新选择或新建', 'The enterprise is not on the server (its creation was refused): choose or create it again'],
  rej_invalid_uscc: ['统一社会信用代码应为18位（数字和大写字母），请核对或留空', 'The credit code must be 18 characters (digits and capitals): check it or leave it empty'],
  rej_invalid_id_number: ['身份证号校验不通过，请核对', 'ID number check failed: please check it'],
  rej_invalid_phone: ['电话不像大陆手机号，请核对', 'Phone is not a mainland mobile number: please check'],
  e_enterprise: ['新建的企业', 'The new enterprise'], e_home_visit: ['入户慰问记录', 'The home visit'], e_problem: ['反映的问题', 'A problem'], e_visit: ['走访记录', 'The visit'],
  // photos (js/photos.js, js/signature.js)
  photos: ['现场照片', 'Photos'], photo_take: ['拍照', 'Camera'], photo_pick: ['相册', 'Gallery'], photo_sign: ['收款人签名', "Recipient's signature"],
  ph_unsaved: ['保存后上传', 'Sent after saving'], ph_pending: ['待上传', 'Waiting'], ph_uploading: ['上传中 {n}%', 'Uploading {n}%'],
  ph_uploaded: ['已上传', 'Uploaded'], ph_failed: ['上传失败，点“立即发送”重试', 'Upload failed: tap Send now to retry'],
  ph_processing: ['正在压缩照片…', 'Compressing the photo…'], ph_bad: ['无法读取这张图片', 'This image could not be read'],
  ph_space_low: ['手机存储空间不多了，请尽快同步照片', 'Little storage left: sync the photos soon'],
  ph_space_full: ['存储空间不足，照片没有保存', 'Not enough storage: the photo was not kept'],
  ph_waiting: ['{n} 张照片待上传', '{n} photos waiting'], ph_default: ['默认', 'default'],
  ph_signout_block: ['还有 {n} 张照片未上传，请先联网发送', '{n} photos not uploaded yet: send them before signing out'],
  ph_left: ['已用 {u}，剩余 {r}', '{u} used, {r} left'], ph_local: ['待上传照片 {n} 张（{s}）', 'Photos waiting: {n} ({s})'],
  ph_edge: ['照片最长边（像素）', 'Longest edge (pixels)'], ph_target: ['每张照片不超过（KB）', 'Largest photo (KB)'],
  ph_chunk: ['上传分块（KB，网络差时选小）', 'Upload chunk (KB; smaller on a poor network)'],
  sig_title: ['请收款人在框内签名', 'Recipient: please sign in the box'], sig_hint: ['用手指或鼠标书写', 'Write with a finger or the mouse'],
  sig_clear: ['重写', 'Clear'], sig_done: ['完成签名', 'Done'], sig_empty: ['请先签名再点完成', 'Please sign before tapping Done'],
  sig_caption: ['慰问金签收 {t}', 'Condolence money received {t}'], sig_cancel: ['取消', 'Cancel'],
  rej_required: ['必填项未填写', 'A required field is missing'],
  rej_unknown_field: ['含有服务器不认识的内容，请更新应用', 'Contains something the server does not know: update the app'],
  rej_implausible_date: ['走访时间不在合理范围内，请核对日期', 'The visit date is implausible: check it'],
  rej_parent_deleted: ['所属走访已在服务器上删除，内容已留存备查', 'Its visit was deleted on the server; the content is kept on record'],
  rej_stage_reason_required: ['退回处理阶段需要填写原因', 'Moving a stage back needs a note'],
  rej_unstorable: ['服务器无法保存这条记录，请检查内容（如特殊字符）', 'The server could not store this entry: check its content'],
  rej_mid_reused: ['记录编号冲突，正在重新编号发送', 'Numbering clash: renumbering and sending again'],
  rej_after_mid_reused: ['等待重新编号后发送', 'Waiting to be renumbered and sent'],
  rej_gap: ['等待之前的记录先发送', 'Waiting for earlier entries to be sent first'],
  rej_replay_kept_newer: ['服务器上已有更新的内容，已保留较新的，你的内容留存备查', 'The server had newer values and kept them; yours are on record'],
  rej_uscc_check: ['统一社会信用代码校验位不符，已按输入保存', 'The credit code’s check character does not match; kept as typed'],
  rej_malformed: ['格式不对，服务器无法读取', 'Malformed: the server could not read it'],
  rej_stage_conflict: ['处理阶段已被他人改动', 'Someone else changed the stage'],
  rej_masked_value: ['不能保存打星号的隐去内容，请填写完整或保持原样', 'A masked value cannot be stored: type it in full or leave it unchanged'],
  rej_reference_out_of_scope: ['关联的记录超出你的权限范围，请重新选择', 'The linked record is outside your scope: choose another'],
  rej_implausible_value: ['数值超出合理范围，请核对', 'The number is implausible: check it'],
  rej_invalid_participant: ['参与人不在你能选择的人员中，请核对用户名', 'Not a participant you can name: check the user name'],
  // the duplicate-visit warning (js/visit-duplicates.js)
  dup_title: ['近{n}天已有{c}条对该企业的走访记录', '{c} visit(s) to this enterprise in the last {n} days'],
  dup_yours: ['（你已在其中）', '(you are in it)'],
  dup_hint: ['保存时会问你：这是不是同一次走访', 'When you save you will be asked whether it is the same meeting'],
  dup_ask: ['这是同一次走访吗？', 'Is this the same meeting?'],
  dup_ask_text: ['其他干部已记录了对该企业的走访。如果你也在场，选「是同一次」：你将作为参与人加入那条记录，不再新建一条，统计只算一次。', 'Another cadre already recorded a visit to this enterprise. If you were there, choose "Same meeting": you join that record as a participant instead of creating a new one, and it counts once.'],
  dup_kids: ['你填写的问题、照片会加到那条记录上；人数和备注以原记录为准。', 'Your problems and photos are added to that record; its counts and notes stay as recorded.'],
  dup_join: ['是同一次：加入{who}的记录', 'Same meeting: join {who}'],
  dup_different: ['不是，另记一条新的走访', 'No: record a separate visit'],
  dup_cancel: ['返回修改', 'Back to the form'],
  dup_joined: ['已加入该走访记录（已存本机）', 'Joined that visit (saved on this phone)'],
};

/**
 * A server or network error code in the cadre's language: the server's own message is
 * English and is never shown. Unknown codes get a general text with the code in brackets
 * (for support).
 */
const E = {
  bad_credentials: ['用户名或密码不对', 'Wrong user name or password'],
  device_revoked: ['本机已被管理员停用，请重新登录；未同步的记录会保留并重新发送', 'This phone was disabled by an administrator: sign in again; unsent entries stay and are sent again'],
  device_revoked_short: ['本机已被停用，请重新登录', 'This phone was disabled: sign in again'],
  device_taken: ['这部手机登记在另一位用户名下，请先发送或导出那位用户的记录', 'This phone is registered to another user: send or export their entries first'],
  device_mismatch: ['本机登记信息不符，请重新登录', 'This phone’s registration does not match: sign in again'],
  user_disabled: ['该账号已停用，请联系管理员', 'This account is disabled: contact an administrator'],
  token_expired: ['登录已过期，请重新登录', 'Signed out: sign in again'],
  auth_required: ['请重新登录', 'Please sign in again'],
  malformed: ['填写的内容格式不对', 'Malformed input'],
  forbidden: ['没有权限', 'Not allowed'],
  not_found: ['服务器上找不到', 'Not found on the server'],
  network: ['连不上服务器，请检查网络', 'Cannot reach the server: check the network'],
  timeout: ['网络太慢，请求超时', 'The network is too slow: timed out'],
  unavailable: ['服务器暂时不可用，稍后自动重试', 'The server is unavailable: retrying later'],
  stalled: ['服务器没有接收任何记录，稍后重试', 'The server accepted nothing: retrying later'],
  batch_too_large: ['一次发送的记录太多，正在分批重试', 'Too many entries at once: retrying in smaller batches'],
  too_large: ['内容太大', 'Too large'],
  protocol_outdated: ['应用需要更新，请刷新', 'The app must update: reload'],
  protocol_unknown: ['应用版本比服务器新，请联系管理员', 'The app is newer than the server: contact an administrator'],
  csrf: ['页面已过期，请刷新', 'The page expired: reload'],
  invalid: ['内容不符合要求', 'Not accepted'],
  server_error: ['服务器出错，稍后自动重试', 'Server error: retrying later'],
  method_not_allowed: ['服务器不接受这种请求，请更新应用', 'The server does not accept this request: update the app'],
  unsupported_media_type: ['服务器不接受这种内容，请更新应用', 'The server does not accept this content: update the app'],
  error: ['请求出错，稍后自动重试', 'The request failed: retrying later'],
  too_many_attempts: ['登录失败次数过多，请稍等几分钟再试', 'Too many failed sign-ins: wait a few minutes and try again'],
  busy: ['服务器繁忙，请稍后再试', 'The server is busy: try again shortly'],
  incomplete_body: ['上传中断，稍后从断点继续', 'Upload cut off: it resumes later'],
  storage_unavailable: ['照片存储暂时不可用，稍后重试', 'Photo storage unavailable: retrying later'],
  tus_version_unsupported: ['照片上传方式不受支持，请更新应用', 'Upload protocol not supported: update the app'],
};

export function errorText(code) {
  const i = lang === 'zh' ? 0 : 1;
  if (E[code]) return E[code][i];
  const status = /^http_(\d+)$/.exec(code || '')?.[1];
  if (status && Number(status) >= 500) return lang === 'zh' ? `服务器出错（${status}），稍后自动重试` : `Server error (${status}), retrying later`;
  return lang === 'zh' ? `出错了（${code || '未知'}）` : `Error (${code || 'unknown'})`;
}

let lang = 'zh';
try { lang = localStorage.getItem('fv-lang') || (navigator.language?.startsWith('zh') ? 'zh' : 'zh'); } catch { /* private mode */ }

export const getLang = () => lang;
export function setLang(l) {
  lang = l;
  try { localStorage.setItem('fv-lang', l); } catch { /* private mode */ }
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
}

export function t(key, vars) {
  const pair = T[key];
  let s = pair ? pair[lang === 'zh' ? 0 : 1] : key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v);
  return s;
}

let ref = null;
export const setReference = (r) => { ref = r; };

/** [[code, label]] of a vocabulary, from reference data or the built-in copy. */
export function vocab(kind) {
  const fromRef = ref?.[kind];
  if (Array.isArray(fromRef) && fromRef.length && kind !== 'methods') {
    return fromRef.map((x) => [x.code, lang === 'zh' ? x.name : x.name_en || x.name]);
  }
  return V[kind].map(([c, zh, en]) => [c, lang === 'zh' ? zh : en]);
}

export function label(kind, code) {
  const hit = vocab(kind).find(([c]) => c === code);
  return hit ? hit[1] : code || '';
}
