// Understudy dashboard: plain ES module, no dependencies, no build step.
//
// It polls every member directly (GET /v1/cluster?local=true each second, /v1/stats/history and
// /v1/events every two seconds), so it keeps working when the node that served this page dies.
// The leader's own view carries each follower's replication progress. Actions: a switchover
// (POST /v1/admin/switchover on any reachable member) and, when a dev cluster control server is
// advertised in /ui/config.json, kill / restart / isolate / heal of a node.

const TOPOLOGY_INTERVAL_MS = 1000;
const HISTORY_INTERVAL_MS = 2000;
const WINDOW_MS = 300_000;
const REQUEST_TIMEOUT_MS = 1500;
const ACTION_TIMEOUT_MS = 20_000;
const EVENTS_SHOWN = 150;
const COLORS = ['#2f6fdb', '#d9730d', '#2e9e53', '#d64545', '#8e5bd6', '#0f8b8d', '#a0522d'];
const DASHES = ['', '6 3', '2 3', '10 3 2 3', '1 2', '8 2 2 2 2 2', '4 4'];

const state = {
  config: null,
  token: sessionStorage.getItem('understudy-token'),
  /** id -> { id, url, view, ok, error, events: {bootId, lastSeq}, history: {bootId, lastT, samples: Map} } */
  members: new Map(),
  controlUrl: null,
  dev: new Map(),
  devOk: false,
  /** merged timeline entries by key */
  timeline: new Map(),
  lastRoleByNode: new Map(),
  latencyBuckets: { base: 1.1, minMs: 0.01 },
  busy: false,
  loadedAt: Date.now(),
  announcedTerms: new Set(),
  rows: new Map(),
};

const $ = (id) => document.getElementById(id);

class ApiFailure extends Error {
  constructor(status, body, fallback) {
    super(body && typeof body.message === 'string' ? `${body.code}: ${body.message}` : fallback);
    this.status = status;
    this.body = body;
  }
}

async function api(base, path, { method = 'GET', body, timeoutMs = REQUEST_TIMEOUT_MS, auth = true } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && state.token) headers.authorization = `Bearer ${state.token}`;
    const response = await fetch(base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal, cache: 'no-store',
    });
    const text = await response.text();
    let json = null;
    try { json = text === '' ? null : JSON.parse(text); } catch { json = null; }
    if (response.status === 401 && auth) showAuth();
    if (!response.ok) throw new ApiFailure(response.status, json, `HTTP ${response.status}`);
    return json;
  } catch (error) {
    if (error instanceof ApiFailure) throw error;
    throw new ApiFailure(0, null, error && error.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : 'unreachable');
  } finally {
    clearTimeout(timer);
  }
}

function showAuth() {
  $('auth').hidden = false;
}

function member(id, url) {
  let entry = state.members.get(id);
  if (entry === undefined) {
    entry = { id, url, view: null, ok: false, error: 'not polled yet', events: { bootId: null, lastSeq: 0 }, history: { bootId: null, lastT: 0, samples: new Map() } };
    state.members.set(id, entry);
  } else if (url && entry.url !== url) {
    entry.url = url;
  }
  return entry;
}

function reachable() {
  return [...state.members.values()].filter((m) => m.ok);
}

/** The node that leads: the reachable one that says so with the highest term. */
function leaderView() {
  let best = null;
  for (const m of reachable()) {
    if (m.view && m.view.role === 'leader' && (best === null || m.view.term > best.term)) best = m.view;
  }
  return best;
}

