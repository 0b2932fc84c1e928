// The celerity monitor's page: plain JavaScript, no build step, no CDN. It reads
// the HTTP API next to it (relative paths, so it works under any base path) and
// follows the live updates (Server-Sent Events at api/live, read with fetch so a
// bearer token can go with them).

const STATES = ["PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED"];
const TOKEN_KEY = "celerity-monitor-token";
const FINAL = new Set(["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]);

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (text is always set as text, never as HTML). */
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

const SVG_NS = "http://www.w3.org/2000/svg";
const svg = (tag, attributes = {}, ...children) => {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

const badge = (state) => el("span", { class: `badge ${state}` }, state);
const time = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleTimeString() : "");
const short = (id) => (id.length > 13 ? `${id.slice(0, 8)}…` : id);
const fill = (tbody, rows, columns, emptyText) => {
  tbody.replaceChildren(
    ...(rows.length === 0 ? [el("tr", {}, el("td", { colspan: columns, class: "empty" }, emptyText))] : rows),
  );
};

let messageTimer;
const say = (text, isError = false) => {
  const box = $("#message");
  box.textContent = text;
  box.className = isError ? "message error" : "message";
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
};

// ---- the API -------------------------------------------------------------------

const authHeaders = () => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
};

const askForToken = () => {
  const token = window.prompt("This monitor asks for a token (celerity monitor --auth-token-file):");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    return true;
  }
  return false;
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const api = async (method, path, body) => {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", ...authHeaders() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !response.headers.get("www-authenticate")?.startsWith("Basic") && askForToken())
    return api(method, path, body);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.message || `${response.status} ${response.statusText}`);
  return data;
};

const act = async (what, method, path, body) => {
  try {
    const answer = await api(method, path, body);
    say(what(answer));
    refreshSoon();
    return answer;
  } catch (error) {
    say(error.message, true);
    return undefined;
  }
};

// ---- live updates --------------------------------------------------------------

let snapshot;

const setStatus = (status) => {
  const badgeNode = $("#live-status");
  badgeNode.textContent = status;
  badgeNode.className = `status ${status}`;
};

