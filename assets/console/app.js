// appauth console: sign-in, navigation and the Applications page. Plain DOM, no framework, no
// inline script (strict CSP). Every value from the server is rendered with
// textContent / new Option(), never as HTML. The access token lives in this
// closure only (never in storage); the column choice is kept in localStorage.
'use strict';
(() => {
  const COLUMNS = [
    { field: 'name', label: 'Application' },
    { field: 'clientId', label: 'Client ID' },
    { field: 'accessRules', label: 'Access rule(s)' },
    { field: 'lastLogin', label: 'Last login', time: true },
    { field: 'createdByName', label: 'Created by' },
    { field: 'createdAt', label: 'Creation time', time: true },
    { field: 'updatedAt', label: 'Last updated', time: true },
  ];
  // Operators per column type: the API accepts these and nothing else makes
  // sense (a time does not "contain", a name is not "on or after").
  const TEXT_OPS = [['=@', 'contains'], ['!@', 'does not contain'], ['==', 'is'], ['!=', 'is not'], ['=^', 'starts with'], ['=$', 'ends with']];
  const TIME_OPS = [['>=', 'on or after'], ['<=', 'on or before']];
  const NUMBER_OPS = [['==', 'is'], ['!=', 'is not'], ['>=', '≥'], ['<=', '≤']];
  const NAME_RE = /^[a-z][-_a-z0-9]*[a-z0-9]$/;
  const COLUMNS_KEY = 'appauth.console.columns';
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null, expiresAt: 0, clientId: '', self: null, session: 0,
    filters: [], search: '', sortBy: 'name', sortOrder: 'asc', offset: 0, limit: 50,
    total: 0, rows: [], selected: null, roles: null, scopes: null,
    visible: loadVisible(),
  };

  function loadVisible() {
    try {
      const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY));
      // `createdBy` was the column's field before it showed names.
      const fields = Array.isArray(saved) ? saved.map((f) => (f === 'createdBy' ? 'createdByName' : f)) : [];
      const known = COLUMNS.map((c) => c.field).filter((f) => fields.includes(f));
      if (known.length) return known;
    } catch (_) { /* corrupt or unavailable storage: show everything */ }
    return COLUMNS.map((c) => c.field);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  function formatTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return isNaN(d) ? iso : TIME_FORMAT.format(d);
  }

  // A time cell: readable local text, the exact instant (as in the CSV) in
  // <time datetime> and on hover.
  function timeCell(iso) {
    if (!iso) return el('td', { class: 'time', text: '—' });
    return el('td', { class: 'time', title: iso }, el('time', { datetime: iso, text: formatTime(iso) }));
  }

  // Errors stay until dismissed or until the next successful load; successes
  // are a toast that fades by itself and never moves the page.
  function showError(bannerId, text) {
    $(bannerId + '-text').textContent = text || '';
    $(bannerId).hidden = !text;
  }
  const showBanner = (text) => showError('banner', text);
  let toastTimer = null;
  function toast(text) {
    const t = $('toast');
    clearTimeout(toastTimer);
    t.textContent = text;
    t.classList.remove('fading');
    t.hidden = false;
    toastTimer = setTimeout(() => {
      t.classList.add('fading');
      toastTimer = setTimeout(() => { t.hidden = true; t.classList.remove('fading'); }, 400);
    }, 4000);
  }
  for (const b of document.querySelectorAll('[data-dismiss]')) b.addEventListener('click', () => showError(b.dataset.dismiss, ''));

  // ---- filters shared by both pages ----------------------------------------
  function opsFor(column) {
    if (column.time) return TIME_OPS;
    if (column.number) return NUMBER_OPS;
    return TEXT_OPS;
  }

  function filterChipText(columns, f) {
    const column = columns.find((c) => c.field === f.field) || { label: f.field };
    const op = (opsFor(column).find(([v]) => v === f.op) || [f.op, f.op])[1];
    return column.time ? `${column.label} ${op} ${formatTime(f.value)}` : `${column.label} ${op} “${f.value}”`;
  }

  // The filter form of a page: operators and the value box follow the chosen
  // column (a date-time picker for times, sent as an RFC 3339 instant).
  function filterForm(prefix, columns) {
    const field = $(prefix + 'filter-field');
    const op = $(prefix + 'filter-op');
    const value = $(prefix + 'filter-value');
    const error = $(prefix + 'filter-error');
    const column = () => columns.find((c) => c.field === field.value) || columns[0];
    function sync() {
      const c = column();
      op.replaceChildren(...opsFor(c).map(([v, label]) => new Option(label, v)));
      value.type = c.time ? 'datetime-local' : c.number ? 'number' : 'text';
      value.value = '';
      error.hidden = true;
    }
    field.replaceChildren(...columns.map((c) => new Option(c.label, c.field)));
    field.addEventListener('change', sync);
    sync();
    return {
      // The filter to apply, or null (with the reason shown) when the value is missing.
      read() {
        const c = column();
        let v = value.value.trim();
        error.hidden = true;
        if (!v) {
          error.textContent = c.time ? 'Pick a date and time.' : 'Enter a value to filter by.';
          error.hidden = false;
          value.focus();
          return null;
        }
        if (c.time) {
          const d = new Date(v);
          if (isNaN(d)) { error.textContent = 'Pick a valid date and time.'; error.hidden = false; return null; }
          v = d.toISOString();
        }
        return { field: c.field, op: op.value, value: v };
      },
      refused(message) { error.textContent = `This filter cannot be applied: ${message}`; error.hidden = false; },
      reset() { sync(); },
    };
  }

  function renderChips(box, columns, filters, onRemove) {
    box.replaceChildren();
    filters.forEach((f, i) => {
      const text = filterChipText(columns, f);
      box.append(el('span', { class: 'chip' }, text,
        el('button', { type: 'button', 'aria-label': `Remove filter: ${text}`, text: '×', onclick: () => onRemove(i) })));
    });
  }

  // ---- session -----------------------------------------------------------
  class Expired extends Error {}

  function expire(message) {
    state.token = null;
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    // Nothing of this session stays for the next one to see.
    Object.assign(state, { filters: [], search: '', offset: 0, total: 0, rows: [], selected: null, self: null });
    state.session += 1;
    updateActions();
    $('apps-body').replaceChildren();
    $('filters').replaceChildren();
    $('search').value = '';
    showBanner('');
    document.dispatchEvent(new CustomEvent('appauth:signout'));
    $('apps').hidden = true;
    $('audit').hidden = true;
    $('nav').hidden = true;
    $('whoami').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('signin-secret').value = '';
    const err = $('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('signin-id').value = state.clientId;
    (state.clientId ? $('signin-secret') : $('signin-id')).focus();
  }

  async function api(method, path, body, accept) {
    if (!state.token || Date.now() / 1000 >= state.expiresAt) {
      expire('Your session has expired. Sign in again.');
      throw new Expired('session expired');
    }
    const headers = { Authorization: 'Bearer ' + state.token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (accept) headers.Accept = accept;
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (resp.status === 401) {
      expire('Your session has expired. Sign in again.');
      throw new Expired('session expired');
    }
    if (!resp.ok) {
      let message = `${resp.status} ${resp.statusText}`;
      try {
        const j = await resp.json();
        if (j && j.message) message = j.message;
      } catch (_) { /* not JSON */ }
      const err = new Error(message);
      err.status = resp.status;
      throw err;
    }
    return resp;
  }

  async function signIn(event) {
    event.preventDefault();
    const id = $('signin-id').value.trim();
    const secret = $('signin-secret').value.trim();
    const err = $('signin-error');
    err.hidden = true;
    if (!id || !secret) {
      err.textContent = 'Enter the client ID and the client secret.';
      err.hidden = false;
      return;
    }
    $('signin-submit').disabled = true;
    try {
      const resp = await fetch('/oauth/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error_description || `Sign-in failed (${resp.status})`);
      state.token = body.access_token;
      state.expiresAt = Date.now() / 1000 + body.expires_in;
      state.clientId = id;
      $('signin-secret').value = '';
      $('signin').hidden = true;
      $('nav').hidden = false;
      showPage('apps');
      $('whoami').textContent = id;
      $('whoami').title = id;
      $('whoami').hidden = false;
      whoAmI(id);
      $('signout').hidden = false;
      renderHead();
      renderColumnsMenu();
      await loadApps();
      $('new-app').focus();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  // The signed-in application's name for the top bar (the client ID stays
  // on hover); a client that may not list applications keeps its ID.
  async function whoAmI(id) {
    try {
      const p = new URLSearchParams({ filterBy: 'clientId==' + id, limit: '1' });
      const found = (await (await api('GET', '/api/v1/apps?' + p)).json()).applications[0];
      if (found && state.clientId === id) {
        state.self = found;
        $('whoami').textContent = found.name;
        $('whoami').title = `${found.name} (client ID ${id})`;
      }
    } catch (_) { /* no Viewer role: the ID it is */ }
  }

  // ---- table -------------------------------------------------------------
  // The admin API's list parameters from a page's filters, search and sort.
  function listQuery(view, extra) {
    const p = new URLSearchParams();
    for (const f of view.filters) p.append('filterBy', f.field + f.op + f.value);
    if (view.search) p.set('search', view.search);
    p.set('sortBy', view.sortBy);
    p.set('sortOrder', view.sortOrder);
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return p;
  }

  function query(extra) {
    return listQuery(state, extra);
  }

  async function loadApps() {
    try {
      const session = state.session;
      const resp = await api('GET', '/api/v1/apps?' + query({ offset: state.offset, limit: state.limit }));
      const body = await resp.json();
      // An answer for a session that has ended is not shown to the next one.
      if (session !== state.session) return false;
      state.total = body.totalRecords;
      state.rows = body.applications;
      if (state.selected && !state.rows.some((r) => r.id === state.selected.id)) state.selected = null;
      else if (state.selected) state.selected = state.rows.find((r) => r.id === state.selected.id);
      renderBody();
      showBanner('');
      return true;
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message);
      return false;
    }
  }

  function renderHead() {
    const head = $('apps-head');
    head.replaceChildren();
    for (const c of COLUMNS.filter((c) => state.visible.includes(c.field))) {
      const sorted = state.sortBy === c.field;
      const th = el('th', { scope: 'col', 'aria-sort': sorted ? (state.sortOrder === 'asc' ? 'ascending' : 'descending') : 'none', 'data-field': c.field });
      th.append(el('button', { type: 'button', text: c.label, onclick: () => sortBy(c.field) }));
      head.append(th);
    }
  }

  function sortBy(field) {
    if (state.sortBy === field) state.sortOrder = state.sortOrder === 'asc' ? 'desc' : 'asc';
    else { state.sortBy = field; state.sortOrder = 'asc'; }
    state.offset = 0;
    renderHead();
    loadApps();
  }

  // As the CSV's "Access rule(s)" column writes it.
  function rulesText(app) {
    return app.accessRules.map((r) => `${r.roleName} (${r.scopeName})`).join('; ');
  }

  function cell(app, field) {
    switch (field) {
      case 'name': {
        const td = el('td', { text: app.name });
        if (!app.enabled) td.append(el('span', { class: 'status', text: 'Disabled' }));
        return td;
      }
      case 'accessRules': return el('td', { class: 'rules-cell', text: rulesText(app) });
      case 'lastLogin': case 'createdAt': case 'updatedAt': return timeCell(app[field]);
      case 'clientId': return el('td', { class: 'clip', text: app.clientId, title: app.clientId });
      case 'createdByName': return el('td', { text: app.createdByName, title: `client ID ${app.createdBy}` });
      default: return el('td', { text: app[field] });
    }
  }

  function renderBody() {
    const body = $('apps-body');
    body.replaceChildren();
    for (const app of state.rows) {
      const selected = state.selected && state.selected.id === app.id;
      const tr = el('tr', { tabindex: '0', 'aria-selected': selected ? 'true' : 'false', 'data-id': app.id });
      for (const c of COLUMNS.filter((c) => state.visible.includes(c.field))) tr.append(cell(app, c.field));
      tr.addEventListener('click', () => select(app));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(app); }
      });
      body.append(tr);
    }
    $('empty').hidden = state.rows.length > 0;
    $('apps-table').hidden = state.rows.length === 0 && state.total === 0;
    const from = state.total === 0 ? 0 : state.offset + 1;
    const to = Math.min(state.offset + state.limit, state.total);
    const info = `${from.toLocaleString()}–${to.toLocaleString()} of ${state.total.toLocaleString()}`;
    for (const suffix of ['', '-top']) {
      $('page-info' + suffix).textContent = info;
      $('prev-page' + suffix).disabled = state.offset === 0;
      $('next-page' + suffix).disabled = to >= state.total;
    }
    updateActions();
  }

  function select(app, keep) {
    state.selected = !keep && state.selected && state.selected.id === app.id ? null : app;
    for (const tr of $('apps-body').children) tr.setAttribute('aria-selected', state.selected && tr.dataset.id === state.selected.id ? 'true' : 'false');
    updateActions();
  }

  function updateActions() {
    const s = state.selected;
    for (const id of ['act-rules', 'act-regenerate', 'act-keys', 'act-toggle', 'act-delete']) $(id).disabled = !s;
    $('act-toggle').textContent = s && !s.enabled ? 'ENABLE' : 'DISABLE';
    $('select-hint').hidden = !!s;
  }

  // ---- filters, search, columns, paging ----------------------------------
  const appsFilter = filterForm('', COLUMNS);

  function renderFilters() {
    renderChips($('filters'), COLUMNS, state.filters, (i) => {
      state.filters.splice(i, 1); state.offset = 0; renderFilters(); loadApps();
    });
  }

  // A filter is kept (and shown as a chip) only once the server has applied
  // it: a refused one would otherwise look active over the old rows.
  async function addFilter(event) {
    event.preventDefault();
    const filter = appsFilter.read();
    if (!filter) return;
    const before = state.offset;
    state.filters.push(filter);
    state.offset = 0;
    try {
      const resp = await api('GET', '/api/v1/apps?' + query({ offset: 0, limit: state.limit }));
      const body = await resp.json();
      state.total = body.totalRecords;
      state.rows = body.applications;
      if (state.selected && !state.rows.some((r) => r.id === state.selected.id)) state.selected = null;
      renderBody();
      appsFilter.reset();
      closeFilterForm();
    } catch (e) {
      state.filters.pop();
      state.offset = before;
      if (!(e instanceof Expired)) appsFilter.refused(e.message);
    }
    renderFilters();
  }

  function closeFilterForm() {
    $('filter-form').hidden = true;
    $('add-filter').setAttribute('aria-expanded', 'false');
  }

  function renderColumnsMenu() {
    const menu = $('columns-menu');
    menu.replaceChildren();
    for (const c of COLUMNS) {
      const box = el('input', { type: 'checkbox', 'data-field': c.field });
      box.checked = state.visible.includes(c.field);
      box.addEventListener('change', () => {
        const next = COLUMNS.map((x) => x.field).filter((f) => (f === c.field ? box.checked : state.visible.includes(f)));
        if (next.length === 0) { box.checked = true; return; }
        state.visible = next;
        try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(next)); } catch (_) { /* private mode */ }
        renderHead();
        renderBody();
      });
      menu.append(el('label', {}, box, c.label));
    }
  }

  function closeMenus() {
    for (const m of document.querySelectorAll('.menu')) m.hidden = true;
    for (const b of document.querySelectorAll('[aria-haspopup]')) b.setAttribute('aria-expanded', 'false');
  }

  function toggleMenu(button, menu) {
    const open = menu.hidden;
    closeMenus();
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) menu.querySelector('input, button')?.focus();
  }

  async function downloadCsv() {
    $('more-menu').hidden = true;
    const columns = COLUMNS.filter((c) => state.visible.includes(c.field)).map((c) => c.field).join(',');
    closeMenus();
    try {
      const resp = await api('GET', '/api/v1/apps?' + query({ format: 'csv', columns }), undefined, 'text/csv');
      const total = Number(resp.headers.get('X-Total-Records'));
      const exported = Number(resp.headers.get('X-Exported-Records'));
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: 'applications.csv' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      if (resp.headers.get('X-Truncated') === 'true') {
        showBanner(`The CSV holds the first ${exported.toLocaleString()} of ${total.toLocaleString()} matching applications: exports are limited to 20,000 rows. Narrow the filters to export the rest.`);
      } else {
        toast(`Downloaded ${exported.toLocaleString()} application${exported === 1 ? '' : 's'} as CSV.`);
      }
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message);
    }
  }

  // ---- dialogs -------------------------------------------------------------
  // Each dialog returns focus to what opened it (dialogs can stack: a rule's
  // delete confirmation over the rules dialog), and Tab cycles inside it.
  const returnFocus = new Map();
  function open(dialog) {
    returnFocus.set(dialog, document.activeElement);
    dialog.showModal();
  }
  const FOCUSABLE = 'button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex="0"]';
  for (const d of document.querySelectorAll('dialog')) {
    d.addEventListener('close', () => {
      const back = returnFocus.get(d);
      returnFocus.delete(d);
      if (back && document.contains(back)) back.focus();
    });
    d.addEventListener('keydown', (e) => {
      if (e.key !== 'Tab') return;
      const items = [...d.querySelectorAll(FOCUSABLE)].filter((x) => x.offsetParent !== null);
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      if (e.shiftKey && (document.activeElement === first || !d.contains(document.activeElement))) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && (document.activeElement === last || !d.contains(document.activeElement))) { e.preventDefault(); first.focus(); }
    });
  }
  for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());

  // The fields wrap and grow to their content: the whole secret is visible
  // (it cannot be checked by eye otherwise) at any width.
  function fitField(field) {
    field.style.height = 'auto';
    field.style.height = `${field.scrollHeight + 2}px`;
  }

  let afterSecret = null;
  function showSecret(title, secretLabel, app, secret, then) {
    resetCopyButtons();
    $('secret-title').textContent = title;
    $('secret-value-label').textContent = secretLabel;
    $('secret-client-id').value = app.clientId;
    $('secret-value').value = secret;
    afterSecret = then || null;
    open($('secret-dialog'));
    fitField($('secret-client-id'));
    fitField($('secret-value'));
    $('secret-done').focus();
  }
  $('secret-done').addEventListener('click', () => $('secret-dialog').close());
  // However the dialog closes (DONE, Escape, session expiry), the secret
  // leaves the page and the table catches up.
  $('secret-dialog').addEventListener('close', () => {
    $('secret-value').value = '';
    $('secret-client-id').value = '';
    resetCopyButtons();
    const then = afterSecret;
    afterSecret = null;
    if (!state.token) return;
    if (then) then(); else loadApps();
  });
  window.addEventListener('resize', () => {
    if ($('secret-dialog').open) { fitField($('secret-client-id')); fitField($('secret-value')); }
  });
  // A copy button says COPIED only for the value it copied: a new dialog
  // starts with every button reset and its timer cleared.
  const copyTimers = new Map();
  function resetCopyButtons() {
    for (const b of document.querySelectorAll('[data-copy]')) {
      clearTimeout(copyTimers.get(b));
      copyTimers.delete(b);
      b.textContent = 'COPY';
    }
  }
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      const input = $(b.dataset.copy);
      try {
        await navigator.clipboard.writeText(input.value);
        b.textContent = 'COPIED';
      } catch (_) {
        input.select();
        b.textContent = 'SELECTED: PRESS CTRL+C';
      }
      clearTimeout(copyTimers.get(b));
      copyTimers.set(b, setTimeout(() => { b.textContent = 'COPY'; copyTimers.delete(b); }, 2500));
    });
  }

  function validateName() {
    const name = $('new-name').value;
    let problem = '';
    if (name && name.length > 63) problem = `Too long: at most 63 characters (this is ${name.length}).`;
    else if (name && name.length < 2) problem = 'Too short: at least 2 characters.';
    else if (name && !/^[a-z]/.test(name)) problem = 'Start with a lowercase letter.';
    else if (name && !/[a-z0-9]$/.test(name)) problem = 'End with a letter or digit.';
    else if (name && !NAME_RE.test(name)) problem = 'Use only lowercase letters, digits, - and _.';
    const err = $('new-error');
    err.textContent = problem;
    err.hidden = !problem;
    $('new-name').setAttribute('aria-invalid', problem ? 'true' : 'false');
    $('new-create').disabled = !name || !!problem;
  }

  async function createApp(event) {
    event.preventDefault();
    validateName();
    if ($('new-create').disabled) return;
    try {
      const resp = await api('POST', '/api/v1/apps', { name: $('new-name').value });
      const created = await resp.json();
      $('new-dialog').close();
      const { id, name } = created;
      showSecret('Application created', 'Client secret', created, created.secret, () => reveal({ id, name }));
    } catch (e) {
      if (e instanceof Expired) return;
      $('new-error').textContent = e.message;
      $('new-error').hidden = false;
    }
  }

  // Irreversible or access-removing actions get the red button.
  function confirmAction(title, text, okLabel, action, danger) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-error').hidden = true;
    $('confirm-extra').hidden = true;
    const ok = $('confirm-ok');
    const fresh = ok.cloneNode(true);
    fresh.textContent = okLabel;
    fresh.className = danger ? 'danger-fill' : 'primary';
    ok.replaceWith(fresh);
    fresh.addEventListener('click', async () => {
      fresh.disabled = true;
      try {
        await action();
      } catch (e) {
        if (!(e instanceof Expired)) {
          $('confirm-error').textContent = e.status === 409 ? `${e.message} Nothing was changed.` : e.message;
          $('confirm-error').hidden = false;
        }
      } finally {
        fresh.disabled = false;
      }
    });
    open($('confirm-dialog'));
  }

  // Regenerating offers an overlap (graceSeconds): the old secret keeps
  // working while the deployment rolls out the new one.
  function regenerateText(app, grace) {
    if (grace === 0) {
      return `The current secret of ${app.name} stops working at once, and every token issued with it is revoked. Whatever uses it must be given the new secret.`;
    }
    const span = $('regen-grace').selectedOptions[0].textContent.replace('keeps working for ', '');
    return `The current secret of ${app.name} keeps working for ${span}; then it stops and the tokens issued before now are revoked. Roll out the new secret meanwhile.`;
  }

  function regenerate() {
    const app = state.selected;
    const grace = () => Number($('regen-grace').value);
    const ok = () => $('confirm-ok');
    confirmAction('Regenerate client secret', regenerateText(app, 0),
      'REGENERATE', async () => {
        const body = grace() ? { graceSeconds: grace() } : undefined;
        const resp = await api('POST', `/api/v1/apps/${encodeURIComponent(app.id)}/secret`, body);
        const created = await resp.json();
        $('confirm-dialog').close();
        showSecret('New client secret', 'New client secret', created, created.secret);
      }, true);
    $('regen-grace').value = '0';
    $('confirm-extra').hidden = false;
    $('regen-grace').onchange = () => {
      $('confirm-text').textContent = regenerateText(app, grace());
      // Immediate revocation is the dangerous one: red; an overlap is not.
      ok().className = grace() ? 'primary' : 'danger-fill';
    };
  }

  // ---- credentials: secrets (described, never shown) and public keys ------
  function renderCredentials(app) {
    $('keys-app').textContent = app.name;
    $('secrets-body').replaceChildren(...(app.secrets || []).map((s) => el('tr', {},
      el('td', { class: 'mono', text: s.id }), timeCell(s.createdAt),
      s.expiresAt ? timeCell(s.expiresAt) : el('td', { text: 'while current' }))));
    const keys = (app.jwks && app.jwks.keys) || [];
    $('keys-body').replaceChildren(...keys.map((k) => el('tr', {},
      el('td', { class: 'mono', text: k.kid || '—' }), el('td', { text: k.crv ? `${k.kty} ${k.crv}` : k.kty }),
      el('td', { text: k.alg || '—' }))));
    $('keys-empty').hidden = keys.length > 0;
    $('keys-remove').disabled = keys.length === 0;
    const fed = app.federatedCredentials || [];
    $('fed-body').replaceChildren(...fed.map((c) => {
      const conditions = Object.entries(c.conditions || {}).map(([k, v]) => `${k}=${v}`).join(', ');
      const removeButton = el('button', { class: 'text danger', type: 'button', text: 'REMOVE' });
      removeButton.addEventListener('click', () => removeFederated(c));
      return el('tr', {},
        el('td', { class: 'mono', text: c.issuer }),
        el('td', { class: 'mono', text: c.subject || c.subjectPattern }),
        el('td', { class: 'mono', text: conditions || '—' }),
        el('td', {}, removeButton));
    }));
    $('fed-empty').hidden = fed.length > 0;
  }

  function fedPath(app) {
    return `/api/v1/apps/${encodeURIComponent(app.id)}/federated-credentials`;
  }

  async function loadIssuers(app) {
    const list = await (await api('GET', fedPath(app))).json();
    const issuers = list.trustedIssuers || [];
    $('fed-issuer').replaceChildren(...issuers.map((i) => el('option', { value: i, text: i })));
    $('fed-add').disabled = issuers.length === 0;
    if (issuers.length === 0) $('fed-hint').textContent = 'This server trusts no external issuer: an operator lists them in federation.issuers.';
  }

  function fedFailed(e) {
    if (e instanceof Expired) return;
    $('fed-error').textContent = e.message;
    $('fed-error').hidden = false;
  }

  async function refreshCredentials(app) {
    renderCredentials(await (await api('GET', `/api/v1/apps/${encodeURIComponent(app.id)}`)).json());
  }

  async function addFederated() {
    const app = state.selected;
    $('fed-error').hidden = true;
    const subject = $('fed-subject').value.trim();
    const conditions = {};
    for (const line of $('fed-conditions').value.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf('=');
      if (at < 1) {
        fedFailed(new Error(`"${line}" is not CLAIM=VALUE.`));
        return;
      }
      conditions[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const body = { issuer: $('fed-issuer').value, conditions };
    body[subject.includes('*') ? 'subjectPattern' : 'subject'] = subject;
    try {
      await api('POST', fedPath(app), body);
      $('fed-subject').value = '';
      $('fed-conditions').value = '';
      await refreshCredentials(app);
      toast(`${app.name} now accepts tokens from ${body.issuer} for ${subject}.`);
    } catch (e) {
      fedFailed(e);
    }
  }

  async function removeFederated(c) {
    const app = state.selected;
    $('fed-error').hidden = true;
    try {
      await api('DELETE', `${fedPath(app)}/${encodeURIComponent(c.id)}`);
      await refreshCredentials(app);
      toast(`Removed the federated credential for ${c.subject || c.subjectPattern}.`);
    } catch (e) {
      fedFailed(e);
    }
  }

  async function openKeys() {
    const app = state.selected;
    $('keys-error').hidden = true;
    $('fed-error').hidden = true;
    $('keys-input').value = '';
    try {
      const fresh = await (await api('GET', `/api/v1/apps/${encodeURIComponent(app.id)}`)).json();
      renderCredentials(fresh);
      await loadIssuers(app);
      open($('keys-dialog'));
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message);
    }
  }

  async function setKeys(jwks) {
    const app = state.selected;
    $('keys-error').hidden = true;
    try {
      const resp = await api('PATCH', `/api/v1/apps/${encodeURIComponent(app.id)}`, { jwks });
      const updated = await resp.json();
      renderCredentials(updated);
      $('keys-input').value = '';
      const n = jwks ? jwks.keys.length : 0;
      toast(jwks ? `Saved ${n} key${n === 1 ? '' : 's'} for ${app.name}.` : `Removed the keys of ${app.name}.`);
    } catch (e) {
      if (e instanceof Expired) return;
      $('keys-error').textContent = e.message;
      $('keys-error').hidden = false;
    }
  }

  function saveKeys() {
    let jwks;
    try {
      jwks = JSON.parse($('keys-input').value);
    } catch (e) {
      $('keys-error').textContent = `Not JSON: ${e.message}. Paste a JWK Set: {"keys": [...]}.`;
      $('keys-error').hidden = false;
      return;
    }
    if (!jwks || !Array.isArray(jwks.keys)) {
      $('keys-error').textContent = 'A JWK Set is an object with a "keys" array: {"keys": [...]}.';
      $('keys-error').hidden = false;
      return;
    }
    setKeys(jwks);
  }

  function remove() {
    const app = state.selected;
    confirmAction('Delete application',
      `Delete ${app.name}? Its access rules are removed and its tokens stop working. This cannot be undone.`,
      'DELETE', async () => {
        await api('DELETE', `/api/v1/apps/${encodeURIComponent(app.id)}`);
        $('confirm-dialog').close();
        state.selected = null;
        toast(`Deleted ${app.name}.`);
        await loadApps();
      }, true);
  }

  async function setEnabled(app, enabled) {
    await api('PATCH', `/api/v1/apps/${encodeURIComponent(app.id)}`, { enabled });
    await loadApps();
  }

  function toggle() {
    const app = state.selected;
    if (!app.enabled) {
      setEnabled(app, true).then(() => toast(`Enabled ${app.name}.`), (e) => { if (!(e instanceof Expired)) showBanner(e.message); });
      return;
    }
    confirmAction('Disable application',
      `Disable ${app.name}? It cannot get tokens while disabled, and the tokens it holds are revoked now.`,
      'DISABLE', async () => {
        await setEnabled(app, false);
        $('confirm-dialog').close();
        toast(`Disabled ${app.name}.`);
      }, true);
  }

  // ---- access rules -----------------------------------------------------------
  async function loadCatalogues() {
    if (!state.roles) state.roles = (await (await api('GET', '/api/v1/authorization/roles')).json()).roles;
    state.scopes = (await (await api('GET', '/api/v1/scopes')).json()).scopes;
    const roleSel = $('rule-role');
    roleSel.replaceChildren(...state.roles.map((r) => new Option(r.name, r.id)));
    // The scope tree in depth-first order, indented by depth.
    const children = new Map();
    for (const s of state.scopes) {
      const k = s.parentId || '';
      if (!children.has(k)) children.set(k, []);
      children.get(k).push(s);
    }
    const ordered = [];
    const walk = (parent, depth) => {
      for (const s of (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name))) {
        ordered.push([s, depth]);
        if (depth < 8) walk(s.id, depth + 1);
      }
    };
    walk('', 0);
    const scopeSel = $('rule-scope');
    scopeSel.replaceChildren(...ordered.map(([s, depth]) => {
      const o = new Option(`${'\u2003'.repeat(depth)}${s.name} (${s.type})`, s.id);
      o.dataset.type = s.type;
      return o;
    }));
  }

    // Drawn as SVG elements (no font or image request needed).
  function trashIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'trash');
    svg.setAttribute('aria-hidden', 'true');
    for (const d of ['M3 6h18', 'M8 6V4h8v2', 'M19 6l-1 14H6L5 6', 'M10 11v6', 'M14 11v6']) {
      const p = document.createElementNS(ns, 'path');
      p.setAttribute('d', d);
      svg.append(p);
    }
    return svg;
  }

  async function loadRules(app) {
    const resp = await api('GET', '/api/v1/authorization/access-rules?' + new URLSearchParams({ filterBy: 'subjectId==' + app.id, sortBy: 'createdAt', limit: '500' }));
    const rules = (await resp.json()).accessRules;
    const body = $('rules-body');
    body.replaceChildren();
    for (const r of rules) {
    const del = el('button', { type: 'button', class: 'icon', 'aria-label': `Delete rule ${r.roleName} on ${r.scopeName}`, title: 'Delete rule' }, trashIcon());
      del.addEventListener('click', () => {
        const own = state.self && state.self.id === app.id;
        confirmAction('Delete access rule',
          `Remove ${r.roleName} on ${r.scopeName} from ${app.name}? Its tokens lose this rule at once.` +
            (own ? ' This is the application you are signed in as: you lose this authority too, and may lose access to this console.' : ''),
          'DELETE RULE', async () => {
            await api('DELETE', `/api/v1/authorization/access-rules/${encodeURIComponent(r.id)}`);
            $('confirm-dialog').close();
            toast(`Removed ${r.roleName} on ${r.scopeName} from ${app.name}.`);
            await loadRules(app);
          }, true);
      });
      body.append(el('tr', { 'data-rule': r.id },
        el('td', { text: r.roleName }), el('td', { text: `${r.scopeName} (${r.scopeType})` }),
        el('td', { text: r.createdByName, title: `client ID ${r.createdBy}` }), el('td', {}, del)));
    }
    $('rules-empty').hidden = rules.length > 0;
  }

  async function openRules() {
    const app = state.selected;
    $('rules-app').textContent = app.name;
    $('rules-error').hidden = true;
    $('rule-form').hidden = true;
    try {
      await Promise.all([loadRules(app), loadCatalogues()]);
      open($('rules-dialog'));
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message);
    }
  }

  async function saveRule(event) {
    event.preventDefault();
    const app = state.selected;
    const scope = $('rule-scope').selectedOptions[0];
    $('rules-error').hidden = true;
    try {
      await api('POST', '/api/v1/authorization/access-rules', {
        subjectType: 'app', subjectId: app.id, roleId: $('rule-role').value,
        scopeType: scope.dataset.type, scopeId: scope.value,
      });
      $('rule-form').hidden = true;
      await loadRules(app);
      $('rule-add').focus();
    } catch (e) {
      if (!(e instanceof Expired)) { $('rules-error').textContent = e.message; $('rules-error').hidden = false; }
    }
  }

  // ---- paging and the new application -------------------------------------
  // After a page turn the reader is at the top of the new page, not left
  // at the bottom of the old one.
  function scrollToTop(section) {
    const top = $(section).getBoundingClientRect().top + window.scrollY - 8;
    if (window.scrollY > top) window.scrollTo({ top, behavior: 'instant' });
  }

  async function turnPage(step) {
    state.offset = Math.max(0, state.offset + step * state.limit);
    await loadApps();
    scrollToTop('apps');
  }

  async function count(extraFilters) {
    const p = query({ limit: 1 });
    for (const f of extraFilters) p.append('filterBy', f);
    return (await (await api('GET', '/api/v1/apps?' + p)).json()).totalRecords;
  }

  // Where a just-created application sits in the current view: its page is
  // loaded and the row selected, highlighted and scrolled to. Hidden by the
  // filters or search, it is said so instead.
  async function reveal(app) {
    try {
      if ((await count(['id==' + app.id])) === 0) {
        toast(`Created ${app.name}. The current filters or search hide it.`);
        await loadApps();
        return;
      }
      let position = null;
      if (state.sortBy === 'name') {
        position = (await count([`name${state.sortOrder === 'asc' ? '<=' : '>='}${app.name}`])) - 1;
      } else if (state.sortBy === 'createdAt' || state.sortBy === 'updatedAt') {
        position = state.sortOrder === 'asc' ? (await count([])) - 1 : 0;
      }
      if (position !== null) state.offset = Math.floor(position / state.limit) * state.limit;
      await loadApps();
      const tr = $('apps-body').querySelector(`tr[data-id="${CSS.escape(app.id)}"]`);
      if (!tr) { toast(`Created ${app.name}.`); return; }
      state.selected = state.rows.find((r) => r.id === app.id);
      select(state.selected, true);
      tr.classList.add('fresh');
      tr.scrollIntoView({ block: 'center', behavior: 'instant' });
      tr.focus({ preventScroll: true });
      toast(`Created ${app.name}.`);
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message);
    }
  }

  // ---- pages ---------------------------------------------------------------
  // The audit page lives in audit.js; it hears about page changes through an
  // event and calls the API through the helpers shared below (the token stays
  // in this closure).
  function showPage(name) {
    $('apps').hidden = name !== 'apps';
    $('audit').hidden = name !== 'audit';
    $('nav-apps').setAttribute('aria-current', name === 'apps' ? 'page' : 'false');
    $('nav-audit').setAttribute('aria-current', name === 'audit' ? 'page' : 'false');
    $('crumb').textContent = name === 'apps' ? 'Access / Applications' : 'Access / Audit log';
    document.title = (name === 'apps' ? 'Applications' : 'Audit log') + ' · appauth';
    document.dispatchEvent(new CustomEvent('appauth:page', { detail: name }));
  }
  $('nav-apps').addEventListener('click', () => { showPage('apps'); loadApps(); });
  $('nav-audit').addEventListener('click', () => showPage('audit'));
  window.appauthConsole = Object.freeze({ api, el, formatTime, timeCell, listQuery, Expired, showError, toast, filterForm, renderChips, scrollToTop, closeMenus });

  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => { state.clientId = ''; state.self = null; expire(''); });
  $('new-app').addEventListener('click', () => {
    $('new-name').value = '';
    validateName();
    open($('new-dialog'));
    $('new-name').focus();
  });
  $('new-name').addEventListener('input', validateName);
  $('new-form').addEventListener('submit', createApp);
  $('act-rules').addEventListener('click', openRules);
  $('act-regenerate').addEventListener('click', regenerate);
  $('act-keys').addEventListener('click', openKeys);
  $('keys-save').addEventListener('click', saveKeys);
  $('keys-remove').addEventListener('click', () => setKeys(null));
  $('fed-add').addEventListener('click', addFederated);
  $('act-delete').addEventListener('click', remove);
  $('act-toggle').addEventListener('click', toggle);
  $('rule-add').addEventListener('click', () => { $('rule-form').hidden = false; $('rule-role').focus(); });
  $('rule-form').addEventListener('submit', saveRule);
  $('rules-dialog').addEventListener('close', () => { if (state.token) loadApps(); });
  $('add-filter').addEventListener('click', () => {
    const f = $('filter-form');
    f.hidden = !f.hidden;
    $('add-filter').setAttribute('aria-expanded', String(!f.hidden));
    if (!f.hidden) { appsFilter.reset(); $('filter-field').focus(); }
  });
  $('filter-form').addEventListener('submit', addFilter);
  let searchTimer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.search = $('search').value.trim(); state.offset = 0; loadApps(); }, 250);
  });
  $('columns-button').addEventListener('click', () => toggleMenu($('columns-button'), $('columns-menu')));
  $('more-button').addEventListener('click', () => toggleMenu($('more-button'), $('more-menu')));
  $('download-csv').addEventListener('click', downloadCsv);
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.menu-wrap')) closeMenus();
  });
  // Escape closes an open menu and gives focus back to its button.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    const openMenu = [...document.querySelectorAll('.menu')].find((m) => !m.hidden);
    if (!openMenu) return;
    const button = openMenu.closest('.menu-wrap').querySelector('[aria-haspopup]');
    closeMenus();
    button.focus();
  });
  $('page-size').addEventListener('change', () => { state.limit = Number($('page-size').value); state.offset = 0; loadApps(); });
  for (const suffix of ['', '-top']) {
    $('prev-page' + suffix).addEventListener('click', () => turnPage(-1));
    $('next-page' + suffix).addEventListener('click', () => turnPage(1));
  }
  $('signin-id').focus();
})();
