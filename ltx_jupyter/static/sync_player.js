// The front end of ltx_jupyter's VideoGrid (an anywidget): a table of job cells headed by
// axis values, and one synchronized player (play/pause, scrubber, loop) for every video of the
// visible tab.
//
// State from the kernel: title, row/col/tab labels and axis names, `cells` (where each cell
// sits and its label), `states` (status, progress, text, cancellable; updated often) and
// `media` (video source, caption, cost, error; updated when a job ends). Every text goes in
// with textContent; a video source is used only when it is http(s), data:video/ or relative.
//
// Sync: the longest loaded video leads. Play seeks every video to the leader's time, waits
// until all have seeked, then starts them together; while playing, a 50 ms loop nudges each
// follower's playbackRate by its drift from the leader and seeks it outright when it is more
// than 0.3 s away. The leader's end restarts them all together (loop) or stops them. A scrub
// pauses, seeks every video to the same time and resumes together if it was playing.

const SAFE_SRC = /^(https?:\/\/|data:video\/)/i;
const HAS_SCHEME = /^[^/?#]*:/;
const STATUS_COLOURS = {
  waiting: "#999",
  submitting: "#888",
  queued: "#b8860b",
  running: "#1e6fd9",
  completed: "#2e8b57",
  failed: "#c0392b",
  cancelled: "#888",
  detached: "#888",
};
const HARD_SEEK = 0.3; // seconds of drift past which a follower is seeked
const SOFT_SYNC = 0.02; // seconds of drift below which a follower plays at rate 1
const TICK_MS = 50;

function safeSrc(src) {
  if (typeof src !== "string" || !src || /[\x00-\x1f\x7f]/.test(src)) return null;
  if (SAFE_SRC.test(src)) return src;
  if (HAS_SCHEME.test(src) || src.startsWith("/") || src.startsWith("\\")) return null;
  return src;
}

function make(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

function formatTime(t) {
  if (!Number.isFinite(t)) return "0.00";
  return t.toFixed(2);
}

function seekTo(video, time) {
  // Resolves once the video shows `time` (at once if it is there already or cannot seek).
  return new Promise((resolve) => {
    if (!(video.readyState >= 1) || Math.abs(video.currentTime - time) < 0.001) {
      resolve();
      return;
    }
    const done = () => {
      video.removeEventListener("seeked", done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 2000);
    video.addEventListener("seeked", done);
    video.currentTime = time;
  });
}

class SyncPlayer {
  constructor(root, videos) {
    this.videos = videos; // () => the videos of the visible tab
    this.playing = false;
    this.scrubbing = false;
    this.resumeAfterScrub = false;
    this.starting = null;
    this.bar = make("div", "ltx-sync-bar");
    this.playButton = make("button", "ltx-sync-play", "▶ play all");
    this.playButton.type = "button";
    this.playButton.title = "Play or pause every video together";
    this.scrubber = make("input", "ltx-sync-scrubber");
    this.scrubber.type = "range";
    this.scrubber.min = "0";
    this.scrubber.max = "0";
    this.scrubber.step = "0.01";
    this.scrubber.value = "0";
    this.scrubber.title = "Move every video to the same moment";
    this.clock = make("span", "ltx-sync-clock", "0.00 s");
    const loopLabel = make("label", "ltx-sync-loop");
    this.loopBox = make("input");
    this.loopBox.type = "checkbox";
    this.loopBox.checked = true;
    loopLabel.append(this.loopBox, document.createTextNode(" loop"));
    this.bar.append(this.playButton, this.scrubber, this.clock, loopLabel);
    root.append(this.bar);

    this.playButton.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.scrubber.addEventListener("input", () => this.scrub(Number(this.scrubber.value)));
    this.scrubber.addEventListener("change", () => this.endScrub());
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.refresh();
  }

  destroy() {
    clearInterval(this.timer);
    for (const video of this.videos()) video.pause();
  }

  loaded() {
    return this.videos().filter((v) => v.readyState >= 1 && Number.isFinite(v.duration));
  }

  leader() {
    let best = null;
    for (const video of this.loaded()) {
      if (best === null || video.duration > best.duration + 1e-3) best = video;
    }
    return best;
  }

  refresh() {
    const any = this.videos().length > 0;
    this.playButton.disabled = !any;
    this.scrubber.disabled = !any;
    const leader = this.leader();
    if (leader) this.scrubber.max = String(leader.duration);
    this.playButton.textContent = this.playing ? "❚❚ pause all" : "▶ play all";
  }

  async startAt(time) {
    const videos = this.videos();
    for (const video of videos) {
      video.pause();
      video.playbackRate = 1;
    }
    await Promise.all(
      videos.map((v) => seekTo(v, Math.min(time, Number.isFinite(v.duration) ? v.duration : time)))
    );
    if (!this.playing) return;
    await Promise.all(videos.map((v) => v.play().catch(() => undefined)));
  }

  play() {
    const leader = this.leader();
    let time = leader ? leader.currentTime : 0;
    if (leader && (leader.ended || time >= leader.duration - 0.05)) time = 0;
    this.playing = true;
    this.refresh();
    this.starting = this.startAt(time).finally(() => (this.starting = null));
    return this.starting;
  }

  async pause() {
    this.playing = false;
    for (const video of this.videos()) {
      video.pause();
      video.playbackRate = 1;
    }
    const leader = this.leader();
    if (leader) await this.align(leader.currentTime);
    this.refresh();
  }

  async align(time) {
    await Promise.all(this.videos().map((v) => seekTo(v, Math.min(time, v.duration || time))));
    this.show(time);
  }

  scrub(time) {
    if (!this.scrubbing) {
      this.scrubbing = true;
      this.resumeAfterScrub = this.playing;
      this.playing = false;
      for (const video of this.videos()) video.pause();
    }
    for (const video of this.videos()) {
      if (video.readyState >= 1) video.currentTime = Math.min(time, video.duration || time);
    }
    this.show(time);
  }

  async endScrub() {
    if (!this.scrubbing) return;
    this.scrubbing = false;
    const time = Number(this.scrubber.value);
    await this.align(time);
    if (this.resumeAfterScrub) {
      this.playing = true;
      this.refresh();
      await this.startAt(time);
    }
    this.refresh();
  }

  show(time) {
    this.clock.textContent = `${formatTime(time)} s`;
    if (!this.scrubbing) this.scrubber.value = String(time);
  }

  tick() {
    const leader = this.leader();
    if (leader) this.scrubber.max = String(leader.duration);
    if (!this.playing || this.starting || this.scrubbing || !leader) return;
    const time = leader.currentTime;
    this.show(time);
    if (leader.ended || (leader.paused && time >= leader.duration - 0.05)) {
      if (this.loopBox.checked) {
        this.play();
      } else {
        this.playing = false;
        this.refresh();
      }
      return;
    }
    for (const video of this.loaded()) {
      if (video === leader) continue;
      const target = Math.min(time, video.duration);
      if (target >= video.duration - 0.05) continue; // a shorter clip waits at its end
      const drift = video.currentTime - target;
      if (Math.abs(drift) > HARD_SEEK) {
        video.currentTime = target;
      } else if (Math.abs(drift) > SOFT_SYNC) {
        video.playbackRate = Math.min(1.5, Math.max(0.5, 1 - drift * 2));
      } else {
        video.playbackRate = 1;
      }
      if (video.paused) video.play().catch(() => undefined);
    }
  }
}

function render({ model, el }) {
  const root = make("div", "ltx-grid");
  el.append(root);
  const header = make("div", "ltx-grid-header");
  const title = make("span", "ltx-grid-title");
  const cancelAll = make("button", "ltx-grid-cancel-all", "Cancel all");
  cancelAll.type = "button";
  cancelAll.title = "Cancel every job of this grid that has not ended";
  header.append(title, cancelAll);
  root.append(header);
  const tabBar = make("div", "ltx-grid-tabs");
  root.append(tabBar);
  const tables = make("div", "ltx-grid-tables");
  root.append(tables);

  let activeTab = 0;
  let cellViews = [];
  let tabTables = [];
  const player = new SyncPlayer(root, () =>
    cellViews
      .filter((c) => c.tab === activeTab && c.video)
      .map((c) => c.video)
  );
  root.insertBefore(player.bar, tabBar);

  cancelAll.addEventListener("click", () => {
    cancelAll.disabled = true;
    cancelAll.textContent = "Cancelling…";
    model.send({ event: "cancel_all" });
  });

  function buildCell(spec, index) {
    const cell = make("div", "ltx-cell");
    cell.dataset.cell = String(index);
    const label = make("div", "ltx-cell-label", spec.label);
    const status = make("div", "ltx-cell-status");
    const dot = make("span", "ltx-dot", "●");
    const statusText = make("span", "ltx-status");
    status.append(dot, document.createTextNode(" "), statusText);
    const bar = make("div", "ltx-cell-progress");
    const fill = make("div", "ltx-cell-progress-fill");
    bar.append(fill);
    const media = make("div", "ltx-cell-media");
    const caption = make("div", "ltx-cell-caption");
    const error = make("div", "ltx-cell-error");
    const cancel = make("button", "ltx-cell-cancel", "Cancel");
    cancel.type = "button";
    cancel.title = "Cancel this job";
    cancel.addEventListener("click", () => {
      cancel.disabled = true;
      cancel.textContent = "Cancelling…";
      model.send({ event: "cancel", cell: index });
    });
    cell.append(label, status, bar, media, caption, error, cancel);
    return {
      tab: spec.tab || 0,
      cell,
      dot,
      statusText,
      bar,
      fill,
      media,
      caption,
      error,
      cancel,
      video: null,
      src: null,
    };
  }

  function buildTable(tab) {
    const table = make("table", "ltx-grid-table");
    const rows = model.get("row_labels");
    const cols = model.get("col_labels");
    const head = make("thead");
    const headRow = make("tr");
    const corner = make("th", "ltx-grid-corner");
    const rowAxis = model.get("row_axis");
    const colAxis = model.get("col_axis");
    corner.textContent = rowAxis && colAxis ? `${rowAxis} \\ ${colAxis}` : rowAxis || colAxis;
    headRow.append(corner);
    for (const label of cols.length ? cols : [""]) headRow.append(make("th", "ltx-col", label));
    head.append(headRow);
    const body = make("tbody");
    const slots = [];
    for (let r = 0; r < Math.max(rows.length, 1); r++) {
      const tr = make("tr");
      tr.append(make("th", "ltx-row", rows[r] || ""));
      slots.push([]);
      for (let c = 0; c < Math.max(cols.length, 1); c++) {
        const td = make("td");
        tr.append(td);
        slots[r].push(td);
      }
      body.append(tr);
    }
    table.append(head, body);
    table.dataset.tab = String(tab);
    return { table, slots };
  }

  function build() {
    tables.replaceChildren();
    tabBar.replaceChildren();
    const tabs = model.get("tab_labels");
    const tabAxis = model.get("tab_axis");
    tabTables = [];
    for (let t = 0; t < Math.max(tabs.length, 1); t++) {
      const built = buildTable(t);
      tabTables.push(built);
      tables.append(built.table);
      if (tabs.length) {
        const button = make("button", "ltx-tab", `${tabAxis} = ${tabs[t]}`);
        button.type = "button";
        button.addEventListener("click", () => selectTab(t));
        tabBar.append(button);
      }
    }
    cellViews = model.get("cells").map((spec, index) => {
      const view = buildCell(spec, index);
      const target = tabTables[view.tab] && tabTables[view.tab].slots[spec.row || 0];
      if (target && target[spec.col || 0]) target[spec.col || 0].append(view.cell);
      return view;
    });
    selectTab(Math.min(activeTab, tabTables.length - 1));
    update();
  }

  function selectTab(t) {
    if (player.playing) player.pause();
    activeTab = t;
    tabTables.forEach((built, i) => (built.table.style.display = i === t ? "" : "none"));
    [...tabBar.children].forEach((b, i) => b.classList.toggle("ltx-tab-active", i === t));
    player.refresh();
  }

  function setVideo(view, src) {
    const safe = safeSrc(src);
    if (safe === view.src) return;
    view.src = safe;
    view.media.replaceChildren();
    view.video = null;
    if (!safe) return;
    const video = make("video", "ltx-cell-video");
    video.muted = true;
    video.playsInline = true;
    video.preload = "auto";
    video.controls = false;
    video.src = safe;
    video.addEventListener("loadedmetadata", () => player.refresh());
    video.addEventListener("click", () => (player.playing ? player.pause() : player.play()));
    view.media.append(video);
    view.video = video;
    player.refresh();
  }

  function update() {
    const states = model.get("states");
    const media = model.get("media");
    title.textContent = model.get("title");
    cancelAll.style.display = model.get("cancellable") ? "" : "none";
    cellViews.forEach((view, i) => {
      const [status, fraction, text, cancellable] = states[i] || ["", null, "", false];
      view.cell.dataset.status = status;
      view.dot.style.color = STATUS_COLOURS[status] || "#888";
      view.statusText.textContent = text;
      const showBar = typeof fraction === "number" && status !== "completed";
      view.bar.style.display = showBar ? "" : "none";
      view.fill.style.width = `${Math.round((fraction || 0) * 100)}%`;
      view.cancel.style.display = cancellable ? "" : "none";
      const m = media[i] || {};
      setVideo(view, m.src);
      view.caption.textContent = [m.caption, m.cost].filter(Boolean).join(" · ");
      view.error.textContent = m.error || "";
    });
  }

  model.on("change:cells", build);
  model.on("change:row_labels", build);
  model.on("change:col_labels", build);
  model.on("change:tab_labels", build);
  model.on("change:states", update);
  model.on("change:media", update);
  model.on("change:title", update);
  model.on("change:cancellable", update);
  build();
  return () => player.destroy();
}

export default { render };
