"""The HTML timeline of one report (``--html FILE``): one self-contained file, no
network, no external JS/CSS.

Tasks are columns and steps are rows; each row shows the modelled function and the
operation of the task that ran.  Lock holds, read off the op kinds (``report.locks``),
are bars down the holder's column: solid for an exclusive hold, striped for a shared one
(down_read, read_lock, srcu_read_lock).  The step where the report was raised is marked,
and the splat is printed beside the timeline.
"""

from __future__ import annotations

import hashlib
from html import escape
from pathlib import Path

from ..locks import LockHold, lock_holds
from ..text import format_metrics, next_step_of, schedule_tasks
from . import Format, register

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173")


def _colors(holds: list[LockHold]) -> dict[str, str]:
    """A distinct colour per lock, in order of first acquire; hashed past the palette."""
    out: dict[str, str] = {}
    for h in holds:
        if h.lock not in out:
            i = len(out)
            if i < len(PALETTE):
                out[h.lock] = PALETTE[i]
            else:
                hue = int(hashlib.sha1(h.lock.encode()).hexdigest()[:6], 16) % 360
                out[h.lock] = f"hsl({hue}, 60%, 42%)"
    return out


def _lanes(holds: list[LockHold]) -> tuple[dict[int, int], int]:
    """Greedy interval colouring of one task's holds: hold index -> lane."""
    lane_end: list[int] = []
    out: dict[int, int] = {}
    for i, h in sorted(enumerate(holds), key=lambda x: (x[1].start, -x[1].end)):
        for lane, end in enumerate(lane_end):
            if end < h.start:
                lane_end[lane] = h.end
                out[i] = lane
                break
        else:
            out[i] = len(lane_end)
            lane_end.append(h.end)
    return out, len(lane_end)


CSS = """
:root { --bg:#fff; --fg:#1d1f21; --muted:#6a737d; --line:#e4e7eb; --hot:#d1242f;
        --hotbg:#ffe3e3; --act:#f3f7ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); }
header { padding:12px 18px 8px; border-bottom:1px solid var(--line); }
h1 { font-size:18px; margin:0 0 4px; }
h1 .kind { color:var(--hot); font-family:ui-monospace,Menlo,Consolas,monospace; }
.meta { color:var(--muted); margin:2px 0; }
.meta b { color:var(--fg); font-weight:600; }
code, pre, .op, td.step { font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace; }
main { display:grid; grid-template-columns:minmax(0,1fr) clamp(360px,38vw,640px); gap:0;
       height:calc(100vh - 96px); }
.timeline { overflow:auto; border-right:1px solid var(--line); }
table { border-collapse:separate; border-spacing:0; }
thead th { position:sticky; top:0; background:#f6f8fa; z-index:2; text-align:left;
           padding:6px 8px; border-bottom:2px solid var(--line); white-space:nowrap;
           font-size:13px; }
th.step, td.step { position:sticky; left:0; background:#f6f8fa; z-index:1; text-align:right;
                   color:var(--muted); padding:0 8px; font-size:12px; }
thead th.step { z-index:3; }
td { padding:0; vertical-align:top; border-bottom:1px solid #f1f3f5; }
td.cell { min-width:250px; max-width:360px; }
.c { display:flex; align-items:stretch; min-height:22px; }
.lanes { display:flex; gap:2px; padding:0 3px; }
.lane { width:7px; }
.bar { background:var(--lc); }
.bar.shared { background:repeating-linear-gradient(180deg,var(--lc) 0 3px,transparent 3px 5px); }
.bar.start { border-top-left-radius:4px; border-top-right-radius:4px; margin-top:3px; }
.bar.end { border-bottom-left-radius:4px; border-bottom-right-radius:4px; margin-bottom:3px; }
.bar.open.end { border-bottom:2px dashed var(--lc); background:transparent; }
.op { padding:2px 6px; font-size:12px; overflow-wrap:anywhere; }
.op .fn { display:block; color:var(--muted); font-size:11px; }
td.ran { background:var(--act); }
td.idle .c { opacity:.9; }
td.gone { background:repeating-linear-gradient(135deg,#fafafa 0 6px,#f3f3f3 6px 12px); }
tr.after td.cell { opacity:.55; }
tr.violation td { background:var(--hotbg) !important; border-top:2px solid var(--hot);
                  border-bottom:2px solid var(--hot); }
tr.violation td.step { color:var(--hot); font-weight:700; }
tr.next td.ran { outline:2px dashed var(--hot); outline-offset:-2px; opacity:1 !important; }
.badge.next { background:#fff; color:var(--hot); border:1px solid var(--hot); }
.badge { display:inline-block; background:var(--hot); color:#fff; border-radius:3px;
         font:600 11px system-ui,sans-serif; padding:0 5px; margin-top:2px; }
aside { overflow:auto; padding:10px 14px; }
aside h2 { font-size:14px; margin:10px 0 6px; }
pre.splat { background:#161b22; color:#e6edf3; padding:10px 12px; border-radius:6px;
            font-size:12px; line-height:1.4; white-space:pre-wrap; overflow-wrap:anywhere; }
ul.legend { list-style:none; padding:0; margin:0; font-size:12px; }
ul.legend li { display:flex; gap:8px; align-items:center; padding:2px 0; cursor:default; }
ul.legend .sw { width:12px; height:12px; border-radius:2px; background:var(--lc); flex:none; }
ul.legend .sw.shared { background:repeating-linear-gradient(180deg,var(--lc) 0 3px,transparent 3px 5px); }
body.focus .bar { opacity:.15; }
body.focus .bar.lit { opacity:1; }
a { color:#0969da; }
"""

