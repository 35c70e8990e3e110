// Live job rows: the console's event stream, with a poll of the page as a fallback when the
// stream drops (another instance's changes reach the page that way too).
"use strict";
(function () {
  const table = document.querySelector("table[data-live]");
  if (!table) return;
  const rows = new Map();
  for (const tr of table.querySelectorAll("tr[data-job]")) rows.set(tr.dataset.job, tr);
  const field = (tr, name) => tr.querySelector(`[data-field="${name}"]`);

  function apply(job) {
    const tr = rows.get(job.id);
    if (!tr) return;
    const status = field(tr, "status");
    status.textContent = job.status;
    status.className = `status s-${job.status}`;
    const bar = field(tr, "progress");
    bar.value = job.progress;
    bar.textContent = `${job.progress}%`;
    field(tr, "message").textContent = job.progressMessage || "";
    field(tr, "attempts").textContent = `${job.attempts}/${job.maxAttempts}`;
    if (job.terminal) {
      const cancel = field(tr, "cancel");
      if (cancel) cancel.remove();
      if (job.outcome !== null) {
        const code = document.createElement("code");
        const text = JSON.stringify(job.outcome);
        code.title = text;
        code.textContent = text.length > 120 ? `${text.slice(0, 120)}…` : text;
        field(tr, "outcome").replaceChildren(code);
      }
    }
  }

  const source = new EventSource(table.dataset.live);
  source.addEventListener("job", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("open", () => table.setAttribute("data-stream", "open"));
  source.addEventListener("error", () => {
    source.close();
    table.setAttribute("data-stream", "closed");
    // Fallback: reload the page's rows every few seconds while any is unfinished.
    setInterval(() => {
      const live = [...rows.values()].some((tr) => field(tr, "cancel"));
      if (live && !document.querySelector("details[open], input:focus")) location.reload();
    }, 5000);
  });
})();
