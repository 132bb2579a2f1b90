// The front end of ltx_jupyter's FilePicker (an anywidget): a button that opens the file
// chooser, then sends the chosen file to the kernel in chunks, with its progress.
//
// Why chunks: Jupyter Server closes the kernel's websocket on any message over 10 MiB (tornado's
// default websocket_max_message_size). ipywidgets' FileUpload sends the whole file in one
// message, so a larger file never reaches the kernel: JupyterLab reconnects without a word and
// the kernel keeps its old value. Here each message holds one chunk (`chunk_bytes`, 1 MiB), a
// few are in flight at once, and the kernel acknowledges each, so the bar shows what the
// kernel has received. The kernel reads the first bytes and may refuse the file (not the kind
// the field wants), which stops the transfer.
//
// Messages, each tagged with the transfer's id (a later choice replaces an earlier one):
//   to the kernel:   {event: "start", id, name, size, type}, {event: "chunk", id, offset}
//                    with the bytes as a binary buffer, {event: "abort", id}
//   from the kernel: {event: "ack", id, received}, {event: "done", id},
//                    {event: "refused", id, reason}

const IN_FLIGHT = 4; // chunks sent ahead of the kernel's acknowledgements

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

function render({ model, el }) {
  el.classList.add("ltx-file-picker");
  el.style.display = "inline-flex";
  el.style.alignItems = "center";
  el.style.gap = "6px";

  const button = document.createElement("label");
  button.className = "jupyter-widgets jupyter-button widget-button ltx-file-button";
  button.style.display = "inline-flex";
  button.style.alignItems = "center";
  button.style.gap = "4px";
  button.style.width = "auto";
  button.style.padding = "0 10px";
  const icon = document.createElement("i");
  icon.className = "fa fa-upload";
  const label = document.createElement("span");
  const input = document.createElement("input");
  input.type = "file";
  input.className = "ltx-file-input";
  input.style.display = "none";
  button.append(icon, label, input);
  button.tabIndex = 0; // reachable by keyboard: Enter or Space opens the chooser
  button.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });

  const bar = document.createElement("progress");
  bar.className = "ltx-file-progress";
  bar.style.width = "120px";
  bar.style.display = "none";
  const status = document.createElement("span");
  status.className = "ltx-file-status";
  status.style.fontSize = "12px";
  status.style.color = "#777";
  el.append(button, bar, status);

  function showSettings() {
    label.textContent = model.get("description") || "file";
    input.accept = model.get("accept") || "";
    button.title = `Choose ${label.textContent === "file" ? "a file" : `a ${label.textContent} file`}`;
  }
  showSettings();
  model.on("change:description", showSettings);
  model.on("change:accept", showSettings);

  let transfer = null;

  function show(t) {
    bar.style.display = "";
    bar.max = Math.max(t.file.size, 1);
    bar.value = t.acked;
    status.textContent = `${t.file.name}: ${megabytes(t.acked)} / ${megabytes(t.file.size)} MB`;
  }

  function finish(text) {
    transfer = null;
    bar.style.display = "none";
    status.textContent = text;
  }

  async function pump(t) {
    // One pump per transfer at a time, so chunks leave in order.
    if (t.pumping) return;
    t.pumping = true;
    try {
      while (t === transfer && t.ready && t.inFlight < IN_FLIGHT && t.next < t.file.size) {
        const offset = t.next;
        const end = Math.min(offset + t.chunk, t.file.size);
        t.next = end;
        t.inFlight += 1;
        const bytes = await t.file.slice(offset, end).arrayBuffer();
        if (t !== transfer) return;
        model.send({ event: "chunk", id: t.id, offset }, undefined, [bytes]);
      }
    } catch (error) {
      if (t === transfer) {
        model.send({ event: "abort", id: t.id });
        finish(`${t.file.name} could not be read: ${error}`);
      }
    } finally {
      t.pumping = false;
    }
  }

  function start(file) {
    if (transfer) model.send({ event: "abort", id: transfer.id });
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const chunk = Math.max(1024, model.get("chunk_bytes") || 1048576);
    transfer = { id, file, chunk, next: 0, acked: 0, inFlight: 0, ready: false, pumping: false };
    show(transfer);
    model.send({ event: "start", id, name: file.name, size: file.size, type: file.type || "" });
  }

  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (file) start(file);
    input.value = ""; // the same file may be chosen again
  });

  function onMessage(message) {
    const t = transfer;
    if (!t || !message || message.id !== t.id) return;
    if (message.event === "ack") {
      if (t.ready) t.inFlight = Math.max(0, t.inFlight - 1);
      t.ready = true;
      t.acked = Number(message.received) || 0;
      show(t);
      pump(t);
    } else if (message.event === "done") {
      finish("");
    } else if (message.event === "refused") {
      finish("refused");
    }
  }
  model.on("msg:custom", onMessage);

  return () => {
    if (transfer) model.send({ event: "abort", id: transfer.id });
    transfer = null;
    model.off("msg:custom", onMessage);
    model.off("change:description", showSettings);
    model.off("change:accept", showSettings);
  };
}

export default { render };
