/**
 * The funcX dashboard page: plain DOM and uPlot, bundled by esbuild (web/build.mjs). It talks only to
 * /ui/api on the same origin: the session is an HttpOnly cookie, the CSRF token is kept in memory and sent in
 * X-CSRF-Token on state-changing requests, and live updates come by server-sent events (no polling loop).
 * Untrusted text is only ever set through textContent.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

interface Sample { t: number; backlog: number; pending: number; managers: number; workersBusy: number; workersIdle: number; blocks: number; blocksRunning: number; blocksPending: number; success: number; failed: number }
interface BlockHistory { id: string; jobId: string | null; nodes: number; firstSeen: number; lastSeen: number; state: string; detail?: string; states: Array<{ state: string; at: number }>; ended: boolean }
interface Daemon { host: string; pid: number; startedAt: number; version: string }
interface Report { backlog: number; pending: number; managers: Array<{ workers: number }>; managerCount?: number; blocks: Array<{ busyWorkers: number; idleWorkers: number }>; daemon?: Daemon }
interface EndpointView {
  endpointId: string; name: string; owner: string; mine: boolean; state: string; lastSeen: number | null; group: string | null; queued: number;
  report: Report | null; reportError: string | null; blocks: BlockHistory[]; decisions: Array<{ at: number; reason: string; kinds: string[] }>;
}

let csrf = '';
const main = document.getElementById('main')!;

type Child = Node | string | null | undefined | false;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

const nodes = (...children: Child[]): Array<Node | string> => children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false);

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const data = (await r.json().catch(() => ({}))) as T & { message?: string };
  if (!r.ok) throw Object.assign(new Error(data.message ?? `${method} ${path}: ${r.status}`), { status: r.status });
  return data;
}

const when = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleTimeString() : '-');
function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

// ---- sign-in -----------------------------------------------------------------------------------------

function showSignIn(message = ''): void {
  document.getElementById('signout')!.hidden = true;
  document.getElementById('who')!.textContent = '';
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'your funcX token' });
  const error = el('p', { class: 'error', id: 'signin-error' }, message);
  const form = el('form', { class: 'signin card', id: 'signin' }, el('h2', {}, 'Sign in'), el('p', {}, 'Paste your token once; the browser keeps only a session cookie.'), input, el('button', { type: 'submit' }, 'Sign in'), error);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    api<{ user: string; csrf: string }>('POST', '/ui/api/session', { token: input.value })
      .then(() => start())
      .catch((err: Error) => (error.textContent = err.message));
  });
  main.replaceChildren(form);
}

async function start(): Promise<void> {
  let session: { user: string; csrf: string; periodMs: number };
  try {
    session = await api('GET', '/ui/api/session');
  } catch {
    showSignIn();
    return;
  }
  csrf = session.csrf;
  document.getElementById('who')!.textContent = `signed in as ${session.user}`;
  const signout = document.getElementById('signout')!;
  signout.hidden = false;
  signout.onclick = () => void api('POST', '/ui/api/logout').then(() => (events?.close(), showSignIn('Signed out.')));
  const tabs: Record<string, () => Promise<void>> = { Endpoints: showEndpoints, Tasks: showTasks, 'Functions and groups': showFunctions };
  const nav = el('nav');
  const view = el('div', { id: 'view' });
  for (const [name, show] of Object.entries(tabs)) {
    const b = el('button', { 'data-tab': name }, name);
    b.onclick = () => {
      for (const x of nav.children) x.setAttribute('aria-selected', String(x === b));
      view.replaceChildren();
      current = view;
      void show().catch((err: Error) => view.append(el('p', { class: 'error' }, err.message)));
    };
    nav.append(b);
  }
  main.replaceChildren(nav, view);
  current = view;
  (nav.firstChild as HTMLButtonElement).click();
}

let current: HTMLElement;
let events: EventSource | null = null;

// ---- endpoints: cards, block timelines, live charts ---------------------------------------------------

interface Card { root: HTMLElement; samples: Sample[]; charts: uPlot[]; rangeMs: number; update: (e: EndpointView) => void }
const cards = new Map<string, Card>();

async function showEndpoints(): Promise<void> {
  cards.clear();
  const { endpoints } = await api<{ endpoints: EndpointView[] }>('GET', '/ui/api/endpoints');
  const list = el('div', { id: 'endpoints' });
  if (endpoints.length === 0) list.append(el('p', { class: 'muted' }, 'No endpoints yet: start one with `funcx-endpoint start`.'));
  current.append(list);
  for (const e of endpoints) {
    const { samples } = await api<{ samples: Sample[] }>('GET', `/ui/api/endpoints/${e.endpointId}/history`);
    const card = endpointCard(e, samples);
    cards.set(e.endpointId, card);
    list.append(card.root);
  }
  events?.close();
  events = new EventSource('/ui/api/events');
  events.addEventListener('endpoint', (ev) => {
    const { endpoint, sample } = JSON.parse((ev as MessageEvent<string>).data) as { endpoint: EndpointView; sample?: Sample };
    const card = cards.get(endpoint.endpointId);
    if (!card) return; // a new endpoint appears on the next visit of the tab
    if (sample) {
      card.samples.push(sample);
      if (card.samples.length > 4000) card.samples.splice(0, card.samples.length - 4000);
    }
    card.update(endpoint);
  });
}

function rates(samples: Sample[], from: number): [number[], number[], number[]] {
  const t: number[] = [];
  const ok: number[] = [];
  const bad: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (b.t < from) continue;
    const dt = Math.max(0.001, (b.t - a.t) / 1000);
    t.push(b.t / 1000);
    // Counters restart with the service: never draw a negative rate.
    ok.push(Math.max(0, b.success - a.success) / dt);
    bad.push(Math.max(0, b.failed - a.failed) / dt);
  }
  return [t, ok, bad];
}

function endpointCard(initial: EndpointView, history: Sample[]): Card {
  const root = el('section', { class: 'card endpoint', 'data-endpoint-id': initial.endpointId, 'data-endpoint-name': initial.name });
  const title = el('h2');
  const facts = el('div', { class: 'facts' });
  const range = el('select', { class: 'range' }, el('option', { value: '3600000' }, 'last hour'), el('option', { value: '300000' }, 'last 5 minutes'));
  const rateBox = el('div', { class: 'chart chart-rate', 'data-points': '0', 'data-completed': '0', 'data-failed': '0' });
  const loadBox = el('div', { class: 'chart chart-load', 'data-points': '0' });
  const blocksBox = el('div', { class: 'blocks' });
  const decisionsBox = el('div', { class: 'decisions' });
  root.append(title, facts, el('div', {}, 'Charts: ', range), el('div', { class: 'charts' }, rateBox, loadBox), el('h3', {}, 'Blocks'), blocksBox, el('h3', {}, 'Strategy'), decisionsBox);
  const width = Math.min(560, Math.max(300, (main.clientWidth || 1000) / 2 - 40));
  const rateChart = new uPlot({
    title: 'tasks/s', width, height: 180,
    series: [{}, { label: 'completed', stroke: '#2a8a4a' }, { label: 'failed', stroke: '#b33' }],
    axes: [{}, { size: 50 }],
  }, [[], [], []], rateBox);
  const loadChart = new uPlot({
    title: 'backlog, workers, blocks', width, height: 180,
    series: [{}, { label: 'backlog', stroke: '#c80' }, { label: 'busy workers', stroke: '#2a8a4a' }, { label: 'idle workers', stroke: '#7ab' }, { label: 'blocks', stroke: '#446' }],
    axes: [{}, { size: 50 }],
  }, [[], [], [], [], []], loadBox);
  const card: Card = { root, samples: [...history], charts: [rateChart, loadChart], rangeMs: 3_600_000, update: () => {} };
  const draw = (): void => {
    const from = Date.now() - card.rangeMs;
    const s = card.samples.filter((x) => x.t >= from);
    rateChart.setData(rates(card.samples, from));
    loadChart.setData([s.map((x) => x.t / 1000), s.map((x) => x.backlog), s.map((x) => x.workersBusy), s.map((x) => x.workersIdle), s.map((x) => x.blocks)]);
    const last = card.samples[card.samples.length - 1];
    rateBox.dataset.points = String(s.length);
    rateBox.dataset.completed = String(last?.success ?? 0);
    rateBox.dataset.failed = String(last?.failed ?? 0);
    loadBox.dataset.points = String(s.length);
  };
  range.onchange = () => ((card.rangeMs = Number(range.value)), draw());
  card.update = (e: EndpointView) => {
    root.dataset.state = e.state;
    title.replaceChildren(e.name, ' ', el('span', { class: `badge ${e.state}` }, e.state), e.mine ? '' : el('span', { class: 'muted' }, ` shared by ${e.owner}`));
    const r = e.report;
    const busy = r?.blocks.reduce((n, b) => n + b.busyWorkers, 0) ?? 0;
    const idle = r?.blocks.reduce((n, b) => n + b.idleWorkers, 0) ?? 0;
    facts.replaceChildren(...nodes(
      el('span', {}, `id ${e.endpointId}`),
      r?.daemon ? el('span', { class: 'host' }, `host ${r.daemon.host} (pid ${r.daemon.pid})`) : null,
      r?.daemon ? el('span', {}, `up ${duration(Date.now() - r.daemon.startedAt)}, version ${r.daemon.version}`) : null,
      el('span', {}, `queued at the service ${e.queued}`),
      r ? el('span', { class: 'backlog' }, `backlog ${r.backlog}, in hand ${r.pending}`) : null,
      r ? el('span', {}, `managers ${r.managerCount ?? r.managers.length}, workers ${busy} busy / ${idle} idle`) : null,
      e.reportError && e.state === 'Active' ? el('span', { class: 'error' }, e.reportError) : null,
      e.group ? el('span', {}, `group ${e.group}`) : null,
    ));
    blocksBox.replaceChildren(blockTimeline(e.blocks));
    blocksBox.dataset.count = String(e.blocks.length);
    decisionsBox.replaceChildren(
      e.decisions.length === 0
        ? el('p', { class: 'muted' }, e.mine ? 'no decision yet' : 'shown to the owner only')
        : el('table', {}, ...e.decisions.slice(-8).reverse().map((d) => el('tr', {}, el('td', {}, when(d.at)), el('td', {}, d.kinds.join(', ')), el('td', {}, d.reason)))),
    );
    draw();
  };
  card.update(initial);
  return card;
}

/** One row per block: a bar from first seen to last seen (or now), coloured by state. */
function blockTimeline(blocks: BlockHistory[]): HTMLElement {
  if (blocks.length === 0) return el('p', { class: 'muted' }, 'no blocks');
  const now = Date.now();
  const start = Math.min(...blocks.map((b) => b.firstSeen));
  const span = Math.max(1, now - start);
  const table = el('table', { class: 'block-timeline' }, el('tr', {}, el('th', {}, 'Block'), el('th', {}, 'Job'), el('th', {}, 'State'), el('th', { style: 'width:50%' }, 'Timeline'), el('th', {}, 'Why')));
  for (const b of blocks.slice(-20)) {
    const bar = el('div', { class: 'timeline' });
    b.states.forEach((s, i) => {
      const end = i + 1 < b.states.length ? b.states[i + 1].at : b.ended ? s.at + 1 : now;
      const seg = el('span', { class: `seg-${s.state}`, title: `${s.state} from ${when(s.at)}` });
      seg.style.left = `${((s.at - start) / span) * 100}%`;
      seg.style.width = `${Math.max(0.5, ((end - s.at) / span) * 100)}%`;
      bar.append(seg);
    });
    table.append(el('tr', { class: 'block', 'data-block-id': b.id, 'data-state': b.state }, el('td', {}, b.id), el('td', {}, b.jobId ?? '-'), el('td', {}, el('span', { class: `badge ${b.state}` }, b.state)), el('td', {}, bar), el('td', {}, b.detail ?? '')));
  }
  return table;
}