SCRIPT = """
(function () {
  var v = document.getElementById("violation");
  if (v) {
    var box = document.querySelector(".timeline");
    box.scrollTop = Math.max(0, v.offsetTop - box.clientHeight / 2);
  }
  var body = document.body;
  document.querySelectorAll("ul.legend li").forEach(function (li) {
    var lock = li.getAttribute("data-lock");
    li.addEventListener("mouseenter", function () {
      body.classList.add("focus");
      document.querySelectorAll(".bar").forEach(function (b) {
        b.classList.toggle("lit", b.getAttribute("data-lock") === lock);
      });
    });
    li.addEventListener("mouseleave", function () { body.classList.remove("focus"); });
  });
  body.dataset.steps = String(document.querySelectorAll("#timeline tbody tr").length);
  body.dataset.ok = "1";
})();
"""


def render_timeline(cr, report, trace: list, replay_path: str | None = None) -> str:
    """One report's execution as a page.  ``cr`` is the CheckResult the report came from
    (for the header), ``trace`` the replayed execution's steps (CheckResult.trace)."""
    spec = cr.spec
    r = cr.result
    tasks = list(dict.fromkeys([t for t, *_ in trace] + schedule_tasks(report.schedule)))
    holds = lock_holds(trace)
    color = _colors(holds)
    nxt = next_step_of(trace, report.task, report.step)
    by_task: dict[str, list[LockHold]] = {t: [] for t in tasks}
    for h in holds:
        by_task.setdefault(h.task, []).append(h)
    lanes = {t: _lanes(hs) for t, hs in by_task.items()}
    first = {}
    last = {}
    for i, (t, *_rest) in enumerate(trace):
        first.setdefault(t, i)
        last[t] = i
    # per task and step: the hold drawn in each lane
    grid: dict[str, list[list]] = {}
    for t in tasks:
        lane_of, nl = lanes[t]
        col = [[None] * nl for _ in trace]
        for i, h in enumerate(by_task[t]):
            for s in range(h.start, h.end + 1):
                col[s][lane_of[i]] = h
        grid[t] = col

    def bar(h: LockHold | None, s: int) -> str:
        if h is None:
            return '<div class="lane"></div>'
        cls = ["lane", "bar"]
        if h.shared:
            cls.append("shared")
        if s == h.start:
            cls.append("start")
        if s == h.end:
            cls.append("end")
            if not h.released:
                cls.append("open")
        end = f"step {h.end}" if h.released else "the end (never released)"
        title = f"{h.how} held by {h.task} from step {h.start} to {end}"
        return (f'<div class="{" ".join(cls)}" style="--lc:{color[h.lock]}" '
                f'data-lock="{escape(h.lock)}" title="{escape(title)}"></div>')

    rows = []
    for s, entry in enumerate(trace):
        task, fn, label = entry[0], entry[1], entry[2]
        rcls = []
        if s == report.step:
            rcls.append("violation")
        elif 0 <= report.step < s:
            rcls.append("after")
        if s == nxt:
            rcls.append("next")
        rid = ' id="violation"' if s == report.step else ""
        cells = [f'<td class="step">{s}</td>']
        for t in tasks:
            lane_html = "".join(bar(h, s) for h in grid[t][s])
            if t == task:
                badge = ""
                if s == report.step:
                    badge = '<br><span class="badge">reported here</span>'
                elif s == nxt:
                    badge = ('<br><span class="badge next">the operation it was '
                             'heading to</span>')
                content = (f'<div class="op"><span class="fn">{escape(fn)}</span>'
                           f'{escape(label)}{badge}</div>')
                tcls = "cell ran"
            else:
                content = ""
                tcls = "cell gone" if s > last.get(t, -1) or s < first.get(t, 0) \
                    else "cell idle"
            cells.append(f'<td class="{tcls}" data-task="{escape(t)}"><div class="c">'
                         f'<div class="lanes">{lane_html}</div>{content}</div></td>')
        cls_attr = f' class="{" ".join(rcls)}"' if rcls else ""
        rows.append(f'<tr data-step="{s}" data-task="{escape(task)}"{rid}{cls_attr}>'
                    + "".join(cells) + "</tr>")

    head = '<th class="step">step</th>' + "".join(
        f'<th class="task" data-task="{escape(t)}">{escape(t)}</th>' for t in tasks)

    legend_seen: dict[tuple[str, bool], None] = {}
    for h in holds:
        legend_seen.setdefault((h.lock, h.shared), None)
    legend = "".join(
        f'<li data-lock="{escape(lock)}" style="--lc:{color[lock]}">'
        f'<span class="sw{" shared" if shared else ""}"></span><code>{escape(lock)}</code>'
        f'{" (shared)" if shared else ""}</li>'
        for lock, shared in legend_seen)

    designs = "+".join(spec.patches)
    overrides = "".join(f" {k}={'y' if v else 'n'}" for k, v in spec.config.items())
    metrics = "; ".join(format_metrics(r.metrics))
    replay = (f'<p class="meta">Replay: <code>kmodel replay {escape(replay_path)}</code></p>'
              if replay_path else "")
    at = (f'step <a href="#violation">{report.step}</a>, task <b>{escape(report.task)}</b>, '
          f'in <b>{escape(report.function)}</b>') if report.step >= 0 else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kmodel: {escape(report.title)} ({escape(designs)}, {escape(spec.scenario)})</title>