function knownLeaderId() {
  const lead = leaderView();
  if (lead) return lead.id;
  const votes = new Map();
  for (const m of reachable()) {
    const id = m.view && m.view.leaderId;
    if (id) votes.set(id, (votes.get(id) || 0) + 1);
  }
  let best = null;
  for (const [id, count] of votes) if (best === null || count > votes.get(best)) best = id;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Polling.

async function pollTopology() {
  await Promise.all([...state.members.values()].map(async (m) => {
    try {
      m.view = await api(m.url, '/v1/cluster?local=true');
      m.ok = true;
      m.error = null;
      for (const peer of m.view.members || []) if (peer.client) member(peer.id, peer.client);
    } catch (error) {
      m.ok = false;
      m.error = error.message;
    }
  }));
  if (state.controlUrl) {
    try {
      const answer = await api(state.controlUrl, '/dev/nodes', { auth: false });
      state.dev = new Map(answer.nodes.map((node) => [node.id, node]));
      state.devOk = true;
    } catch {
      state.devOk = false;
    }
  }
  renderTopology();
}

async function pollHistoryAndEvents() {
  await Promise.all(reachable().map(async (m) => {
    try {
      const history = await api(m.url, `/v1/stats/history?after=${m.history.bootId === null ? 0 : m.history.lastT}`);
      if (history.bootId !== m.history.bootId) {
        m.history = { bootId: history.bootId, lastT: 0, samples: new Map(m.history.samples) };
      }
      if (history.latencyBuckets) state.latencyBuckets = history.latencyBuckets;
      for (const sample of history.samples) {
        m.history.samples.set(sample.t, sample);
        m.history.lastT = Math.max(m.history.lastT, sample.t);
      }
      const horizon = Date.now() - WINDOW_MS - 5000;
      for (const t of m.history.samples.keys()) if (t < horizon) m.history.samples.delete(t);
    } catch {
      // shown as unreachable by the topology poll
    }
    try {
      let after = m.events.lastSeq;
      for (let page = 0; page < 5; page++) {
        const answer = await api(m.url, `/v1/events?after=${m.events.bootId === null ? 0 : after}&limit=1000`);
        if (answer.bootId !== m.events.bootId) {
          m.events = { bootId: answer.bootId, lastSeq: 0 };
          if (after !== 0) { after = 0; continue; }
        }
        for (const event of answer.events) mergeEvent(event, answer.bootId);
        if (answer.events.length > 0) m.events.lastSeq = answer.events[answer.events.length - 1].seq;
        after = m.events.lastSeq;
        if (answer.events.length < 1000) break;
      }
    } catch {
      // next round
    }
  }));
  renderCharts();
  renderTimeline();
}

function loop(fn, intervalMs) {
  const run = async () => {
    const started = performance.now();
    try { await fn(); } catch (error) { console.error(error); }
    setTimeout(run, Math.max(50, intervalMs - (performance.now() - started)));
  };
  run();
}

// ---------------------------------------------------------------------------------------------
// Topology table.

function text(el, value) {
  const s = value === null || value === undefined ? '–' : String(value);
  if (el.textContent !== s) el.textContent = s;
}

function badge(el, label, kind) {
  text(el, label);
  const cls = `badge ${kind}`;
  if (el.className !== cls) el.className = cls;
}

function button(label, ariaLabel, kind, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.setAttribute('aria-label', ariaLabel);
  if (kind) b.className = kind;
  b.addEventListener('click', () => {
    if (b.getAttribute('aria-disabled') === 'true' || state.busy) return;
    onClick();
  });
  return b;
}

function setEnabled(b, enabled, why) {
  const value = enabled ? 'false' : 'true';
  if (b.getAttribute('aria-disabled') !== value) b.setAttribute('aria-disabled', value);
  const title = enabled ? '' : why;
  if ((b.getAttribute('title') || '') !== title) {
    if (title) b.setAttribute('title', title); else b.removeAttribute('title');
  }
}

function rowFor(id) {
  let row = state.rows.get(id);
  if (row) return row;
  const tr = document.createElement('tr');
  tr.dataset.node = id;
  const th = document.createElement('th');
  th.scope = 'row';
  tr.append(th);
  const cells = {};
  for (const name of ['role', 'term', 'health', 'commit', 'applied', 'lag', 'lagMs', 'link', 'actions']) {
    const td = document.createElement('td');
    if (['commit', 'applied', 'lag', 'lagMs'].includes(name)) td.className = 'num';
    td.dataset.col = name;
    cells[name] = td;
    tr.append(td);
  }
  cells.roleBadge = document.createElement('span');
  cells.role.append(cells.roleBadge);
  cells.healthBadge = document.createElement('span');
  cells.health.append(cells.healthBadge);
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  const buttons = {
    leader: button('Make leader', `Make ${id} leader`, '', () => switchover(id)),
    kill: button('Kill', `Kill ${id}`, 'danger', () => devAction(id, 'kill', {}, `Killed ${id}`)),
    restart: button('Restart', `Restart ${id}`, '', () => devAction(id, 'restart', {}, `Restarted ${id}`)),
    isolate: button('Isolate', `Isolate ${id}`, '', () => {
      const isolated = state.dev.get(id)?.isolated === true;
      devAction(id, 'isolate', { isolated: !isolated }, isolated ? `Healed ${id}: it talks to its peers again` : `Isolated ${id} from its peers`);
    }),
  };
  actions.append(buttons.leader, buttons.kill, buttons.restart, buttons.isolate);
  cells.actions.append(actions);
  row = { tr, th, cells, buttons };
  state.rows.set(id, row);
  const body = $('topology').tBodies[0];
  const after = [...body.rows].find((r) => r.dataset.node.localeCompare(id, undefined, { numeric: true }) > 0);
  body.insertBefore(tr, after || null);
  return row;
}

const ROLE_LABELS = { leader: 'leader', follower: 'follower', candidate: 'candidate', preCandidate: 'pre-candidate', learner: 'learner' };

function renderTopology() {
  const lead = leaderView();
  const leaderId = knownLeaderId();
  const ids = [...state.members.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const dev = state.controlUrl !== null && state.devOk;
  $('dev-hint').hidden = !dev;
  const voters = new Set();
  for (const m of reachable()) for (const v of (m.view.membership && m.view.membership.voters) || []) voters.add(v);

  for (const id of ids) {
    const m = state.members.get(id);
    const row = rowFor(id);
    const view = m.ok ? m.view : null;
    const progress = lead && lead.members ? lead.members.find((p) => p.id === id) : null;
    const devInfo = state.dev.get(id);
    const isLeader = view !== null && view.role === 'leader' && lead !== null && view.id === lead.id;
    row.tr.classList.toggle('is-leader', isLeader);
    row.tr.dataset.role = view ? view.role : 'unreachable';
    text(row.th, id === (state.config && state.config.node) ? `${id} (served this page)` : id);
    if (view) badge(row.cells.roleBadge, ROLE_LABELS[view.role] || view.role, isLeader ? 'leader' : view.role === 'follower' ? 'info' : 'warn');
    else badge(row.cells.roleBadge, 'unknown', 'bad');
    text(row.cells.term, view ? view.term : null);
    let health;
    if (!view) health = devInfo && !devInfo.running ? ['stopped', 'bad'] : ['unreachable', 'bad'];
    else if (devInfo && devInfo.isolated) health = ['isolated', 'bad'];
    else if (view.leaderId === null) health = ['no leader', 'warn'];
    else if (view.commitIndex - view.appliedIndex >= 1000) health = ['catching up', 'warn'];
    else health = ['healthy', 'ok'];
    badge(row.cells.healthBadge, health[0], health[1]);
    row.tr.dataset.health = health[0];
    text(row.cells.commit, view ? view.commitIndex : null);
    text(row.cells.applied, view ? view.appliedIndex : null);
    text(row.cells.lag, progress ? progress.lagEntries : null);
    text(row.cells.lagMs, progress ? progress.lagMs : null);
    text(row.cells.link, !progress || isLeader ? null : progress.connected === null ? null : progress.connected ? 'up' : 'down');

    const isVoter = voters.size === 0 || voters.has(id);
    setEnabled(row.buttons.leader, !isLeader && view !== null && isVoter && leaderId !== null,
      isLeader ? `${id} is the leader` : view === null ? `${id} is not reachable` : !isVoter ? `${id} is not a voter` : 'no leader is known');
    for (const name of ['kill', 'restart', 'isolate']) row.buttons[name].hidden = !dev;
    if (dev) {
      const running = devInfo ? devInfo.running : false;
      setEnabled(row.buttons.kill, running, `${id} is not running`);
      setEnabled(row.buttons.restart, true, '');
      text(row.buttons.restart, running ? 'Restart' : 'Start');
      row.buttons.restart.setAttribute('aria-label', `${running ? 'Restart' : 'Start'} ${id}`);
      const isolated = devInfo ? devInfo.isolated === true : false;
      text(row.buttons.isolate, isolated ? 'Heal' : 'Isolate');
      row.buttons.isolate.setAttribute('aria-label', `${isolated ? 'Heal' : 'Isolate'} ${id}`);
      setEnabled(row.buttons.isolate, running, `${id} is not running`);
    }
  }

  text($('leader'), leaderId || 'none');
  text($('term'), lead ? lead.term : Math.max(0, ...reachable().map((m) => m.view.term)) || null);
  text($('commit'), lead ? lead.commitIndex : null);
  const up = reachable().length;
  const summary = $('summary');
  const line = leaderId
    ? `Leader ${leaderId}, term ${lead ? lead.term : '?'}. ${up} of ${ids.length} nodes reachable.`
    : up === 0 ? 'No node is reachable.' : `No leader right now (election in progress?). ${up} of ${ids.length} nodes reachable.`;
  text(summary, line);
  summary.classList.toggle('bad', !leaderId);

  const select = $('switchover-target');
  const options = ['', ...ids.filter((id) => voters.size === 0 || voters.has(id))];
  const current = [...select.options].map((o) => o.value);
  if (current.join(',') !== options.join(',')) {
    const chosen = select.value;
    select.replaceChildren(...options.map((id) => {
      const option = document.createElement('option');
      option.value = id;
      option.textContent = id === '' ? 'the most caught-up voter' : id;
      return option;
    }));
    if (options.includes(chosen)) select.value = chosen;
  }
}

// ---------------------------------------------------------------------------------------------
// Actions.

function setStatus(message, kind) {
  const el = $('action-status');
  el.textContent = message;
  el.className = `action-status ${kind || ''}`;
}

async function withBusy(label, work) {
  if (state.busy) return;
  state.busy = true;
  document.body.setAttribute('aria-busy', 'true');
  setStatus(`${label}…`, '');
  try {
    const message = await work();
    setStatus(message, 'ok');
  } catch (error) {
    setStatus(`${label} failed: ${error.message}`, 'bad');
  } finally {
    state.busy = false;
    document.body.removeAttribute('aria-busy');
    pollTopology().catch(() => undefined);
  }
}

/** Members to try for an admin request: the leader first, then the other reachable ones. */
function adminTargets() {
  const leaderId = knownLeaderId();
  const list = reachable();
  list.sort((a, b) => (a.id === leaderId ? -1 : b.id === leaderId ? 1 : 0));
  return list;
}

function switchover(to) {
  return withBusy(to ? `Switching leadership to ${to}` : 'Switching leadership', async () => {
    let lastError = new Error('no node is reachable');
    for (const m of adminTargets()) {
      try {
        const answer = await api(m.url, '/v1/admin/switchover', { method: 'POST', body: to ? { to } : {}, timeoutMs: ACTION_TIMEOUT_MS });
        return `Leadership moved ${answer.from} → ${answer.to} in ${answer.durationMs} ms.`;
      } catch (error) {
        lastError = error;
        // A refusal is the cluster's answer; only an unreachable node is worth another try.
        if (error.status !== 0) throw error;
      }
    }
    throw lastError;
  });
}

function devAction(id, action, body, done) {
  const labels = { kill: `Killing ${id}`, restart: `Restarting ${id}`, isolate: body.isolated ? `Isolating ${id}` : `Healing ${id}` };
  return withBusy(labels[action], async () => {
    const pid = state.dev.get(id)?.pid ?? null;
    const answer = await api(state.controlUrl, `/dev/nodes/${encodeURIComponent(id)}/${action}`, { method: 'POST', body, timeoutMs: ACTION_TIMEOUT_MS, auth: false });
    state.dev.set(id, answer.node);
    return action === 'kill' ? `${done} (SIGKILL to pid ${pid ?? '?'}).` : action === 'restart' ? `${done} (pid ${answer.node.pid}).` : `${done}.`;
  });
}

// ---------------------------------------------------------------------------------------------
// Events.

function mergeEvent(event, bootId) {
  if (event.type === 'leader') {
    const key = `leader:${event.term}:${event.leaderId}`;
    let entry = state.timeline.get(key);
    if (!entry) {
      entry = { key, type: 'leader', term: event.term, leaderId: event.leaderId, previousLeaderId: event.previousLeaderId, atMs: event.atMs, reports: new Map() };
      state.timeline.set(key, entry);
    }
    entry.atMs = Math.min(entry.atMs, event.atMs);
    if (!entry.previousLeaderId && event.previousLeaderId) entry.previousLeaderId = event.previousLeaderId;
    entry.reports.set(event.node, { failoverMs: event.failoverMs, measuredFrom: event.measuredFrom });
    return;
  }
  if (event.type === 'membership') {
    const content = `${event.voters.join(',')}|${event.learners.join(',')}`;
    for (const entry of state.timeline.values()) {
      if (entry.type === 'membership' && entry.content === content && Math.abs(entry.atMs - event.atMs) < 10_000) return;
    }
    state.timeline.set(`membership:${content}:${event.atMs}`, { key: `membership:${content}:${event.atMs}`, type: 'membership', content, voters: event.voters, learners: event.learners, atMs: event.atMs });
    return;
  }
  const key = `${event.node}:${bootId}:${event.seq}`;
  if (event.type === 'role') {
    const previous = state.lastRoleByNode.get(`${event.node}:${bootId}`);
    state.lastRoleByNode.set(`${event.node}:${bootId}`, event.role);
    // "Became leader" is the leader line; a plain follower is news only after leading.
    if (event.role === 'leader' || (event.role === 'follower' && previous !== 'leader')) return;
    state.timeline.set(key, { key, type: 'role', node: event.node, role: event.role, term: event.term, previous, atMs: event.atMs });
    return;
  }
  state.timeline.set(key, { ...event, key });
}

function failoverOf(entry) {
  const own = entry.reports.get(entry.leaderId);
  if (own && own.failoverMs !== null) return own;
  let best = null;
  for (const report of entry.reports.values()) if (report.failoverMs !== null && (best === null || report.failoverMs < best.failoverMs)) best = report;
  return best;
}

function describe(entry) {
  switch (entry.type) {
    case 'leader': {
      const failover = failoverOf(entry);
      let line = `Leader ${entry.leaderId} elected in term ${entry.term}`;
      if (failover) {
        line += `, failover ${failover.failoverMs} ms`;
        if (entry.previousLeaderId) line += failover.measuredFrom === 'last-contact' ? ` (since last contact with ${entry.previousLeaderId})` : ` (since ${entry.previousLeaderId} was noticed gone)`;
      } else if (entry.previousLeaderId) {
        line += ` (after ${entry.previousLeaderId})`;
      }
      return line;
    }
    case 'role':
      if (entry.role === 'candidate') return `${entry.node} started an election for term ${entry.term}`;
      if (entry.role === 'preCandidate') return `${entry.node} has no leader and asks for pre-votes (term ${entry.term})`;
      if (entry.role === 'follower') return `${entry.node} stepped down and follows (term ${entry.term})`;
      return `${entry.node} became ${ROLE_LABELS[entry.role] || entry.role} (term ${entry.term})`;
    case 'membership':
      return `Membership changed: voters ${entry.voters.join(', ') || 'none'}; learners ${entry.learners.join(', ') || 'none'}`;
    case 'snapshot':
      return entry.source === 'installed' ? `${entry.node} installed a snapshot from the leader at index ${entry.index}` : `${entry.node} took a snapshot at index ${entry.index}`;
    case 'started':
      return `${entry.node} started`;
    case 'isolation':
      return entry.isolated ? `${entry.node} isolated from its peers (dev)` : `${entry.node} healed: talks to its peers again (dev)`;
    default:
      return `${entry.node || ''} ${entry.type}`;
  }
}

const KIND_LABELS = { leader: ['leader', 'leader'], role: ['election', 'warn'], membership: ['membership', 'info'], snapshot: ['snapshot', 'info'], started: ['start', 'info'], isolation: ['partition', 'bad'] };

function clock(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

let renderedTimeline = '';

function renderTimeline() {
  const entries = [...state.timeline.values()].sort((a, b) => b.atMs - a.atMs).slice(0, EVENTS_SHOWN);
  // Bounded memory: forget what is no longer shown.
  if (state.timeline.size > EVENTS_SHOWN * 4) {
    const keep = new Set([...state.timeline.values()].sort((a, b) => b.atMs - a.atMs).slice(0, EVENTS_SHOWN * 2).map((e) => e.key));
    for (const key of state.timeline.keys()) if (!keep.has(key)) state.timeline.delete(key);
  }
  const items = entries.map((entry) => ({ entry, line: describe(entry) }));
  const signature = items.map((item) => `${item.entry.key}|${item.line}`).join('\n');
  if (signature === renderedTimeline) return;
  renderedTimeline = signature;
  const list = $('events');
  list.replaceChildren(...items.map(({ entry, line }) => {
    const li = document.createElement('li');
    li.className = entry.type;
    li.dataset.type = entry.type;
    if (entry.type === 'leader') {
      li.dataset.term = String(entry.term);
      li.dataset.leader = entry.leaderId;
      const failover = failoverOf(entry);
      if (failover) li.dataset.failoverMs = String(failover.failoverMs);
    }
    const time = document.createElement('time');
    time.dateTime = new Date(entry.atMs).toISOString();
    time.textContent = clock(entry.atMs);
    const kind = document.createElement('span');
    const [label, cls] = KIND_LABELS[entry.type] || [entry.type, 'info'];
    kind.className = `kind badge ${cls}`;
    kind.textContent = label;
    const span = document.createElement('span');
    span.className = 'text';
    span.textContent = line;
    li.append(time, kind, span);
    return li;
  }));
  // Announce leader changes that happen while the page is open (once per term).
  const newest = entries.find((entry) => entry.type === 'leader');
  if (newest && newest.atMs > state.loadedAt && !state.announcedTerms.has(newest.term)) {
    state.announcedTerms.add(newest.term);
    $('announce').textContent = describe(newest);
  }
}

// ---------------------------------------------------------------------------------------------
// Charts: inline SVG, drawn by hand.

const SVG = 'http://www.w3.org/2000/svg';

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/** A round tick step so that about four steps cover `value`, and the axis maximum. */
function niceScale(value) {
  if (!(value > 0)) return { step: 0.25, max: 1 };
  const rough = value / 4;
  const base = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((f) => f * base).find((s) => s >= rough) ?? 10 * base;
  return { step, max: step * Math.max(1, Math.ceil(value / step)) };
}

function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const rounded = value >= 100 ? Math.round(value) : value >= 10 ? Math.round(value * 10) / 10 : Math.round(value * 100) / 100;
  return `${rounded}${unit}`;
}

function drawChart(id, series, unit, now) {
  const svg = $(`chart-${id}`);
  const desc = $(`chart-${id}-desc`);
  const W = 600;
  const H = 200;
  const left = 52;
  const right = 10;
  const top = 10;
  const bottom = 24;
  const from = now - WINDOW_MS;
  const x = (t) => left + ((t - from) / WINDOW_MS) * (W - left - right);
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  const scale = niceScale(max);
  const yMax = scale.max;
  const y = (v) => top + (1 - v / yMax) * (H - top - bottom);
  const children = [desc];
  for (let i = 0; i * scale.step <= yMax + 1e-9; i++) {
    const v = i * scale.step;
    children.push(svgEl('line', { class: 'grid', x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    const label = svgEl('text', { class: 'axis-label', x: left - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = formatValue(v, '');
    children.push(label);
  }
  for (let minute = 5; minute >= 0; minute--) {
    const t = now - minute * 60_000;
    const label = svgEl('text', { class: 'axis-label', x: x(t), y: H - 6, 'text-anchor': minute === 5 ? 'start' : minute === 0 ? 'end' : 'middle' });
    label.textContent = minute === 0 ? 'now' : `−${minute} min`;
    children.push(label);
  }
  const hasData = series.some((s) => s.points.some(([, v]) => v !== null));
  if (!hasData) {
    const empty = svgEl('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' });
    empty.textContent = 'no data in this window';
    children.push(empty);
  }
  series.forEach((s, i) => {
    let d = '';
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || t < from) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d !== '') {
      const attrs = { d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2, 'stroke-linejoin': 'round' };
      if (DASHES[i % DASHES.length]) attrs['stroke-dasharray'] = DASHES[i % DASHES.length];
      children.push(svgEl('path', attrs));
    }
  });
  svg.replaceChildren(...children);
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find(([, v]) => v !== null);
    return { name: s.name, value: last ? last[1] : null };
  });
  desc.textContent = hasData ? `Latest values: ${latest.map((l) => `${l.name} ${formatValue(l.value, unit)}`).join(', ')}.` : 'No data in the last five minutes.';
  const legend = $(`legend-${id}`);
  legend.replaceChildren(...series.map((s, i) => {
    const li = document.createElement('li');
    const swatch = svgEl('svg', { viewBox: '0 0 26 10', 'aria-hidden': 'true' });
    const lineAttrs = { x1: 1, x2: 25, y1: 5, y2: 5, stroke: COLORS[i % COLORS.length], 'stroke-width': 3 };
    if (DASHES[i % DASHES.length]) lineAttrs['stroke-dasharray'] = DASHES[i % DASHES.length];
    swatch.append(svgEl('line', lineAttrs));
    const label = document.createElement('span');
    label.textContent = `${s.name}: ${formatValue(latest[i].value, unit)}`;
    li.append(swatch, label);
    return li;
  }));
}

function quantile(histogram, q) {
  const buckets = Object.entries(histogram).map(([b, c]) => [Number(b), c]).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, c]) => sum + c, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [bucket, count] of buckets) {
    seen += count;
    if (seen >= rank) return state.latencyBuckets.minMs * state.latencyBuckets.base ** bucket;
  }
  return null;
}

