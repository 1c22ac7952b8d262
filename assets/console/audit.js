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
    { field: 'status', label: 'Status' },
    { field: 'sourceAddress', label: 'Source' },
    { field: 'requestId', label: 'Request ID' },
    { field: 'summary', label: 'Summary' },
  ];
  const $ = (id) => document.getElementById(id);
  const state = { filters: [], search: '', sortBy: 'at', sortOrder: 'desc', offset: 0, limit: 50, total: 0, rows: [] };
  const shared = () => window.appauthConsole;

  function banner(text, isError) {
    const b = $('audit-banner');
    b.textContent = text || '';
    b.classList.toggle('error', !!isError);
    b.hidden = !text;
  }

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
      if (!(e instanceof Expired)) banner(e.message, true);
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
    const { el, formatTime } = shared();
    const body = $('audit-body');
    body.replaceChildren();
    for (const ev of state.rows) {
      const tr = el('tr', { 'data-id': ev.id });
      for (const c of COLUMNS) {
        if (c.time) tr.append(el('td', { text: formatTime(ev.at), title: ev.at }));
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
    const { el } = shared();
    const box = $('audit-filters');
    box.replaceChildren();
    state.filters.forEach((f, i) => {
      const label = COLUMNS.find((c) => c.field === f.field)?.label || f.field;
      const opText = $('audit-filter-op').querySelector(`option[value="${CSS.escape(f.op)}"]`)?.textContent || f.op;
      box.append(el('span', { class: 'chip' }, `${label} ${opText} “${f.value}”`,
        el('button', { type: 'button', 'aria-label': `Remove filter ${label} ${opText} ${f.value}`, text: '×', onclick: () => {
          state.filters.splice(i, 1); state.offset = 0; renderFilters(); load();
        } })));
    });
  }

  async function addFilter(event) {
    event.preventDefault();
    const value = $('audit-filter-value').value;
    if (!value) { $('audit-filter-value').focus(); return; }
    const filter = { field: $('audit-filter-field').value, op: $('audit-filter-op').value, value };
    state.filters.push(filter);
    state.offset = 0;
    await load();
    // A filter the server refused is not kept: the chip would claim it applies.
    if (!$('audit-banner').hidden && $('audit-banner').classList.contains('error')) {
      state.filters.pop();
    } else {
      $('audit-filter-value').value = '';
      $('audit-filter-form').hidden = true;
      $('audit-add-filter').setAttribute('aria-expanded', 'false');
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
      banner(resp.headers.get('X-Truncated') === 'true'
        ? `The CSV holds the first ${exported.toLocaleString()} of ${total.toLocaleString()} matching records (exports are limited to 20,000 rows).`
        : `Downloaded ${exported.toLocaleString()} audit record${exported === 1 ? '' : 's'} as CSV.`);
    } catch (e) {
      if (!(e instanceof Expired)) banner(e.message, true);
    }
  }

  let started = false;
  document.addEventListener('appauth:page', (e) => {
    if (e.detail !== 'audit') return;
    if (!started) {
      started = true;
      for (const c of COLUMNS) $('audit-filter-field').append(new Option(c.label, c.field));
    }
    renderHead();
    renderFilters();
    load();
  });
  $('audit-add-filter').addEventListener('click', () => {
    const form = $('audit-filter-form');
    form.hidden = !form.hidden;
    $('audit-add-filter').setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) $('audit-filter-field').focus();
  });
  $('audit-filter-form').addEventListener('submit', addFilter);
  let searchTimer = null;
  $('audit-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.search = $('audit-search').value.trim(); state.offset = 0; load(); }, 250);
  });
  $('audit-refresh').addEventListener('click', load);
  $('audit-csv').addEventListener('click', downloadCsv);
  $('audit-page-size').addEventListener('change', () => { state.limit = Number($('audit-page-size').value); state.offset = 0; load(); });
  $('audit-prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  $('audit-next').addEventListener('click', () => { state.offset += state.limit; load(); });
})();