<style>{CSS}</style>
</head>
<body data-ok="0" data-report-step="{report.step}">
<header>
<h1><span class="kind">{escape(report.kind)}</span> {escape(report.title)}</h1>
<p class="meta">{at}</p>
<p class="meta">design <b>{escape(designs)}</b> &middot; preset <b>{escape(spec.preset)}{escape(overrides)}</b>
&middot; arch <b>{escape(spec.arch)}</b> &middot; scenario <b>{escape(spec.scenario)}</b>
&middot; verdict <b>{escape(cr.verdict)}</b> &middot; {escape(cr.strategy_used)}, {r.executions} executions,
complete: {"yes" if r.complete else "no"}{(" &middot; " + escape(metrics)) if metrics else ""}</p>
{replay}
</header>
<main>
<section class="timeline">
<table id="timeline">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</section>
<aside>
<h2>Report</h2>
<pre class="splat">{escape(report.text)}</pre>
<h2>Locks held (bars; striped: shared)</h2>
<ul class="legend">{legend or "<li>none</li>"}</ul>
</aside>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write(path, cr, report, trace, replay_path: str | None = None) -> None:
    Path(path).write_text(render_timeline(cr, report, trace, replay_path))


def write_check(path, cr, shown) -> None:
    """The first shown report that has its execution's trace; else the page that says
    there is nothing to show."""
    with_trace = [(rep, tr, p) for rep, tr, p in shown if tr]
    if with_trace:
        rep, tr, p = with_trace[0]
        write(path, cr, rep, tr, p)
    else:
        Path(path).write_text(render_no_report(cr))


def render_no_report(cr) -> str:
    """The page for a check with nothing to show: its verdict and numbers."""
    spec = cr.spec
    r = cr.result
    lines = [f"design {'+'.join(spec.patches)}, preset {spec.preset}, arch {spec.arch}, "
             f"scenario {spec.scenario}",
             f"verdict {cr.verdict}: {cr.strategy_used}, {r.executions} executions, "
             f"{r.classes} classes, complete: {'yes' if r.complete else 'no'}"]
    lines += format_metrics(r.metrics)
    lines += [f"{rep.kind}: {rep.title}\n{rep.text}" for rep in r.reports]
    body = "\n".join(escape(x) for x in lines)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kmodel: {escape(cr.verdict)}</title>
<style>{CSS}</style></head>
<body data-ok="0"><header><h1>No interleaving to show: {escape(cr.verdict)}</h1></header>
<aside><pre class="splat">{body}</pre></aside>
<script>document.body.dataset.ok = "1";</script>
</body></html>
"""


register(Format(
    "html",
    {"check": "Write the HTML timeline of the first report.",
     "replay": "Write the HTML timeline of the replayed report."},
    write_check=write_check))