function renderCharts() {
  const now = Date.now();
  const seconds = new Map();
  for (const m of state.members.values()) {
    for (const sample of m.history.samples.values()) {
      let agg = seconds.get(sample.t);
      if (!agg) {
        agg = { writes: 0, reads: 0, errors: 0, writeHist: {}, readHist: {}, lag: null, lagTerm: -1 };
        seconds.set(sample.t, agg);
      }
      agg.writes += sample.writes;
      agg.reads += sample.reads;
      agg.errors += sample.writeErrors + sample.readErrors;
      for (const [b, c] of Object.entries(sample.writeHist)) agg.writeHist[b] = (agg.writeHist[b] || 0) + c;
      for (const [b, c] of Object.entries(sample.readHist)) agg.readHist[b] = (agg.readHist[b] || 0) + c;
      if (sample.lag && (sample.term ?? 0) > agg.lagTerm) {
        agg.lag = sample.lag;
        agg.lagTerm = sample.term ?? 0;
      }
    }
  }
  // A sample is the second starting at t: plot it at its end.
  const ts = [...seconds.keys()].filter((t) => t >= now - WINDOW_MS - 1000).sort((a, b) => a - b);
  const at = (f) => ts.map((t) => [t + 1000, f(seconds.get(t))]);
  drawChart('throughput', [
    { name: 'writes/s', points: at((a) => a.writes) },
    { name: 'reads/s', points: at((a) => a.reads) },
    { name: 'failed (5xx)/s', points: at((a) => a.errors) },
  ], '/s', now);
  drawChart('latency', [
    { name: 'write p50', points: at((a) => quantile(a.writeHist, 0.5)) },
    { name: 'write p99', points: at((a) => quantile(a.writeHist, 0.99)) },
    { name: 'read p99', points: at((a) => quantile(a.readHist, 0.99)) },
  ], ' ms', now);
  const followers = new Set();
  for (const t of ts) for (const id of Object.keys(seconds.get(t).lag || {})) followers.add(id);
  const ids = [...followers].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  drawChart('lag', ids.map((id) => ({ name: id, points: at((a) => (a.lag && a.lag[id] ? a.lag[id].entries : null)) })), '', now);
  drawChart('lagms', ids.map((id) => ({ name: id, points: at((a) => (a.lag && a.lag[id] ? a.lag[id].ms : null)) })), ' ms', now);
}

// ---------------------------------------------------------------------------------------------
// Start.

async function start() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (value === '') return;
    state.token = value;
    sessionStorage.setItem('understudy-token', value);
    $('auth').hidden = true;
    pollTopology().catch(() => undefined);
  });
  $('switchover-form').addEventListener('submit', (event) => {
    event.preventDefault();
    switchover($('switchover-target').value || null);
  });
  try {
    state.config = await api('', '/ui/config.json', { auth: false });
  } catch (error) {
    setStatus(`Cannot load /ui/config.json: ${error.message}`, 'bad');
    return;
  }
  if (state.config.authRequired && !state.token) showAuth();
  state.controlUrl = state.config.devControl || null;
  // Every member is polled at its own client URL (the nodes allow each other's origins, and
  // their localhost / 127.0.0.1 aliases): the page does not depend on the node that served it.
  for (const m of state.config.members) member(m.id, m.client);
  loop(pollTopology, TOPOLOGY_INTERVAL_MS);
  loop(pollHistoryAndEvents, HISTORY_INTERVAL_MS);
}

start();
