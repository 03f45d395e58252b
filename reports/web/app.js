// The fleetlab report view. The same script runs the live page (records streamed over a websocket from the
// hub) and the self-contained HTML report (records embedded in the page). It keeps a model of the run reduced
// from the records and draws it: runs and scenarios with their status, per deployment the progress, counts, a
// throughput chart and a lane per device through its steps (grouped for large fleets, drawn only where
// visible), fault markers, and each board's console.
"use strict";

(function () {
  const ROW = 16;              // lane height, px
  const LABEL = 118;           // lane label width, px
  const GROUP_OVER = 200;      // more devices than this: lanes are grouped
  const MAX_CONSOLE = 2000;    // console lines kept per board
  const MAX_FAULTS = 500;      // fault records kept per scenario

  const OUTCOME = {SUCCEEDED: "ok", FAILED: "fail", REJECTED: "fail", TIMED_OUT: "timeout", CANCELED: "cancel", REMOVED: "cancel"};
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const COLORS = {
    ok: color("--ok"), fail: color("--bad"), timeout: color("--warn"), cancel: color("--cancel"),
    run: color("--run"), queued: color("--queued"), stepA: color("--step-a"), stepB: color("--step-b"),
  };
  const STATE_ORDER = ["ok", "fail", "timeout", "cancel", "run", "queued"];
  const BAND_ORDER = ["fail", "timeout", "cancel", "ok", "run", "queued"]; // a group lane's bands, top down
  const STATE_LABEL = {ok: "succeeded", fail: "failed", timeout: "timed out", cancel: "canceled", run: "in progress", queued: "queued"};

  const mode = document.body.dataset.mode === "live" ? "live" : "report";
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";

  let S;            // the model
  let sel = null;   // selected scenario key
  let userSel = false;
  const views = new Map(); // deployment key -> DOM view

  function fresh() {
    S = {pos: 0, stream: "", records: 0, runs: new Map(), scen: new Map(), order: [], conn: mode === "live" ? "connecting" : "report",
      reconnects: 0, behind: 0, ended: false};
    views.clear();
    sel = null; userSel = false;
    document.getElementById("detail").innerHTML = '<div class="empty">No scenario yet. Events appear here as the run produces them.</div>';
  }

  const ms = (t) => (t ? Date.parse(t) : NaN);

  function scenarioOf(r) {
    const name = r.scenario || "(outside any scenario)";
    const key = r.run + "\u0000" + name;
    let s = S.scen.get(key);
    if (!s) {
      s = {key, run: r.run, name, status: "running", detail: "", attrs: {}, description: "", deps: new Map(), depOrder: [],
        faults: [], consoles: new Map(), metrics: new Map(), records: 0, last: NaN, dialects: new Set()};
      S.scen.set(key, s);
      S.order.push(key);
      const run = runOf(r.run);
      run.scenarios.push(key);
    }
    return s;
  }

  function runOf(id) {
    let run = S.runs.get(id);
    if (!run) {
      run = {id, name: id, status: "running", scenarios: [], started: NaN, ended: NaN};
      S.runs.set(id, run);
    }
    return run;
  }

  function deploymentOf(s, r) {
    let d = s.deps.get(r.deployment);
    if (!d) {
      d = {key: s.key + "\u0000" + r.deployment, id: r.deployment, dialect: r.dialect || "", status: "", created: ms(r.time), last: ms(r.time),
        devices: new Map(), list: [], done: 0, counts: {}, completions: [], version: 0};
      s.deps.set(r.deployment, d);
      s.depOrder.push(r.deployment);
    }
    if (r.dialect) { d.dialect = r.dialect; s.dialects.add(r.dialect); }
    return d;
  }

  function deviceOf(d, name) {
    let v = d.devices.get(name);
    if (!v) {
      v = {name, segs: [], status: "QUEUED", code: "", end: NaN, outcome: "", released: NaN, faults: []};
      d.devices.set(name, v);
      d.list.push(v);
    }
    return v;
  }

  function step(d, v, name, t) {
    if (!name || v.outcome) return;
    const last = v.segs[v.segs.length - 1];
    if (last && last.step === name) return;
    v.segs.push({step: name, t0: t});
  }

  // apply reduces one record into the model.
  function apply(r) {
    S.records++;
    const t = ms(r.time);
    if (r.kind === "run.started") {
      const run = runOf(r.run); run.name = r.detail || r.run; run.started = ms(r.wall); run.status = "running"; return;
    }
    if (r.kind === "run.ended") {
      const run = runOf(r.run); run.ended = ms(r.wall); run.status = r.code || "passed"; return;
    }
    const s = scenarioOf(r);
    s.records++;
    if (!isNaN(t)) s.last = t;
    switch (r.kind) {
      case "scenario.started":
        s.description = r.detail || ""; Object.assign(s.attrs, r.attrs || {}); break;
      case "scenario.ended": {
        const rank = {passed: 1, failed: 2, error: 3};
        const o = rank[r.code] ? r.code : "error";
        if (s.status === "running" || rank[o] > rank[s.status]) s.status = o;
        if (r.detail) s.detail += (s.detail ? "\n" : "") + r.detail;
        break;
      }
      case "fault.armed": case "fault.injected": case "fault.recovered":
        if (s.faults.length < MAX_FAULTS) s.faults.push({t, kind: r.kind.slice(6), fault: r.fault || "", device: r.device || "", step: r.step || "", detail: r.detail || ""});
        if (r.device) for (const d of s.deps.values()) { const v = d.devices.get(r.device); if (v) { v.faults.push({t, kind: r.kind.slice(6)}); d.version++; } }
        break;
      case "metric":
        if (r.metric) s.metrics.set(r.metric + (r.device ? " " + r.device : ""), r.value || 0);
        break;
      case "console.line": {
        const board = r.device || "console";
        let lines = s.consoles.get(board);
        if (!lines) { lines = []; s.consoles.set(board, lines); }
        lines.push(r.detail || "");
        if (lines.length > MAX_CONSOLE) lines.splice(0, lines.length - MAX_CONSOLE);
        s.consoleDirty = true;
        break;
      }
    }
    if (!r.deployment) return;
    const d = deploymentOf(s, r);
    if (!isNaN(t)) { if (isNaN(d.created) || t < d.created) d.created = t; if (t > d.last) d.last = t; }
    d.version++;
    switch (r.kind) {
      case "deployment.created": case "deployment.state":
        d.status = r.to || d.status; break;
      case "execution.released": {
        const v = deviceOf(d, r.device); v.released = t; if (v.status === "QUEUED") v.status = "RELEASED"; break;
      }
      case "execution.step": case "agent.state":
        if (r.device) step(d, deviceOf(d, r.device), r.step, t); break;
      case "execution.state": {
        if (!r.device) break;
        const v = deviceOf(d, r.device);
        if (v.status === "QUEUED" && r.to === "QUEUED") break;
        if (r.to === "IN_PROGRESS" && !v.segs.length) v.segs.push({step: r.step || "started", t0: t});
        const was = v.outcome;
        v.status = r.to;
        if (r.code) v.code = r.code;
        const o = OUTCOME[r.to];
        if (o && !was) {
          v.outcome = o; v.end = t; d.done++;
          d.counts[r.to] = (d.counts[r.to] || 0) + 1;
          const cs = d.completions; // kept in time order: sources interleave
          let at = cs.length;
          while (at > 0 && cs[at - 1].t > t) at--;
          cs.splice(at, 0, {t, ok: o === "ok"});
        }
        break;
      }
    }
    if (r.device && r.kind !== "deployment.created") deviceOf(d, r.device);
  }

  // ---- rendering ----
  let scheduled = false, lastDraw = 0;
  function invalidate() {
    if (scheduled) return;
    scheduled = true;
    const wait = Math.max(0, (S.conn === "behind" ? 1000 : 200) - (performance.now() - lastDraw));
    setTimeout(() => requestAnimationFrame(() => { scheduled = false; lastDraw = performance.now(); draw(); }), wait);
  }

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const secs = (x) => (isNaN(x) ? "–" : (x / 1000).toFixed(Math.abs(x) < 10000 ? 2 : 1) + "s");
  const offset = (x) => (isNaN(x) ? "" : (x < 0 ? "−" : "+") + secs(Math.abs(x)));

  function totals() {
    const c = {scenarios: 0, passed: 0, failed: 0, error: 0, running: 0, devices: 0, "devices-done": 0, events: S.records};
    for (const s of S.scen.values()) {
      c.scenarios++; c[s.status]++;
      for (const d of s.deps.values()) { c.devices += d.list.length; c["devices-done"] += d.done; }
    }
    return c;
  }

  function draw() {
    const c = totals();
    for (const el of document.querySelectorAll("[data-count]")) el.textContent = c[el.dataset.count].toLocaleString("en");
    const conn = document.getElementById("conn");
    conn.dataset.state = S.conn;
    conn.textContent = {connecting: "connecting…", live: "live", behind: "catching up: " + S.behind.toLocaleString("en") + " behind",
      reconnecting: "reconnecting…", ended: "run finished", report: "report"}[S.conn] || S.conn;
    const runs = [...S.runs.values()];
    document.getElementById("run-title").textContent = runs.length
      ? runs.map((r) => r.name + " · " + r.id + (r.status === "running" ? " · running" : " · " + r.status)).join("   ")
      : "waiting for a run…";
    drawList();
    if (!userSel || !S.scen.has(sel)) {
      // The first running scenario, else the first that did not pass, else the last.
      const all = S.order.map((k) => S.scen.get(k));
      const pick = all.find((s) => s.status === "running") || all.find((s) => s.status !== "passed") || all[all.length - 1];
      sel = pick ? pick.key : null;
    }
    drawDetail();
    window.fleetlab.drawn++;
  }

  function drawList() {
    const nav = document.getElementById("scenarios");
    let html = "";
    for (const run of S.runs.values()) {
      html += '<h3>' + esc(run.name) + ' <span class="meta">' + esc(run.id) + '</span></h3>';
      for (const k of run.scenarios) {
        const s = S.scen.get(k);
        const meta = [s.attrs.seed ? "seed " + s.attrs.seed : "", [...s.dialects].join(", ")].filter(Boolean).join(" · ");
        html += '<div class="scn' + (k === sel ? " sel" : "") + '" data-key="' + esc(k) + '" data-status="' + s.status + '">' +
          '<span class="dot ' + s.status + '"></span><span class="text"><span class="name" title="' + esc(s.name) + '">' + esc(s.name) + '</span>' +
          '<span class="meta">' + esc(meta || s.status) + '</span></span></div>';
      }
    }
    if (nav.innerHTML !== html) nav.innerHTML = html;
  }

  document.addEventListener("click", (e) => {
    const scn = e.target.closest(".scn");
    if (scn) { sel = scn.dataset.key; userSel = true; invalidate(); return; }
    const tab = e.target.closest(".tabs button");
    if (tab) { const s = S.scen.get(sel); if (s) { s.board = tab.dataset.board; s.consoleDirty = true; invalidate(); } return; }
    const grp = e.target.closest("[data-action]");
    if (grp) {
      const v = views.get(grp.dataset.dep);
      if (!v) return;
      if (grp.dataset.action === "toggle") { v.grouped = !v.grouped; v.group = -1; }
      if (grp.dataset.action === "back") { v.group = -1; v.grouped = true; }
      v.lanes.scrollTop = 0; v.drawnVersion = -1; invalidate();
    }
  });

  let shown = null; // the scenario the detail shows
  function drawDetail() {
    const detail = document.getElementById("detail");
    const s = S.scen.get(sel);
    if (!s) return;
    if (shown !== s.key) {
      shown = s.key;
      views.clear();
      detail.innerHTML = '<div class="card" id="scenario-card"><h2><span class="badge"></span><span class="title"></span><span class="sub"></span></h2>' +
        '<div class="body"><div class="kv"></div><div class="problems"></div></div></div><div id="deps"></div>' +
        '<div class="card" id="faults-card" hidden><h2>Faults</h2><div class="body"><table class="faults"><thead><tr><th>time</th><th>fault</th><th>event</th><th>device</th><th>step</th><th>detail</th></tr></thead><tbody></tbody></table></div></div>' +
        '<div class="card" id="console-card" hidden><h2>Console <span class="sub">per board</span></h2><div class="body"><div class="tabs"></div><pre class="console"></pre></div></div>';
      s.consoleDirty = true; s.faultsShown = -1;
    }
    const card = document.getElementById("scenario-card");
    const badge = card.querySelector(".badge");
    badge.className = "badge " + s.status; badge.textContent = s.status;
    card.querySelector(".title").textContent = s.name;
    card.querySelector(".sub").textContent = s.description;
    const kv = [["seed", s.attrs.seed], ["dialect", [...s.dialects].join(", ")], ["backend", s.attrs.backend], ["deployments", s.depOrder.length], ["events", s.records]]
      .concat([...s.metrics].slice(0, 12).map(([k, v]) => [k, +v.toPrecision(4)]))
      .filter((x) => x[1] !== undefined && x[1] !== "").map((x) => esc(x[0]) + " <b>" + esc(x[1]) + "</b>").join("");
    const kvEl = card.querySelector(".kv"); if (kvEl.innerHTML !== kv) kvEl.innerHTML = kv;
    const probs = s.detail && s.status !== "passed" ? '<div class="problem ' + s.status + '">' + esc(s.detail) + '</div>' : "";
    const pEl = card.querySelector(".problems"); if (pEl.innerHTML !== probs) pEl.innerHTML = probs;
    const deps = document.getElementById("deps");
    for (const id of s.depOrder) {
      const d = s.deps.get(id);
      let v = views.get(d.key);
      if (!v) { v = makeView(d); views.set(d.key, v); deps.appendChild(v.el); }
      drawDeployment(s, d, v);
    }
    drawFaults(s);
    drawConsole(s);
  }

  function makeView(d) {
    const el = document.createElement("div");
    el.className = "card deployment";
    el.dataset.deployment = d.id;
    el.innerHTML = '<h2><span class="badge"></span><span class="title"></span><span class="sub"></span></h2><div class="body">' +
      '<div class="kv"></div><div class="progress"></div><div class="legend"></div>' +
      '<div class="grid2"><div><div class="lanes-bar"><span class="lanes-info"></span><button data-action="toggle" data-dep="' + esc(d.key) + '">group lanes</button>' +
      '<button data-action="back" data-dep="' + esc(d.key) + '" hidden>back to groups</button></div>' +
      '<div class="lanes"><canvas></canvas><div class="spacer"></div></div><svg class="axis-x" height="18"></svg></div>' +
      '<div class="chart"><div class="lanes-bar">devices completed over time</div><svg viewBox="0 0 300 150" preserveAspectRatio="none"></svg></div></div></div>';
    const v = {el, lanes: el.querySelector(".lanes"), canvas: el.querySelector("canvas"), spacer: el.querySelector(".spacer"),
      svg: el.querySelector(".chart svg"), axis: el.querySelector(".axis-x"), grouped: d.list.length > GROUP_OVER, autoGroup: true, group: -1, drawnVersion: -1, rows: []};
    v.lanes.addEventListener("scroll", () => { v.drawnVersion = -1; paintLanes(v, d, currentNow(d)); });
    v.canvas.addEventListener("mousemove", (e) => tip(e, v, d));
    v.canvas.addEventListener("mouseleave", () => { document.getElementById("tip").hidden = true; });
    v.canvas.addEventListener("click", (e) => {
      if (!v.grouped) return;
      const i = Math.floor((e.offsetY + v.lanes.scrollTop) / ROW);
      if (i >= 0 && i < v.rows.length) { v.group = i; v.grouped = false; v.lanes.scrollTop = 0; v.drawnVersion = -1; invalidate(); }
    });
    return v;
  }

  function currentNow(d) {
    const s = S.scen.get(sel);
    let now = d.last;
    if (s && !isNaN(s.last) && s.status === "running") now = Math.max(now, s.last);
    return now;
  }

  function drawDeployment(s, d, v) {
    const badge = v.el.querySelector("h2 .badge");
    badge.className = "badge " + d.status; badge.textContent = d.status || "…";
    v.el.querySelector("h2 .title").textContent = "deployment " + d.id;
    v.el.querySelector("h2 .sub").textContent = d.dialect;
    const n = d.list.length;
    const running = d.list.filter((x) => !x.outcome && x.segs.length).length;
    const kv = "devices <b>" + n.toLocaleString("en") + "</b>done <b class=\"done\">" + d.done.toLocaleString("en") + "</b>in progress <b>" +
      running.toLocaleString("en") + "</b>" + Object.keys(d.counts).sort().map((k) => k + " <b data-status=\"" + k + "\">" + d.counts[k].toLocaleString("en") + "</b>").join("") +
      "elapsed <b>" + secs(currentNow(d) - d.created) + "</b>";
    const kvEl = v.el.querySelector(".kv"); if (kvEl.innerHTML !== kv) kvEl.innerHTML = kv;
    const by = {ok: 0, fail: 0, timeout: 0, cancel: 0, run: running};
    for (const x of d.list) if (x.outcome) by[x.outcome]++;
    let bar = "";
    for (const k of ["ok", "fail", "timeout", "cancel", "run"]) if (by[k] && n) bar += '<span style="width:' + (100 * by[k] / n) + '%;background:' + COLORS[k] + '" title="' + by[k] + " " + STATE_LABEL[k] + '"></span>';
    const pb = v.el.querySelector(".progress"); if (pb.innerHTML !== bar) pb.innerHTML = bar;
    const legend = STATE_ORDER.map((k) => '<span><i style="background:' + COLORS[k] + '"></i>' + STATE_LABEL[k] + "</span>").join("") +
      '<span><i style="background:' + COLORS.fail + ';clip-path:polygon(50% 100%,0 0,100% 0)"></i>fault injected</span>';
    const lg = v.el.querySelector(".legend"); if (lg.innerHTML !== legend) lg.innerHTML = legend;
    if (v.autoGroup && n > GROUP_OVER && v.group < 0) { v.grouped = true; v.autoGroup = false; }
    const now = currentNow(d);
    if (v.drawnVersion !== d.version || S.conn === "live") paintLanes(v, d, now);
    drawChart(v, d, now);
  }

  function laneRows(v, d) {
    if (!v.grouped) {
      if (v.group >= 0) { const g = groupSize(d); return d.list.slice(v.group * g, v.group * g + g).map((x) => ({dev: x})); }
      return d.list.map((x) => ({dev: x}));
    }
    const g = groupSize(d), rows = [];
    for (let i = 0; i < d.list.length; i += g) rows.push({group: d.list.slice(i, i + g), index: rows.length});
    return rows;
  }
  const groupSize = (d) => Math.max(1, Math.ceil(d.list.length / GROUP_OVER));

  function paintLanes(v, d, now) {
    v.rows = laneRows(v, d);
    const rows = v.rows;
    v.lanes.style.height = Math.min(320, Math.max(3, rows.length) * ROW + 2) + "px";
    const width = Math.max(200, v.lanes.clientWidth);
    const height = v.lanes.clientHeight || 320;
    v.spacer.style.height = Math.max(0, rows.length * ROW - height) + "px";
    const dpr = window.devicePixelRatio || 1;
    if (v.canvas.width !== width * dpr || v.canvas.height !== height * dpr) {
      v.canvas.width = width * dpr; v.canvas.height = height * dpr;
      v.canvas.style.width = width + "px"; v.canvas.style.height = height + "px";
    }
    const ctx = v.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const t0 = d.created, span = Math.max(1, now - t0);
    const x = (t) => LABEL + (Math.min(Math.max(t, t0), now) - t0) / span * (width - LABEL - 6);
    const first = Math.floor(v.lanes.scrollTop / ROW), last = Math.min(rows.length, first + Math.ceil(height / ROW) + 1);
    const off = v.lanes.scrollTop - first * ROW;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    let drawn = 0;
    for (let i = first; i < last; i++) {
      const y = (i - first) * ROW - off, row = rows[i];
      ctx.fillStyle = i % 2 ? "#f4f6f9" : "#fcfcfd";
      ctx.fillRect(0, y, width, ROW);
      ctx.fillStyle = "#344054";
      if (row.dev) { ctx.fillText(row.dev.name, 4, y + ROW / 2, LABEL - 8); laneDevice(ctx, row.dev, y, x, now); }
      else { ctx.fillText(row.group[0].name + " +" + (row.group.length - 1), 4, y + ROW / 2, LABEL - 8); laneGroup(ctx, row.group, y, x, now, t0, width); }
      drawn++;
    }
    v.lanes.dataset.rows = rows.length;
    v.lanes.dataset.drawn = drawn;
    v.lanes.dataset.mode = v.grouped ? "groups" : "devices";
    const info = v.grouped ? rows.length + " groups of " + groupSize(d) + " devices — click a group to open it"
      : (v.group >= 0 ? "group " + (v.group + 1) + ": " : "") + rows.length.toLocaleString("en") + " devices";
    v.el.querySelector(".lanes-info").textContent = info;
    v.el.querySelector('[data-action="back"]').hidden = !(v.group >= 0);
    v.el.querySelector('[data-action="toggle"]').textContent = v.grouped ? "one lane per device" : "group lanes";
    v.drawnVersion = d.version;
    drawAxis(v, width, span);
  }

  // drawAxis labels the lanes' time axis (the service clock, from the deployment's creation).
  function drawAxis(v, width, span) {
    const steps = [100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 3e4, 6e4, 12e4, 3e5, 6e5, 12e5, 18e5, 36e5, 72e5];
    const usable = width - LABEL - 6;
    const step = steps.find((x) => span / x <= Math.max(2, usable / 90)) || 144e5;
    let svg = '<line x1="' + LABEL + '" y1="1" x2="' + (LABEL + usable) + '" y2="1"/>';
    for (let t = 0; t <= span; t += step) {
      const x = LABEL + t / span * usable;
      svg += '<line x1="' + x.toFixed(1) + '" y1="1" x2="' + x.toFixed(1) + '" y2="5"/><text x="' + x.toFixed(1) +
        '" y="15" text-anchor="' + (t === 0 ? "start" : "middle") + '">' + secs(t).replace(/\.0+s$/, "s") + "</text>";
    }
    v.axis.setAttribute("width", width);
    if (v.axisCache !== svg) { v.axis.innerHTML = svg; v.axisCache = svg; }
  }

  function laneDevice(ctx, dev, y, x, now) {
    const end = dev.outcome ? dev.end : now;
    if (!isNaN(dev.released) && dev.segs.length === 0 && !dev.outcome) {
      ctx.fillStyle = COLORS.queued; ctx.fillRect(x(dev.released), y + 4, Math.max(1, x(now) - x(dev.released)), ROW - 8);
    }
    const col = dev.outcome ? COLORS[dev.outcome] : null;
    for (let j = 0; j < dev.segs.length; j++) {
      const a = dev.segs[j].t0, b = j + 1 < dev.segs.length ? dev.segs[j + 1].t0 : end;
      ctx.fillStyle = col || (j % 2 ? COLORS.stepB : COLORS.stepA);
      ctx.globalAlpha = col ? (j % 2 ? 0.85 : 0.6) : 1;
      ctx.fillRect(x(a), y + 3, Math.max(1, x(b) - x(a)), ROW - 6);
    }
    ctx.globalAlpha = 1;
    if (dev.outcome) { ctx.fillStyle = COLORS[dev.outcome]; ctx.fillRect(x(dev.end) - 1, y + 1, 3, ROW - 2); }
    for (const f of dev.faults) {
      const fx = x(f.t);
      ctx.fillStyle = f.kind === "recovered" ? COLORS.ok : f.kind === "armed" ? COLORS.cancel : COLORS.fail;
      ctx.beginPath();
      if (f.kind === "recovered") { ctx.moveTo(fx - 4, y + ROW - 1); ctx.lineTo(fx + 4, y + ROW - 1); ctx.lineTo(fx, y + ROW - 7); }
      else { ctx.moveTo(fx - 4, y + 1); ctx.lineTo(fx + 4, y + 1); ctx.lineTo(fx, y + 8); }
      ctx.fill();
    }
  }

  // laneGroup draws a group of devices as a stacked band: at each moment, the share of the group in each state.
  function laneGroup(ctx, group, y, x, now, t0, width) {
    const cols = Math.max(1, Math.floor(width - LABEL - 6));
    const diff = {}; for (const k of STATE_ORDER) diff[k] = new Float32Array(cols + 2);
    const col = (t) => Math.max(0, Math.min(cols, Math.floor(x(t) - LABEL)));
    let faults = [];
    for (const dev of group) {
      const start = dev.segs.length ? dev.segs[0].t0 : dev.released;
      if (isNaN(start)) { diff.queued[0]++; diff.queued[cols + 1]--; continue; }
      const a = col(start), b = dev.outcome ? col(dev.end) : cols + 1;
      diff.queued[0]++; diff.queued[a]--;
      const k = dev.segs.length ? "run" : "queued";
      diff[k][a]++; diff[k][b]--;
      if (dev.outcome) { diff[dev.outcome][b]++; diff[dev.outcome][cols + 1]--; }
      for (const f of dev.faults) if (f.kind === "injected") faults.push(f.t);
    }
    const n = group.length, h = ROW - 4;
    const acc = {}; for (const k of STATE_ORDER) acc[k] = 0;
    for (let c = 0; c < cols; c++) {
      let yy = y + 2;
      for (const k of BAND_ORDER) {
        acc[k] += diff[k][c];
        if (acc[k] <= 0) continue;
        // A device that did not succeed stays visible in a group of many: at least two pixels.
        const hh = Math.max(h * acc[k] / n, k === "fail" || k === "timeout" ? 2 : 0);
        ctx.fillStyle = COLORS[k]; ctx.fillRect(LABEL + c, yy, 1, hh); yy += hh;
      }
    }
    ctx.fillStyle = COLORS.fail;
    for (const t of faults.slice(0, 50)) { const fx = x(t); ctx.beginPath(); ctx.moveTo(fx - 4, y + 1); ctx.lineTo(fx + 4, y + 1); ctx.lineTo(fx, y + 8); ctx.fill(); }
  }

  function tip(e, v, d) {
    const el = document.getElementById("tip");
    const i = Math.floor((e.offsetY + v.lanes.scrollTop) / ROW);
    const row = v.rows[i];
    if (!row) { el.hidden = true; return; }
    let text;
    if (row.dev) {
      const x = row.dev;
      text = x.name + "  " + x.status + (x.code ? " / " + x.code : "") + "\n" +
        x.segs.map((s) => offset(s.t0 - d.created) + "  " + s.step).join("\n") +
        (x.outcome ? "\n" + offset(x.end - d.created) + "  " + x.status : "") +
        x.faults.map((f) => "\n" + offset(f.t - d.created) + "  fault " + f.kind).join("");
    } else {
      const c = {}; for (const x of row.group) { const k = x.outcome || (x.segs.length ? "run" : "queued"); c[k] = (c[k] || 0) + 1; }
      text = row.group[0].name + " … " + row.group[row.group.length - 1].name + "\n" +
        STATE_ORDER.filter((k) => c[k]).map((k) => c[k] + " " + STATE_LABEL[k]).join(", ");
    }
    el.textContent = text; el.hidden = false;
    el.style.left = (e.clientX + 14) + "px"; el.style.top = (e.clientY + 10) + "px";
  }

  function drawChart(v, d, now) {
    const W = 300, H = 150, L = 34, B = 18, T = 8, R = 6;
    const t0 = d.created, span = Math.max(1, now - t0), n = Math.max(1, d.list.length);
    const X = (t) => L + (t - t0) / span * (W - L - R), Y = (k) => H - B - k / n * (H - B - T);
    let done = "M" + L + " " + Y(0), failed = done, k = 0, f = 0;
    for (const c of d.completions) {
      k++; done += " L" + X(c.t).toFixed(1) + " " + Y(k - 1).toFixed(1) + " L" + X(c.t).toFixed(1) + " " + Y(k).toFixed(1);
      if (!c.ok) { f++; failed += " L" + X(c.t).toFixed(1) + " " + Y(f - 1).toFixed(1) + " L" + X(c.t).toFixed(1) + " " + Y(f).toFixed(1); }
    }
    done += " L" + X(now).toFixed(1) + " " + Y(k).toFixed(1);
    failed += " L" + X(now).toFixed(1) + " " + Y(f).toFixed(1);
    const svg = '<line class="axis" x1="' + L + '" y1="' + (H - B) + '" x2="' + (W - R) + '" y2="' + (H - B) + '"/>' +
      '<line class="axis" x1="' + L + '" y1="' + T + '" x2="' + L + '" y2="' + (H - B) + '"/>' +
      '<text x="' + (L - 4) + '" y="' + (T + 8) + '" text-anchor="end">' + n + '</text><text x="' + (L - 4) + '" y="' + (H - B) + '" text-anchor="end">0</text>' +
      '<text x="' + L + '" y="' + (H - 4) + '">0s</text><text x="' + (W - R) + '" y="' + (H - 4) + '" text-anchor="end">' + secs(span) + ' (service clock)</text>' +
      '<path class="done" d="' + done + '"/><path class="failedl" d="' + failed + '"/>' +
      '<text x="' + (L + 6) + '" y="' + (T + 10) + '" style="fill:' + COLORS.ok + '">completed ' + k + '</text>' +
      '<text x="' + (L + 6) + '" y="' + (T + 22) + '" style="fill:' + COLORS.fail + '">not succeeded ' + f + '</text>';
    if (v.svgCache !== svg) { v.svg.innerHTML = svg; v.svgCache = svg; }
    v.svg.dataset.completed = k;
  }

  function drawFaults(s) {
    const card = document.getElementById("faults-card");
    if (s.faultsShown === s.faults.length) return;
    s.faultsShown = s.faults.length;
    card.hidden = s.faults.length === 0;
    const t0 = s.depOrder.length ? s.deps.get(s.depOrder[0]).created : (s.faults[0] || {}).t;
    card.querySelector("tbody").innerHTML = s.faults.map((f) => "<tr><td>" + offset(f.t - t0) + "</td><td>" + esc(f.fault) +
      "</td><td>" + esc(f.kind) + "</td><td>" + esc(f.device) + "</td><td>" + esc(f.step) + "</td><td>" + esc(f.detail) + "</td></tr>").join("");
  }

  function drawConsole(s) {
    const card = document.getElementById("console-card");
    if (!s.consoleDirty) return;
    s.consoleDirty = false;
    card.hidden = s.consoles.size === 0;
    if (!s.consoles.size) return;
    if (!s.board || !s.consoles.has(s.board)) s.board = s.consoles.keys().next().value;
    card.querySelector(".tabs").innerHTML = [...s.consoles.keys()].map((b) => '<button data-board="' + esc(b) + '"' + (b === s.board ? ' class="sel"' : "") + ">" + esc(b) + "</button>").join("");
    const pre = card.querySelector("pre");
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = s.consoles.get(s.board).join("\n");
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  // ---- data in ----
  function take(records) { for (const r of records) apply(r); }

  let ws = null, backoff = 250;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams({from: String(S.pos), stream: S.stream});
    if (token) q.set("token", token);
    ws = new WebSocket(proto + "//" + location.host + "/ws?" + q.toString());
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      switch (msg.type) {
        case "hello":
          if (msg.reset || (S.stream && msg.stream !== S.stream)) { const rc = S.reconnects; fresh(); S.reconnects = rc; }
          S.stream = msg.stream; S.pos = msg.pos; backoff = 250;
          S.conn = msg.ended && msg.pos >= msg.head ? "ended" : "live"; break;
        case "events":
          if (msg.pos !== S.pos) { ws.close(); return; } // out of step: reconnect and resume where the model is
          take(msg.events); S.pos += msg.events.length;
          if (S.conn === "behind") S.behind = Math.max(0, S.behind - msg.events.length);
          break;
        case "behind": S.conn = "behind"; S.behind = msg.head - msg.pos; break;
        case "live": S.conn = "live"; S.behind = 0; break;
        case "end": S.conn = "ended"; S.ended = true; break;
      }
      invalidate();
    };
    ws.onclose = () => {
      ws = null;
      if (S.conn !== "ended") { S.conn = "reconnecting"; S.reconnects++; window.fleetlab.reconnects = S.reconnects; invalidate(); }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 3000);
    };
  }

  window.fleetlab = {mode, drawn: 0, reconnects: 0, get pos() { return S.pos; }, get records() { return S.records; }, get conn() { return S.conn; },
    model: () => S};
  fresh();
  if (mode === "report") {
    const data = document.getElementById("fleetlab-records").textContent.trim();
    take(data ? JSON.parse(data) : []);
    S.conn = "report";
    S.pos = S.records;
    draw();
  } else {
    connect();
    draw();
  }
  window.addEventListener("resize", () => { for (const v of views.values()) v.drawnVersion = -1; invalidate(); });
})();
