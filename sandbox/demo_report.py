"""The demo's report: JSON for scripts, and HTML with inline SVG plots for people."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

REPORT_KEYS = (
    "escrow_address",
    "chain_id",
    "status",
    "audio_seconds",
    "jobs",
    "assignments",
    "payouts",
    "results_url",
    "results_hash",
    "timings_s",
)


def write_reports(report: dict[str, Any], folder: Path) -> None:
    doc = {k: report[k] for k in REPORT_KEYS}
    doc["workers"] = report["workers"]
    (folder / "demo-report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (folder / "demo-report.html").write_text(render_html(report))


def render_html(report: dict[str, Any]) -> str:
    """The report with two inline SVG plots: WER per assignment against the threshold,
    and the escrow's timeline. No scripts, no network."""
    from html import escape

    scores = report["scores"]
    target = float(report["target"]["score"])
    width, height, pad = 640, 220, 40
    top = max([target * 1.5] + [s["wer"] or 0 for s in scores]) or 1
    bars = []
    step = (width - 2 * pad) / max(1, len(scores))
    for i, s in enumerate(scores):
        value = s["wer"] or 0
        h = (height - 2 * pad) * value / top
        x = pad + i * step + step * 0.15
        color = "#2e7d32" if s["passed"] else "#c62828"
        bars.append(
            f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{max(h, 1):.1f}" fill="{color}"><title>{escape(s["assignment_id"])} '
            f"WER {value:.2f}</title></rect>"
        )
    ty = height - pad - (height - 2 * pad) * target / top
    wer_svg = (
        f'<svg width="{width}" height="{height}" role="img" aria-label="WER per assignment">'
        f'<line x1="{pad}" x2="{width - pad}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#555" '
        f'stroke-dasharray="4"/><text x="{width - pad}" y="{ty - 4:.1f}" font-size="11" '
        f'text-anchor="end">target WER {target}</text>{"".join(bars)}</svg>'
    )
    events = report["timeline"]
    total = max([t for t, _ in events] + [1.0])
    rows = []
    for n, (t, what) in enumerate(events):
        x = pad + (width - 2 * pad) * t / total
        rows.append(
            f'<circle cx="{x:.1f}" cy="{20 + n * 16}" r="4" fill="#1565c0"/>'
            f'<text x="{x + 8:.1f}" y="{24 + n * 16}" font-size="11">{t:.1f} s '
            f"{escape(what[:70])}</text>"
        )
    timeline_svg = (
        f'<svg width="{width + 300}" height="{30 + 16 * len(events)}" role="img" '
        f'aria-label="timeline">{"".join(rows)}</svg>'
    )
    workers = "".join(
        f"<tr><td>{escape(w['wallet'])}</td><td>{w['accepted']}</td><td>{w['rejected']}</td>"
        f"<td>{w['mean_wer'] if w['mean_wer'] is not None else '-'}</td>"
        f"<td>{escape(w['paid_hmt'])}</td></tr>"
        for w in report["workers"]
    )
    summary = json.dumps({k: report[k] for k in REPORT_KEYS}, indent=2)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>audio-oracles demo report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style>
</head><body>
<h1>audio-oracles demo</h1>
<p>Escrow <code>{escape(report["escrow_address"])}</code>: <b>{escape(report["status"])}</b>,
{report["jobs"]} jobs, {report["audio_seconds"]} s of audio, total
{report["timings_s"]["total"]} s.</p>
<h2>Workers</h2>
<table><tr><th>wallet</th><th>accepted</th><th>rejected</th><th>mean WER</th>
<th>paid (HMT)</th></tr>{workers}</table>
<h2>WER per assignment</h2>{wer_svg}
<h2>Timeline</h2>{timeline_svg}
<h2>Report</h2><pre>{escape(summary)}</pre>
</body></html>
"""


def sha256_of(url: str) -> str:
    return hashlib.sha256(httpx.get(url, timeout=30).content).hexdigest()