// ---- tasks ----------------------------------------------------------------------------------------------

interface TaskRow { taskId: string; endpointId: string; functionId: string | null; state: string; failed: boolean | null; resultBytes: number; createdAt: number; updatedAt: number }
interface TaskDetail extends TaskRow { transitions: Array<{ state: string; actor: string; at: number }>; error?: { type: string; message: string; stack?: string }; value?: unknown }

async function showTasks(): Promise<void> {
  const q = el('input', { type: 'search', id: 'task-search', placeholder: 'task, function or endpoint id prefix, or a state' });
  const state = el('select', { id: 'task-state' }, el('option', { value: '' }, 'any state'), ...['waiting-for-endpoint', 'waiting-for-nodes', 'running', 'success', 'failed'].map((s) => el('option', { value: s }, s)));
  const table = el('table', { id: 'tasks' });
  const detail = el('div', { id: 'task-detail' });
  const form = el('form', {}, q, state, el('button', { type: 'submit' }, 'Search'));
  const load = async (): Promise<void> => {
    const params = new URLSearchParams({ q: q.value, state: state.value });
    const { tasks } = await api<{ tasks: TaskRow[] }>('GET', `/ui/api/tasks?${params}`);
    table.replaceChildren(el('tr', {}, ...['Task', 'State', 'Function', 'Endpoint', 'Created', 'Updated'].map((h) => el('th', {}, h))));
    for (const t of tasks) {
      const row = el('tr', { class: 'clickable task', 'data-task-id': t.taskId, 'data-state': t.state },
        el('td', {}, t.taskId.slice(0, 8)), el('td', {}, el('span', { class: `badge ${t.state}` }, t.state)), el('td', {}, t.functionId?.slice(0, 8) ?? '(shell/mpi)'),
        el('td', {}, t.endpointId.slice(0, 8)), el('td', {}, when(t.createdAt)), el('td', {}, when(t.updatedAt)));
      row.onclick = () => void showTask(t.taskId, detail);
      table.append(row);
    }
    table.dataset.count = String(tasks.length);
  };
  form.addEventListener('submit', (ev) => (ev.preventDefault(), void load()));
  current.append(form, table, detail);
  await load();
}

