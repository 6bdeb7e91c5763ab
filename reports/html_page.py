"""One self-contained HTML page of charts from the same reports/*.sql as the text reports.

Used by `python3 reports/run.py DATA_DIR --html report.html`. Plotly's JavaScript is embedded
once, so the page works offline; every chart is titled with the question it answers and the
data's time range.
"""
import datetime as dt
import html

import plotly.graph_objects as go

import run as runner

# The charts, in page order: (div id, the report whose SQL feeds it).
CHARTS = (
    ("chart-success-rate", "success_rate_daily"),
    ("chart-throughput", "throughput_hourly"),
    ("chart-failures", "failures_top"),
    ("chart-turnaround", "turnaround_by_template"),
    ("chart-stages", "stage_durations"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #555; margin-top: 0; }
section { margin: 2.5rem 0; } table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; }
th { background: #f4f4f4; position: sticky; top: 0; } .none { color: #2a7; }
.scroll { max-height: 480px; overflow-y: auto; border: 1px solid #eee; }
"""


def rows(con, name):
    cols, data = runner.run(con, name)
    return [dict(zip(cols, r)) for r in data]


def span(con):
    """(first, last create_time, task count) of the whole data set."""
    return con.execute("SELECT min(create_time), max(create_time), count(*) FROM tasks").fetchone()


def titled(fig, question, what, period):
    fig.update_layout(
        title={"text": f"<b>{question}</b><br><sup>{what} · {period}</sup>"},
        template="plotly_white",
        height=460,
        margin={"t": 90},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def success_rate(con, period):
    fig = go.Figure()
    data = rows(con, "success_rate_daily")
    overall = [r for r in data if r["dimension"] == "overall"]
    fig.add_scatter(x=[r["day"] for r in overall], y=[r["success_rate"] for r in overall],
                    name="overall", mode="lines+markers", line={"width": 4, "color": "#222"})
    for template in sorted({r["value"] for r in data if r["dimension"] == "template"}):
        mine = [r for r in data if r["dimension"] == "template" and r["value"] == template]
        fig.add_scatter(x=[r["day"] for r in mine], y=[r["success_rate"] for r in mine], name=template, mode="lines")
    fig.update_yaxes(tickformat=".0%", title="success / (success + fail)")
    # One tick per day up to two weeks, then plotly's own spacing, always as dates.
    days = len(overall)
    fig.update_xaxes(title="day of creation (UTC)", tickformat="%Y-%m-%d", dtick=86_400_000 if days <= 14 else None)
    return titled(fig, "How often does transcoding succeed?", "success rate per day, overall and by template", period)


def throughput(con, period):
    data = rows(con, "throughput_hourly")
    fig = go.Figure()
    hours = [r["hour_utc"] for r in data]
    fig.add_bar(x=hours, y=[r["success"] for r in data], name="success", marker_color="#2a7")
    fig.add_bar(x=hours, y=[r["fail"] for r in data], name="fail", marker_color="#d43")
    other = [r["finished"] - r["success"] - r["fail"] for r in data]
    if any(other):
        fig.add_bar(x=hours, y=other, name="other", marker_color="#999")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="tasks finished")
    fig.update_xaxes(title="hour of finish (UTC)")
    return titled(fig, "How much gets done?", "tasks finished per hour, by outcome", period)


def failures(con, period):
    data = list(reversed(rows(con, "failures_top")))
    labels = [f"{r['err_code']}: {(r['err_message'] or '')[:60]}" for r in data]
    # Bars with one label would be drawn on top of each other: cut messages stay apart.
    labels = [f"{label} ({i})" if labels.count(label) > 1 else label for i, label in enumerate(labels)]
    fig = go.Figure(go.Bar(
        x=[r["failures"] for r in data], y=labels, orientation="h", marker_color="#d43",
        text=[f"{r['share']:.1%}" for r in data], textposition="outside", cliponaxis=False,
    ))
    most = max((r["failures"] for r in data), default=1)
    fig.update_xaxes(title="failed tasks", range=[0, most * 1.15])
    return titled(fig, "Why does transcoding fail?", "top error codes among failed tasks, with their share", period)


def turnaround(con, period):
    data = rows(con, "turnaround_by_template")
    templates = [r["template"] for r in data]
    fig = go.Figure()
    for key, colour in (("p50_s", "#8ab"), ("p90_s", "#468"), ("p99_s", "#124")):
        fig.add_bar(x=templates, y=[r[key] for r in data], name=key[:-2], marker_color=colour)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="seconds from creation to finish")
    return titled(fig, "How fast is transcoding?", "turnaround percentiles (p50, p90, p99) by template", period)


def stages(con, period):
    """p50 per stage and template on the latest day measured, up to p90 as the error bar."""
    data = rows(con, "stage_durations")
    if not data:
        return None
    last = max(r["day"] for r in data)
    data = [r for r in data if r["day"] == last]
    order = ["pending", "downloading", "running", "uploading"]
    fig = go.Figure()
    for template in sorted({r["template"] for r in data}):
        mine = sorted((r for r in data if r["template"] == template), key=lambda r: order.index(r["stage"]))
        fig.add_bar(x=[r["stage"] for r in mine], y=[r["p50_s"] for r in mine], name=template,
                    error_y={"type": "data", "symmetric": False, "array": [r["p90_s"] - r["p50_s"] for r in mine],
                             "arrayminus": [0] * len(mine)},
                    customdata=[[r["p90_s"], r["measured"]] for r in mine],
                    hovertemplate="p50 %{y}s, p90 %{customdata[0]}s (%{customdata[1]} tasks)")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="seconds in the stage (bar p50, whisker p90)")
    what = (f"time in each stage by template, tasks created {last}; exact to one sync.schedule period, "
            "a shorter stage may not be seen (docs/analysts.md)")
    return titled(fig, "Where does the time go?", what, period)


# Rows of the stuck tasks table on the page (all of them: `run.py DATA_DIR stuck_tasks --csv`).
SHOWN_STUCK = 200

BUILDERS = {
    "success_rate_daily": success_rate,
    "throughput_hourly": throughput,
    "failures_top": failures,
    "turnaround_by_template": turnaround,
    "stage_durations": stages,
}


def stuck_table(con, period):
    data = rows(con, "stuck_tasks")
    head = ("<h2>Which tasks are stuck?</h2>"
            f"<p class=meta>tasks not final although created more than the stuck age ago · {html.escape(period)}</p>")
    if not data:
        return head + "<p class=none id=stuck-none>No stuck tasks.</p>"
    cols = list(data[0])
    shown = data[:SHOWN_STUCK]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in cols) + "</tr>"
        for r in shown
    )
    more = (f"<p class=meta>{len(data) - len(shown):,} more not shown "
            "(all: python3 reports/run.py DATA_DIR stuck_tasks --csv).</p>") if len(data) > len(shown) else ""
    header = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    return f"{head}<div class=scroll><table id=stuck-table><tr>{header}</tr>{body}</table></div>{more}"


def page(con, data_dir):
    first, last, count = span(con)
    period = f"tasks created {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    parts = []
    for i, (div_id, name) in enumerate(CHARTS):
        if name in runner.HISTORY_REPORTS and not runner.has_history(data_dir):
            parts.append(f"<section id={div_id}-none><h2>Where does the time go?</h2><p class=meta>No task_history/ "
                         "in this data set (storage.history = false): the time per stage needs it.</p></section>")
            continue
        fig = BUILDERS[name](con, period)
        if fig is None:
            parts.append(f"<section id={div_id}-none><h2>Where does the time go?</h2><p class=meta>No stage measured "
                         "yet: a stage needs two passes, one that saw it begin and one that saw it end.</p></section>")
            continue
        # The first chart carries plotly.js; the page then needs nothing from the network.
        parts.append(f"<section>{fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=div_id)}</section>")
    parts.append(f"<section>{stuck_table(con, period)}</section>")
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>tasksync report: {html.escape(str(data_dir))}</title><style>{STYLE}</style></head><body>"
        "<h1>Transcoding report</h1>"
        f"<p class=meta>{count:,} tasks, {html.escape(period)}; read from {html.escape(str(data_dir))} "
        f"at {made} by reports/run.py (the same SQL as the text reports).</p>"
        + "".join(parts) + "</body></html>\n"
    )
