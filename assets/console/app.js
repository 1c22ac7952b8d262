// appauth console: sign-in, navigation and the Applications page. Plain DOM, no framework, no
// inline script (strict CSP). Every value from the server is rendered with
// textContent / new Option(), never as HTML. The access token lives in this
// closure only (never in storage); the column choice is kept in localStorage.
'use strict';
(() => {
  const COLUMNS = [
    { field: 'name', label: 'Application' },
    { field: 'clientId', label: 'Client ID' },
    { field: 'accessRules', label: 'Access rule(s)', sortable: true },
    { field: 'lastLogin', label: 'Last login' },
    { field: 'createdBy', label: 'Created by' },
    { field: 'createdAt', label: 'Creation time' },
    { field: 'updatedAt', label: 'Last updated' },
  ];
  const NAME_RE = /^[a-z][-_a-z0-9]*[a-z0-9]$/;
  const COLUMNS_KEY = 'appauth.console.columns';
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null, expiresAt: 0, clientId: '',
    filters: [], search: '', sortBy: 'name', sortOrder: 'asc', offset: 0, limit: 50,
    total: 0, rows: [], selected: null, roles: null, scopes: null,
    visible: loadVisible(),
  };

  function loadVisible() {
    try {
      const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY));
      if (Array.isArray(saved) && saved.length) return COLUMNS.map((c) => c.field).filter((f) => saved.includes(f));
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

  function formatTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function showBanner(text, isError) {
    const b = $('banner');
    b.textContent = text;
    b.classList.toggle('error', !!isError);
    b.hidden = !text;
  }

  // ---- session -----------------------------------------------------------
  class Expired extends Error {}

  function expire(message) {
    state.token = null;
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
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
      throw new Error(message);
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
      $('whoami').hidden = false;
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
      const resp = await api('GET', '/api/v1/apps?' + query({ offset: state.offset, limit: state.limit }));
      const body = await resp.json();
      state.total = body.totalRecords;
      state.rows = body.applications;
      if (state.selected && !state.rows.some((r) => r.id === state.selected.id)) state.selected = null;
      else if (state.selected) state.selected = state.rows.find((r) => r.id === state.selected.id);
      renderBody();
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message, true);
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

  function rulesText(app) {
    return app.accessRules.map((r) => `${r.roleName} (${r.scopeName})`).join(', ');
  }

  function cell(app, field) {
    switch (field) {
      case 'name': {
        const td = el('td', { text: app.name });
        if (!app.enabled) td.append(el('span', { class: 'status', text: 'Disabled' }));
        return td;
      }
      case 'accessRules': return el('td', { class: 'rules-cell', text: rulesText(app) || '—' });
      case 'lastLogin': case 'createdAt': case 'updatedAt': return el('td', { text: formatTime(app[field]), title: app[field] || '' });
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
    $('page-info').textContent = `${from.toLocaleString()}–${to.toLocaleString()} of ${state.total.toLocaleString()}`;
    $('prev-page').disabled = state.offset === 0;
    $('next-page').disabled = to >= state.total;
    updateActions();
  }

  function select(app) {
    state.selected = state.selected && state.selected.id === app.id ? null : app;
    for (const tr of $('apps-body').children) tr.setAttribute('aria-selected', state.selected && tr.dataset.id === state.selected.id ? 'true' : 'false');
    updateActions();
  }

  function updateActions() {
    const s = state.selected;
    for (const id of ['act-rules', 'act-regenerate', 'act-toggle', 'act-delete']) $(id).disabled = !s;
    $('act-toggle').textContent = s && !s.enabled ? 'ENABLE' : 'DISABLE';
  }

  // ---- filters, search, columns, paging ----------------------------------
  function renderFilters() {
    const box = $('filters');
    box.replaceChildren();
    state.filters.forEach((f, i) => {
      const label = COLUMNS.find((c) => c.field === f.field)?.label || f.field;
      const opText = $('filter-op').querySelector(`option[value="${CSS.escape(f.op)}"]`)?.textContent || f.op;
      box.append(el('span', { class: 'chip' }, `${label} ${opText} “${f.value}”`,
        el('button', { type: 'button', 'aria-label': `Remove filter ${label} ${opText} ${f.value}`, text: '×', onclick: () => {
          state.filters.splice(i, 1); state.offset = 0; renderFilters(); loadApps();
        } })));
    });
  }

  function addFilter(event) {
    event.preventDefault();
    const value = $('filter-value').value;
    if (!value) { $('filter-value').focus(); return; }
    state.filters.push({ field: $('filter-field').value, op: $('filter-op').value, value });
    $('filter-value').value = '';
    $('filter-form').hidden = true;
    $('add-filter').setAttribute('aria-expanded', 'false');
    state.offset = 0;
    renderFilters();
    loadApps();
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

  function toggleMenu(button, menu) {
    const open = menu.hidden;
    for (const m of document.querySelectorAll('.menu')) m.hidden = true;
    for (const b of document.querySelectorAll('[aria-haspopup]')) b.setAttribute('aria-expanded', 'false');
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) menu.querySelector('input, button')?.focus();
  }

  async function downloadCsv() {
    $('more-menu').hidden = true;
    const columns = COLUMNS.filter((c) => state.visible.includes(c.field)).map((c) => c.field).join(',');
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
        showBanner(`Downloaded ${exported.toLocaleString()} application${exported === 1 ? '' : 's'} as CSV.`);
      }
    } catch (e) {
      if (!(e instanceof Expired)) showBanner(e.message, true);
    }
  }

  // ---- dialogs -------------------------------------------------------------
  let returnFocus = null;
  function open(dialog) {
    returnFocus = document.activeElement;
    dialog.showModal();
  }
  for (const d of document.querySelectorAll('dialog')) {
    d.addEventListener('close', () => { if (returnFocus && document.contains(returnFocus)) returnFocus.focus(); });
  }
  for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());

  function showSecret(title, app, secret) {
    $('secret-title').textContent = title;
    $('secret-client-id').value = app.clientId;
    $('secret-value').value = secret;
    open($('secret-dialog'));
    $('secret-done').focus();
  }
  $('secret-done').addEventListener('click', () => {
    $('secret-value').value = '';
    $('secret-dialog').close();
    loadApps();
  });
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      const input = $(b.dataset.copy);
      try {
        await navigator.clipboard.writeText(input.value);
        b.textContent = 'COPIED';
      } catch (_) {
        input.select();
        b.textContent = 'SELECTED — PRESS CTRL+C';
      }
      setTimeout(() => { b.textContent = 'COPY'; }, 2500);
    });
  }

  function validateName() {
    const name = $('new-name').value;
    let problem = '';
    if (name && name.length > 63) problem = 'At most 63 characters.';
    else if (name && !NAME_RE.test(name)) problem = 'Use lowercase letters, digits, - and _; start with a letter and end with a letter or digit.';
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
      showSecret('Application created', created, created.secret);
    } catch (e) {
      if (e instanceof Expired) return;
      $('new-error').textContent = e.message;
      $('new-error').hidden = false;
    }
  }

  function confirmAction(title, text, okLabel, action) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    $('confirm-error').hidden = true;
    const ok = $('confirm-ok');
    const fresh = ok.cloneNode(true);
    ok.replaceWith(fresh);
    fresh.addEventListener('click', async () => {
      fresh.disabled = true;
      try {
        await action();
      } catch (e) {
        if (!(e instanceof Expired)) {
          $('confirm-error').textContent = e.message;
          $('confirm-error').hidden = false;
        }
      } finally {
        fresh.disabled = false;
      }
    });
    open($('confirm-dialog'));
  }

  function regenerate() {
    const app = state.selected;
    confirmAction('Regenerate client secret',
      `The current secret of ${app.name} stops working at once, and every token issued with it is revoked. Whatever uses it must be given the new secret.`,
      'REGENERATE', async () => {
        const resp = await api('POST', `/api/v1/apps/${encodeURIComponent(app.id)}/secret`);
        const body = await resp.json();
        $('confirm-dialog').close();
        showSecret('New client secret', body, body.secret);
      });
  }

  function remove() {
    const app = state.selected;
    confirmAction('Delete application',
      `Delete ${app.name}? Its access rules are removed and its tokens stop working. This cannot be undone.`,
      'DELETE', async () => {
        await api('DELETE', `/api/v1/apps/${encodeURIComponent(app.id)}`);
        $('confirm-dialog').close();
        state.selected = null;
        showBanner(`Deleted ${app.name}.`);
        await loadApps();
      });
  }

  async function setEnabled(app, enabled) {
    await api('PATCH', `/api/v1/apps/${encodeURIComponent(app.id)}`, { enabled });
    await loadApps();
  }

  function toggle() {
    const app = state.selected;
    if (!app.enabled) {
      setEnabled(app, true).catch((e) => { if (!(e instanceof Expired)) showBanner(e.message, true); });
      return;
    }
    confirmAction('Disable application',
      `Disable ${app.name}? It cannot get tokens while disabled, and the tokens it holds are revoked now.`,
      'DISABLE', async () => {
        await setEnabled(app, false);
        $('confirm-dialog').close();
      });
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
      del.addEventListener('click', async () => {
        try {
          await api('DELETE', `/api/v1/authorization/access-rules/${encodeURIComponent(r.id)}`);
          await loadRules(app);
        } catch (e) {
          if (!(e instanceof Expired)) { $('rules-error').textContent = e.message; $('rules-error').hidden = false; }
        }
      });
      body.append(el('tr', { 'data-rule': r.id },
        el('td', { text: r.roleName }), el('td', { text: `${r.scopeName} (${r.scopeType})` }),
        el('td', { text: r.createdBy }), el('td', {}, del)));
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
      if (!(e instanceof Expired)) showBanner(e.message, true);
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

  // ---- wiring -----------------------------------------------------------------
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
  window.appauthConsole = Object.freeze({ api, el, formatTime, listQuery, Expired });

  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => { state.clientId = ''; expire(''); });
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
  $('act-delete').addEventListener('click', remove);
  $('act-toggle').addEventListener('click', toggle);
  $('rule-add').addEventListener('click', () => { $('rule-form').hidden = false; $('rule-role').focus(); });
  $('rule-form').addEventListener('submit', saveRule);
  $('rules-dialog').addEventListener('close', () => loadApps());
  $('add-filter').addEventListener('click', () => {
    const f = $('filter-form');
    f.hidden = !f.hidden;
    $('add-filter').setAttribute('aria-expanded', String(!f.hidden));
    if (!f.hidden) $('filter-field').focus();
  });
  $('filter-field').replaceChildren(...COLUMNS.map((c) => new Option(c.label, c.field)));
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
    if (!e.target.closest('.menu-wrap')) for (const m of document.querySelectorAll('.menu')) m.hidden = true;
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') for (const m of document.querySelectorAll('.menu')) m.hidden = true;
  });
  $('page-size').addEventListener('change', () => { state.limit = Number($('page-size').value); state.offset = 0; loadApps(); });
  $('prev-page').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); loadApps(); });
  $('next-page').addEventListener('click', () => { state.offset += state.limit; loadApps(); });
  $('signin-id').focus();
})();