async function showTask(id: string, box: HTMLElement): Promise<void> {
  const t = await api<TaskDetail>('GET', `/ui/api/tasks/${id}`);
  const first = t.transitions[0]?.at ?? t.createdAt;
  const last = Math.max(t.transitions[t.transitions.length - 1]?.at ?? first, first + 1);
  const bar = el('div', { class: 'timeline' });
  t.transitions.forEach((s, i) => {
    const end = i + 1 < t.transitions.length ? t.transitions[i + 1].at : last;
    const seg = el('span', { class: `seg-${s.state}`, title: `${s.state} (${s.actor}) at ${when(s.at)}` });
    seg.style.left = `${((s.at - first) / (last - first)) * 100}%`;
    seg.style.width = `${Math.max(1, ((end - s.at) / (last - first)) * 100)}%`;
    bar.append(seg);
  });
  box.replaceChildren(el('section', { class: 'card', 'data-task-id': t.taskId },
    el('h2', {}, `Task ${t.taskId} `, el('span', { class: `badge ${t.state}` }, t.state)),
    bar,
    el('table', { class: 'transitions' }, ...t.transitions.map((s) => el('tr', {}, el('td', {}, s.state), el('td', {}, s.actor), el('td', {}, `${new Date(s.at).toLocaleTimeString()} (+${s.at - first} ms)`)))),
    t.error ? el('div', { class: 'task-error' }, el('p', { class: 'error' }, `${t.error.type}: ${t.error.message}`), t.error.stack ? el('pre', {}, t.error.stack) : null) : null,
    'value' in t ? el('div', { class: 'task-value' }, el('p', {}, `Result (${t.resultBytes} bytes):`), el('pre', {}, JSON.stringify(t.value, null, 2))) : null,
    !('value' in t) && !t.error && t.resultBytes > 0 ? el('p', { class: 'muted' }, `result of ${t.resultBytes} bytes: fetch it with the SDK`) : null,
  ));
}