const onFrame = (frame) => {
  let type = "message";
  let data = "";
  for (const line of frame.split("\n")) {
    if (line.startsWith("event: ")) type = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (type === "update") {
    snapshot = JSON.parse(data);
    renderLive();
  } else if (type === "problem") say(JSON.parse(data).message, true);
};

const followLive = async () => {
  setStatus("connecting");
  try {
    const response = await fetch("api/live", { headers: authHeaders() });
    if (response.status === 401) {
      setStatus("unauthorized");
      if (!response.headers.get("www-authenticate")?.startsWith("Basic") && askForToken()) return followLive();
      return;
    }
    if (!response.ok || response.body === null) throw new Error(`live updates: ${response.status}`);
    setStatus("live");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        onFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch {
    // reconnect below
  }
  setStatus("reconnecting");
  setTimeout(followLive, 2000);
};

// ---- charts --------------------------------------------------------------------

const drawChart = (node, series, lines) => {
  const width = 600;
  const height = 150;
  const top = 14;
  const max = Math.max(1, ...lines.flatMap((line) => series.map(line.value).filter((v) => v !== null)));
  const x = (i) => (i / Math.max(1, series.length - 1)) * width;
  const y = (v) => height - 4 - (v / max) * (height - top - 8);
  const children = [
    svg("line", { x1: 0, y1: y(max), x2: width, y2: y(max), stroke: "#eef1f5" }),
    svg("line", { x1: 0, y1: y(0), x2: width, y2: y(0), stroke: "#dde2e8" }),
    svg("text", { x: 4, y: 11, "font-size": 10, fill: "#6b7685" }, max >= 100 ? Math.round(max) : max.toFixed(1)),
  ];
  for (const line of lines) {
    let d = "";
    let pen = false;
    series.forEach((point, i) => {
      const v = line.value(point);
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      // A second between two empty ones is no line at all: mark it.
      const before = i > 0 ? line.value(series[i - 1]) : null;
      const after = i < series.length - 1 ? line.value(series[i + 1]) : null;
      if (before === null && after === null)
        children.push(svg("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: line.color }));
    });
    children.push(svg("path", { d, fill: "none", stroke: line.color, "stroke-width": 1.6 }));
  }
  node.replaceChildren(...children);
};

// ---- the overview --------------------------------------------------------------

const renderCounts = () => {
  const cards = STATES.map((state) =>
    el(
      "div",
      { class: "card", "data-state": state },
      el("div", { class: "value" }, snapshot.counts[state] ?? 0),
      el("div", { class: "label" }, state.toLowerCase()),
    ),
  );
  const last = snapshot.series.at(-2) ?? { succeeded: 0, failed: 0 };
  cards.push(
    el(
      "div",
      { class: "card" },
      el("div", { class: "value" }, snapshot.known),
      el("div", { class: "label" }, "tasks remembered"),
    ),
    el(
      "div",
      { class: "card" },
      el("div", { class: "value" }, last.succeeded + last.failed),
      el("div", { class: "label" }, "tasks/s (last second)"),
    ),
  );
  $("#state-counts").replaceChildren(...cards);
};

const renderWorkers = () => {
  const rows = snapshot.workers.map((worker) =>
    el(
      "tr",
      { "data-worker": worker.name },
      el("td", {}, worker.name),
      el("td", { class: "worker-status" }, badge(worker.status)),
      el("td", {}, worker.lastHeartbeat ? new Date(worker.lastHeartbeat).toLocaleTimeString() : "never"),
      el("td", { class: "num active" }, worker.active),
      el("td", { class: "num processed" }, worker.processed),
      el(
        "td",
        {},
        worker.pool ? `${worker.pool.running}/${worker.pool.concurrency} running, ${worker.pool.waiting} waiting` : "",
      ),
      el("td", {}, worker.queues.join(", ")),
      el("td", {}, worker.loadavg.map((load) => load.toFixed(2)).join(" ")),
    ),
  );
  fill($("#workers tbody"), rows, 8, "No worker has sent an event yet: start workers with --events.");
};

const queueAction = (queue, action) => {
  if (action === "purge" && !window.confirm(`Delete every message waiting in ${queue}?`)) return;
  void act(
    (answer) => (action === "purge" ? `Purged ${answer.purged} message(s) from ${queue}` : `${queue}: ${action}d`),
    "POST",
    `api/queues/${encodeURIComponent(queue)}/${action}`,
  );
};

const renderQueues = () => {
  const problem = $("#queue-error");
  problem.hidden = snapshot.queueError === undefined;
  problem.textContent = snapshot.queueError ?? "";
  const queues = (snapshot.queues ?? []).filter((queue) => !queue.isDeadLetterQueue);
  const rows = queues.map((queue) =>
    el(
      "tr",
      { "data-queue": queue.name },
      el("td", {}, queue.name),
      el("td", { class: "num ready" }, queue.ready),
      el("td", { class: "num unacked" }, queue.unacked),
      el("td", { class: "num delayed" }, queue.delayed),
      el(
        "td",
        { class: "num dead-lettered" },
        queue.deadLettered > 0
          ? el("a", { href: `#/dead-letters/${encodeURIComponent(queue.name)}` }, queue.deadLettered)
          : 0,
      ),
      el("td", { class: "num" }, queue.consumers),
      el("td", { class: "state" }, badge(queue.paused ? "paused" : "running")),
      el(
        "td",
        {},
        el(
          "button",
          {
            type: "button",
            class: "toggle",
            onclick: () => queueAction(queue.name, queue.paused ? "resume" : "pause"),
          },
          queue.paused ? "Resume" : "Pause",
        ),
        " ",
        el("button", { type: "button", class: "danger", onclick: () => queueAction(queue.name, "purge") }, "Purge"),
      ),
    ),
  );
  fill($("#queues tbody"), rows, 8, snapshot.queues === null ? "This broker cannot list its queues." : "No queue yet.");
};

const renderOverview = () => {
  renderCounts();
  drawChart($("#chart-throughput"), snapshot.series, [
    { value: (point) => point.succeeded, color: "#1f9d55" },
    { value: (point) => point.failed, color: "#d64545" },
  ]);
  drawChart($("#chart-latency"), snapshot.series, [
    { value: (point) => point.maxRuntimeMs, color: "#d88a00" },
    { value: (point) => point.meanRuntimeMs, color: "#1f9d55" },
  ]);
  renderWorkers();
  renderQueues();
};

// ---- the task list -------------------------------------------------------------

const loadTasks = async () => {
  const query = new URLSearchParams({ limit: "200" });
  const state = $("#filter-state").value;
  const name = $("#filter-name").value.trim();
  const id = $("#filter-id").value.trim();
  if (state) query.set("state", state);
  if (name) query.set("name", name);
  if (id) query.set("id", id);
  const { tasks, known } = await api("GET", `api/tasks?${query}`);
  $("#task-total").textContent = `${tasks.length} shown of ${known} remembered`;
  const rows = tasks.map((task) =>
    el(
      "tr",
      { "data-task-id": task.id, "data-state": task.state },
      el(
        "td",
        { class: "id" },
        el("a", { href: `#/tasks/${encodeURIComponent(task.id)}`, title: task.id }, short(task.id)),
      ),
      el("td", { class: "name" }, task.name),
      el("td", { class: "state" }, badge(task.state)),
      el("td", {}, task.hostname ?? ""),
      el("td", {}, el("code", {}, task.args ?? "")),
      el("td", {}, time(task.receivedAt ?? task.sentAt)),
      el("td", { class: "num" }, task.runtime === undefined ? "" : `${(task.runtime * 1000).toFixed(1)} ms`),
    ),
  );
  fill($("#tasks tbody"), rows, 7, "No task matches.");
};

// ---- a task's page -------------------------------------------------------------

/** Columns by depth (longest path from a first step), rows in step order. */
const layOut = (steps) => {
  const depth = new Map();
  const depthOf = (step) => {
    if (depth.has(step.step)) return depth.get(step.step);
    const d = step.after.length === 0 ? 0 : 1 + Math.max(...step.after.map((parent) => depthOf(steps[parent])));
    depth.set(step.step, d);
    return d;
  };
  const rows = new Map();
  return steps.map((step) => {
    const column = depthOf(step);
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return { step, x: 16 + column * 190, y: 16 + row * 58 };
  });
};

const drawWorkflow = (workflow, currentId) => {
  const placed = layOut(workflow.steps);
  const width = Math.max(...placed.map((p) => p.x)) + 176;
  const height = Math.max(...placed.map((p) => p.y)) + 56;
  const node = $("#workflow-graph");
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  node.setAttribute("width", String(width));
  node.setAttribute("height", String(height));
  const edges = placed.flatMap(({ step, x, y }) =>
    step.after.map((parent) => {
      const from = placed[parent];
      const x1 = from.x + 150;
      const y1 = from.y + 19;
      const y2 = y + 19;
      return svg("path", {
        d: `M${x1},${y1} C${x1 + 20},${y1} ${x - 20},${y2} ${x},${y2}`,
        "marker-end": "url(#arrow)",
      });
    }),
  );
  const boxes = placed.map(({ step, x, y }) =>
    svg(
      "g",
      {
        class: `step ${step.state}${step.id === currentId ? " current" : ""}`,
        "data-step": step.step,
        "data-state": step.state,
        "data-task-id": step.id,
        transform: `translate(${x},${y})`,
        onclick: () => {
          location.hash = `#/tasks/${encodeURIComponent(step.id)}`;
        },
      },
      svg("title", {}, `${step.task} ${step.id}: ${step.state}`),
      svg("rect", { width: 150, height: 38, rx: 5 }),
      svg("text", { x: 8, y: 16 }, step.task.length > 20 ? `${step.task.slice(0, 19)}…` : step.task),
      svg("text", { x: 8, y: 31, class: "state" }, step.state),
    ),
  );
  const defs = svg(
    "defs",
    {},
    svg(
      "marker",
      { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa5b4", stroke: "none" }),
    ),
  );
  node.replaceChildren(defs, ...edges, ...boxes);
};

let shownTask;

const loadTask = async (id) => {
  $("#task-id").textContent = id;
  let task;
  try {
    task = await api("GET", `api/tasks/${encodeURIComponent(id)}`);
  } catch (error) {
    $("#task-missing").textContent = error.message;
    $("#task-missing").hidden = false;
    $("#task-body").hidden = true;
    return;
  }
  shownTask = task;
  $("#task-missing").hidden = true;
  $("#task-body").hidden = false;
  $("#task-name").textContent = task.name;
  const state = $("#task-state");
  state.textContent = task.state;
  state.className = `badge ${task.state}`;
  $("#task-worker").textContent = task.worker ?? "";
  $("#task-retries").textContent = String(task.retries);
  $("#task-args").textContent = task.args ?? "";
  $("#task-result").textContent = "result" in task ? JSON.stringify(task.result) : "";
  $("#task-runtime").textContent = task.runtime === undefined ? "" : `${(task.runtime * 1000).toFixed(1)} ms`;
  $("#task-revoke").hidden = FINAL.has(task.state);
  $("#task-error-box").hidden = task.error === undefined;
  if (task.error !== undefined) {
    $("#task-error").textContent = `${task.error.name}: ${task.error.message}`;
    $("#task-traceback").textContent = task.error.traceback ?? "(no traceback)";
  }
  const timeline = task.timeline.map((entry) =>
    el(
      "tr",
      { "data-event": entry.type },
      el("td", {}, new Date(entry.timestamp * 1000).toLocaleTimeString()),
      el("td", {}, entry.type),
      el("td", {}, entry.hostname),
      el("td", {}, el("code", {}, entry.detail ?? "")),
    ),
  );
  fill($("#task-timeline tbody"), timeline, 4, "No event of this task was seen (workers send them with --events).");
  $("#task-workflow-box").hidden = task.workflow === undefined;
  if (task.workflow !== undefined) {
    $("#task-workflow-id").textContent = task.workflow.id;
    try {
      drawWorkflow(await api("GET", `api/workflows/${encodeURIComponent(task.workflow.id)}`), task.id);
    } catch (error) {
      say(error.message, true);
    }
  }
};

// ---- dead letters and rate limits ----------------------------------------------

const loadDeadLetters = async (queue) => {
  const select = $("#dead-letter-select");
  const queues = (snapshot?.queues ?? (await api("GET", "api/queues")).queues).filter(
    (item) => !item.isDeadLetterQueue && item.deadLetterQueue !== "",
  );
  const chosen = queue || select.value || queues.find((item) => item.deadLettered > 0)?.name || queues[0]?.name || "";
  select.replaceChildren(
    ...queues.map((item) =>
      el("option", { value: item.name, selected: item.name === chosen }, `${item.name} (${item.deadLettered})`),
    ),
  );
  if (!chosen) {
    fill($("#dead-letters tbody"), [], 6, "No queue yet.");
    return;
  }
  const { deadLetters } = await api("GET", `api/queues/${encodeURIComponent(chosen)}/dead-letters`);
  const rows = deadLetters.map((letter) =>
    el(
      "tr",
      { "data-letter": letter.id },
      el("td", {}, el("input", { type: "checkbox", class: "pick", value: letter.id, "aria-label": "select" })),
      el("td", { class: "id" }, el("a", { href: `#/tasks/${encodeURIComponent(letter.id)}` }, short(letter.id))),
      el("td", {}, letter.task ?? "(not a task)"),
      el("td", {}, letter.queue),
      el("td", {}, letter.reason),
      el("td", {}, new Date(letter.at).toLocaleString()),
    ),
  );
  fill($("#dead-letters tbody"), rows, 6, `No dead letter in ${chosen}.`);
};

const deadLetterAction = (action) => {
  const queue = $("#dead-letter-select").value;
  const ids = [...document.querySelectorAll("#dead-letters .pick:checked")].map((box) => box.value);
  if (!queue || ids.length === 0) return say("Select dead letters first.", true);
  if (action === "discard" && !window.confirm(`Delete ${ids.length} dead letter(s) for good?`)) return;
  void act(
    (answer) => `${action === "requeue" ? "Requeued" : "Discarded"} ${answer.requeued ?? answer.discarded}`,
    "POST",
    `api/queues/${encodeURIComponent(queue)}/dead-letters/${action}`,
    { ids },
  );
};

const loadRateLimits = async () => {
  const { changes, waiting } = await api("GET", "api/rate-limits");
  fill(
    $("#rate-limit-changes tbody"),
    changes.map((change) =>
      el(
        "tr",
        {},
        el("td", {}, change.task),
        el("td", {}, change.limit === null ? "none" : JSON.stringify(change.limit)),
        el("td", {}, new Date(change.at).toLocaleString()),
      ),
    ),
    3,
    "No limit changed through this monitor.",
  );
  fill(
    $("#rate-limit-waiting tbody"),
    Object.entries(waiting).flatMap(([worker, held]) =>
      held.map((item) =>
        el("tr", {}, el("td", {}, worker), el("td", {}, item.task), el("td", { class: "id" }, item.id)),
      ),
    ),
    3,
    "No task waits for a token.",
  );
};

// ---- views and routing ---------------------------------------------------------

let route = { view: "overview" };

const routeOf = (hash) => {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "tasks" && parts[1]) return { view: "task", id: parts[1] };
  if (parts[0] === "tasks") return { view: "tasks" };
  if (parts[0] === "dead-letters") return { view: "dead-letters", queue: parts[1] };
  if (parts[0] === "rate-limits") return { view: "rate-limits" };
  return { view: "overview" };
};

const refreshView = async () => {
  try {
    if (route.view === "overview" && snapshot) renderOverview();
    else if (route.view === "tasks") await loadTasks();
    else if (route.view === "task") await loadTask(route.id);
    else if (route.view === "dead-letters") await loadDeadLetters(route.queue);
    else if (route.view === "rate-limits") await loadRateLimits();
  } catch (error) {
    say(error.message, true);
  }
};

let refreshing = false;
let refreshAgain = false;
/** Refresh the shown view, one refresh at a time; a request for one meanwhile runs once after it. */
const refreshSoon = async () => {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    await refreshView();
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      void refreshSoon();
    }
  }
};

const renderLive = () => {
  if (route.view === "overview") renderOverview();
  // A finished task's page does not change; the list and an unfinished task do.
  else if (route.view === "tasks" || (route.view === "task" && !FINAL.has(shownTask?.state))) void refreshSoon();
};

const show = () => {
  route = routeOf(location.hash);
  shownTask = undefined;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${route.view}`;
  for (const link of document.querySelectorAll("nav a"))
    link.classList.toggle("active", link.dataset.view === (route.view === "task" ? "tasks" : route.view));
  void refreshSoon();
};

const start = () => {
  const stateFilter = $("#filter-state");
  for (const state of STATES) stateFilter.append(el("option", { value: state }, state));
  for (const input of ["#filter-state", "#filter-name", "#filter-id"])
    $(input).addEventListener("input", () => void refreshSoon());
  $("#task-filters").addEventListener("submit", (event) => event.preventDefault());
  $("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#search-id").value.trim();
    if (id) location.hash = `#/tasks/${encodeURIComponent(id)}`;
  });
  $("#task-revoke").addEventListener("click", () => {
    if (shownTask === undefined) return;
    void act(() => `Revoked ${shownTask.id}`, "POST", `api/tasks/${encodeURIComponent(shownTask.id)}/revoke`, {});
  });
  $("#dead-letter-select").addEventListener("change", () => {
    location.hash = `#/dead-letters/${encodeURIComponent($("#dead-letter-select").value)}`;
  });
  $("#dead-letter-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("#dead-letters .pick")) box.checked = event.target.checked;
  });
  $("#dead-letter-requeue").addEventListener("click", () => deadLetterAction("requeue"));
  $("#dead-letter-discard").addEventListener("click", () => deadLetterAction("discard"));
  $("#rate-limit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const task = $("#rate-limit-task").value.trim();
    const rate = $("#rate-limit-rate").value.trim();
    void act(() => `Rate limit of ${task}: ${rate || "none"}`, "PUT", `api/rate-limits/${encodeURIComponent(task)}`, {
      rate: rate === "" ? null : rate,
    });
  });
  window.addEventListener("hashchange", show);
  show();
  void followLive();
};

start();
