// appauth console: the Audit log page (GET /api/v1/audit). Same rules as
// app.js: plain DOM, no inline script, every server value set as text.
// It uses the helpers app.js shares on window.appauthConsole (which keeps
// the token) and loads when app.js announces the page.
'use strict';
(() => {
  const COLUMNS = [
    { field: 'at', label: 'Time', time: true },
    { field: 'actorName', label: 'Actor' },
    { field: 'action', label: 'Action' },
    { field: 'targetName', label: 'Target' },
    { field: 'outcome', label: 'Outcome' },
    { field: 'status', label: 'Status', number: true },
    { field: 'sourceAddress', label: 'Source' },
    { field: 'requestId', label: 'Request ID' },
    { field: 'summary', label: 'Summary' },
  ];
  const $ = (id) => document.getElementById(id);
  const state = { filters: [], search: '', sortBy: 'at', sortOrder: 'desc', offset: 0, limit: 50, total: 0, rows: [] };
  const shared = () => window.appauthConsole;

  const banner = (text) => shared().showError('audit-banner', text);

  function query(extra) {
    return shared().listQuery(state, extra);
  }

  async function load() {
    const { api, Expired } = shared();
    try {
      const resp = await api('GET', '/api/v1/audit?' + query({ offset: state.offset, limit: state.limit }));
      const body = await resp.json();
      state.total = body.totalRecords;
      state.rows = body.events;
      banner('');
      render();
    } catch (e) {
      if (!(e instanceof Expired)) banner(e.message);
    }
  }

  function value(ev, field) {
    switch (field) {
      case 'actorName': return ev.actor.name === '-' ? '(not signed in)' : ev.actor.name;
      case 'targetName': return ev.targetName || ev.targetId;
      default: return String(ev[field]);
    }
  }

  function renderHead() {
    const { el } = shared();
    const head = $('audit-head');
    head.replaceChildren();
    for (const c of COLUMNS) {
      const sorted = state.sortBy === c.field;
      const th = el('th', { scope: 'col', 'aria-sort': sorted ? (state.sortOrder === 'asc' ? 'ascending' : 'descending') : 'none', 'data-field': c.field });
      th.append(el('button', { type: 'button', text: c.label, onclick: () => sortBy(c.field) }));
      head.append(th);
    }
  }

  function render() {
    const { el, timeCell } = shared();
    const body = $('audit-body');
    body.replaceChildren();
    for (const ev of state.rows) {
      const tr = el('tr', { 'data-id': ev.id });
      for (const c of COLUMNS) {
        if (c.time) tr.append(timeCell(ev.at));
        else if (c.field === 'outcome') tr.append(el('td', {}, el('span', { class: `outcome outcome-${ev.outcome}`, text: ev.outcome })));
        else if (c.field === 'actorName') tr.append(el('td', { text: value(ev, c.field), title: ev.actor.clientId }));
        else if (c.field === 'targetName') tr.append(el('td', { text: value(ev, c.field), title: `${ev.targetType} ${ev.targetId}` }));
        else if (c.field === 'summary') tr.append(el('td', { class: 'summary-cell', text: ev.summary }));
        else tr.append(el('td', { text: value(ev, c.field) }));
      }
      body.append(tr);
    }
    $('audit-empty').hidden = state.rows.length > 0;
    const from = state.total === 0 ? 0 : state.offset + 1;
    const to = Math.min(state.offset + state.limit, state.total);
    $('audit-page-info').textContent = `${from.toLocaleString()}–${to.toLocaleString()} of ${state.total.toLocaleString()}`;
    $('audit-prev').disabled = state.offset === 0;
    $('audit-next').disabled = to >= state.total;
  }

  function sortBy(field) {
    if (state.sortBy === field) state.sortOrder = state.sortOrder === 'asc' ? 'desc' : 'asc';
    else { state.sortBy = field; state.sortOrder = field === 'at' ? 'desc' : 'asc'; }
    state.offset = 0;
    renderHead();
    load();
  }

  function renderFilters() {
    shared().renderChips($('audit-filters'), COLUMNS, state.filters, (i) => {
      state.filters.splice(i, 1); state.offset = 0; renderFilters(); load();
    });
  }

  // As on the Applications page: a filter becomes a chip only once applied.
  let filterForm = null;
  async function addFilter(event) {
    event.preventDefault();
    const { api, Expired } = shared();
    const filter = filterForm.read();
    if (!filter) return;
    state.filters.push(filter);
    const before = state.offset;
    state.offset = 0;
    try {
      const resp = await api('GET', '/api/v1/audit?' + query({ offset: 0, limit: state.limit }));
      const body = await resp.json();
      state.total = body.totalRecords;
      state.rows = body.events;
      banner('');
      render();
      filterForm.reset();
      $('audit-filter-form').hidden = true;
      $('audit-add-filter').setAttribute('aria-expanded', 'false');
    } catch (e) {
      state.filters.pop();
      state.offset = before;
      if (!(e instanceof Expired)) filterForm.refused(e.message);
    }
    renderFilters();
  }

  async function downloadCsv() {
    const { api, el, Expired } = shared();
    try {
      const resp = await api('GET', '/api/v1/audit?' + query({ format: 'csv' }), undefined, 'text/csv');
      const exported = Number(resp.headers.get('X-Exported-Records'));
      const total = Number(resp.headers.get('X-Total-Records'));
      const url = URL.createObjectURL(await resp.blob());
      const a = el('a', { href: url, download: 'audit-log.csv' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      if (resp.headers.get('X-Truncated') === 'true') {
        banner(`The CSV holds the first ${exported.toLocaleString()} of ${total.toLocaleString()} matching records (exports are limited to 20,000 rows).`);
      } else {
        shared().toast(`Downloaded ${exported.toLocaleString()} audit record${exported === 1 ? '' : 's'} as CSV.`);
      }
    } catch (e) {
      if (!(e instanceof Expired)) banner(e.message);
    }
  }

  let started = false;
  document.addEventListener('appauth:page', (e) => {
    if (e.detail !== 'audit') return;
    if (!started) {
      started = true;
      filterForm = shared().filterForm('audit-', COLUMNS);
    }
    renderHead();
    renderFilters();
    load();
  });
  $('audit-add-filter').addEventListener('click', () => {
    const form = $('audit-filter-form');
    form.hidden = !form.hidden;
    $('audit-add-filter').setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) {
      if (filterForm) filterForm.reset();
      $('audit-filter-field').focus();
    }
  });
  $('audit-filter-form').addEventListener('submit', addFilter);
  document.addEventListener('appauth:signout', () => {
    Object.assign(state, { filters: [], search: '', offset: 0, total: 0, rows: [] });
    $('audit-body').replaceChildren();
    $('audit-filters').replaceChildren();
    $('audit-search').value = '';
    banner('');
  });
  let searchTimer = null;
  $('audit-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.search = $('audit-search').value.trim(); state.offset = 0; load(); }, 250);
  });
  $('audit-refresh').addEventListener('click', load);
  $('audit-csv').addEventListener('click', downloadCsv);
  $('audit-page-size').addEventListener('change', () => { state.limit = Number($('audit-page-size').value); state.offset = 0; load(); });
  const turn = async (step) => {
    state.offset = Math.max(0, state.offset + step * state.limit);
    await load();
    shared().scrollToTop('audit');
  };
  $('audit-prev').addEventListener('click', () => turn(-1));
  $('audit-next').addEventListener('click', () => turn(1));
})();