// ---- functions and groups (read-only) -------------------------------------------------------------------

async function showFunctions(): Promise<void> {
  const [{ functions }, { groups }] = await Promise.all([
    api<{ functions: Array<{ functionId: string; name: string; owner: string; group: string | null; createdAt: number }> }>('GET', '/ui/api/functions'),
    api<{ groups: Array<{ groupId: string; name: string; owner: string; members: string[] }> }>('GET', '/ui/api/groups'),
  ]);
  current.append(
    el('h2', {}, 'Functions'),
    el('table', { id: 'functions' }, el('tr', {}, ...['Name', 'Id', 'Owner', 'Group', 'Registered'].map((h) => el('th', {}, h))),
      ...functions.map((f) => el('tr', {}, el('td', {}, f.name), el('td', {}, f.functionId), el('td', {}, f.owner), el('td', {}, f.group ?? '-'), el('td', {}, new Date(f.createdAt).toLocaleString())))),
    el('h2', {}, 'Groups'),
    el('table', { id: 'groups' }, el('tr', {}, ...['Name', 'Owner', 'Members'].map((h) => el('th', {}, h))),
      ...groups.map((g) => el('tr', {}, el('td', {}, g.name), el('td', {}, g.owner), el('td', {}, g.members.join(', ') || '-')))),
  );
}

void start();
