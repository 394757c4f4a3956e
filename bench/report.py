"""Targets of issue 6 computed from one run's rows, and the markdown report printed to stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PEER_NAMES = ("seed_fastapi", "starter_fastapi_httpx")


def _row(results: dict[str, Any], row_id: str) -> dict[str, Any] | None:
    row = next((r for r in results["rows"] if r["id"] == row_id), None)
    return row if row and row.get("status") == "ok" else None


def _missing(results: dict[str, Any], *row_ids: str) -> str:
    parts = []
    for row_id in row_ids:
        row = next((r for r in results["rows"] if r["id"] == row_id), None)
        status = row["status"] if row else "not run"
        if status != "ok":
            parts.append(f"{row_id}: {status}")
    return "; ".join(parts)


def _target(name: str, value: Any, threshold: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    return {"target": name, "value": value, "threshold": threshold, "met": met, "detail": detail}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 as met (True), not met (False) or not measured (None), within this run."""
    out = []

    ours, standin = _row(results, "session.ours.300ms"), _row(results, "session.standin.300ms")
    name = "session 300 ms x 200: throughput vs the stand-in called directly"
    if ours and standin and standin["ok_rps"]:
        ratio = ours["ok_rps"] / standin["ok_rps"]
        detail = f"{ours['ok_rps']:.0f} vs {standin['ok_rps']:.0f} 2xx/s"
        out.append(_target(name, round(ratio, 3), ">= 0.90", ratio >= 0.9, detail))
    else:
        out.append(
            _target(name, None, ">= 0.90", None, _missing(results, "session.ours.300ms", "session.standin.300ms"))
        )

    name = "session 300 ms x 200: p99 latency (ms)"
    if ours and ours["ok"]:
        out.append(_target(name, ours["p99_ms"], "<= 450", ours["p99_ms"] <= 450 and ours["non_2xx"] == 0))
    else:
        out.append(_target(name, None, "<= 450", None, _missing(results, "session.ours.300ms")))

    ours = _row(results, "session.ours.0ms")
    peers = [p for p in (_row(results, f"session.{n}.0ms") for n in PEER_NAMES) if p]
    name = "session 0 ms x 50: throughput vs the faster peer"
    if ours and peers:
        best = max(peers, key=lambda p: p["ok_rps"])
        ratio = ours["ok_rps"] / best["ok_rps"] if best["ok_rps"] else float("inf")
        detail = f"{ours['ok_rps']:.0f} vs {best['ok_rps']:.0f} 2xx/s ({best['id'].split('.')[1]})"
        out.append(_target(name, round(ratio, 3), ">= 1.5", ratio >= 1.5, detail))
    else:
        ids = ["session.ours.0ms", *(f"session.{n}.0ms" for n in PEER_NAMES)]
        out.append(_target(name, None, ">= 1.5", None, _missing(results, *ids)))

    for backend in ("sqlite", "postgres"):
        single, trivial = _row(results, f"analytics_single.{backend}"), _row(results, f"trivial.{backend}")
        name = f"analytics single ({backend}): throughput vs the trivial route, stored = 2xx"
        if single and trivial and trivial["ok_rps"]:
            ratio = single["ok_rps"] / trivial["ok_rps"]
            stored_ok = single.get("stored_ok")
            detail = f"{single['ok_rps']:.0f} vs {trivial['ok_rps']:.0f} 2xx/s; stored: {single.get('stored_check')}"
            out.append(_target(name, round(ratio, 3), ">= 0.50", ratio >= 0.5 and bool(stored_ok), detail))
        else:
            ids = (f"analytics_single.{backend}", f"trivial.{backend}")
            out.append(_target(name, None, ">= 0.50", None, _missing(results, *ids)))

        batch = _row(results, f"analytics_batch.{backend}")
        name = f"analytics batch ({backend}): events/s, stored = acknowledged"
        if batch:
            value = batch.get("ok_events_per_s", 0)
            detail = f"stored: {batch.get('stored_check')}"
            out.append(_target(name, value, ">= 20000", value >= 20000 and bool(batch.get("stored_ok")), detail))
        else:
            out.append(_target(name, None, ">= 20000", None, _missing(results, f"analytics_batch.{backend}")))

    out += chat_targets(results)

    # Issue 6's bound is for the hosted-session service; self-hosted workers (Agents SDK, ChatKit) are reported apart.
    ours_memory = [
        m
        for m in results["memory"]
        if m["server"].startswith("ours") and not m["server"].startswith("ours-selfhosted") and m["max_worker_rss_mb"]
    ]
    name = "resident memory per gunicorn worker after load (MiB)"
    if ours_memory:
        worst = max(ours_memory, key=lambda m: m["max_worker_rss_mb"])
        value = worst["max_worker_rss_mb"]
        out.append(_target(name, value, "<= 80", value <= 80, f"largest: {worst['server']}"))
    else:
        out.append(_target(name, None, "<= 80", None, "no server of ours ran"))

    startup = results.get("startup") or {}
    name = "import chatkit_backend + create_app() (s, median)"
    if startup.get("status") == "ok":
        value = startup["import_and_create_app_s"]
        out.append(_target(name, value, "<= 0.5", value <= 0.5, f"median of {startup['runs']} fresh processes"))
    else:
        out.append(_target(name, None, "<= 0.5", None, startup.get("detail", "not run")))
    return out


def chat_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets for the self-hosted server, each a ratio to the peer within this run."""
    out = []
    peer = _row(results, "chat_turns.peer")
    for backend in ("sqlite", "postgres"):
        ours = _row(results, f"chat_turns.ours.{backend}")
        name = f"self-hosted turns/s, 32 clients ({backend}) vs the peer, every turn stored"
        if ours and peer and peer["turns_per_s"]:
            ratio = ours["turns_per_s"] / peer["turns_per_s"]
            detail = (
                f"{ours['turns_per_s']:.1f} vs {peer['turns_per_s']:.1f} turns/s; stored: {ours.get('stored_check')};"
                f" /metrics: {ours.get('metrics_check')}"
            )
            met = ratio >= 1.5 and bool(ours.get("stored_ok")) and not ours["failed"]
            out.append(_target(name, round(ratio, 3), ">= 1.5", met, detail))
        else:
            ids = (f"chat_turns.ours.{backend}", "chat_turns.peer")
            out.append(_target(name, None, ">= 1.5", None, _missing(results, *ids)))

    standin, ours, peer = (
        _row(results, "chat_ttft.standin"),
        _row(results, "chat_ttft.ours.sqlite"),
        _row(results, "chat_ttft.peer"),
    )
    for quantile in ("p50", "p99"):
        name = f"time to first text, {quantile}: what we add over the stand-in vs what the peer adds"
        key = f"ttft_{quantile}_ms"
        if standin and ours and peer:
            ours_added, peer_added = ours[key] - standin[key], peer[key] - standin[key]
            ratio = ours_added / peer_added if peer_added > 0 else float("inf")
            detail = f"{ours_added:.1f} vs {peer_added:.1f} ms added (stand-in alone {standin[key]:.1f} ms)"
            out.append(_target(name, round(ratio, 3), "<= 0.75", ratio <= 0.75, detail))
        else:
            ids = ("chat_ttft.standin", "chat_ttft.ours.sqlite", "chat_ttft.peer")
            out.append(_target(name, None, "<= 0.75", None, _missing(results, *ids)))

    ours, peer = _row(results, "chat_streams.ours"), _row(results, "chat_streams.peer")
    name = "concurrent streams: every one completes"
    if ours:
        detail = f"{ours['completed']:,} of {ours['streams']:,}"
        out.append(_target(name, ours["completed"], f"== {ours['streams']}", bool(ours.get("all_completed")), detail))
    else:
        out.append(_target(name, None, "all", None, _missing(results, "chat_streams.ours")))
    name = "concurrent streams: /health p99 meanwhile (ms), no worse than the peer's and <= 250"
    if ours and ours.get("health_p99_ms") is not None:
        value = ours["health_p99_ms"]
        peer_p99 = peer.get("health_p99_ms") if peer else None
        met = value <= 250 and (peer_p99 is None or value <= peer_p99) and not ours.get("health_failed")
        detail = f"peer: {peer_p99} ms" if peer_p99 is not None else "peer not measured"
        out.append(_target(name, value, "<= peer, <= 250", met if peer_p99 is not None else None, detail))
    else:
        out.append(_target(name, None, "<= peer, <= 250", None, _missing(results, "chat_streams.ours")))
    name = "concurrent streams: memory per open stream (KiB)"
    if ours:
        value = ours["kib_per_stream"]
        detail = f"workers' RSS {ours['rss_before_mb']} -> {ours['rss_peak_mb']} MiB for {ours['streams']:,} streams"
        out.append(_target(name, value, "<= 100", value <= 100, detail))
    else:
        out.append(_target(name, None, "<= 100", None, _missing(results, "chat_streams.ours")))
    return out


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _status_summary(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return row.get("status", "")
    bad = {k: v for k, v in row.get("statuses", {}).items() if not k.startswith("2")}
    parts = [f"{v:,} x {k}" for k, v in sorted(bad.items())]
    for kind, count in (row.get("errors") or {}).items():
        if kind != "status" and count:
            parts.append(f"{count:,} {kind}")
    if not row.get("ok"):
        parts.insert(0, "NO 2xx ANSWER")
    return ", ".join(parts) if parts else "0"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"## Benchmark run {results['date']}",
        "",
        f"- command: `{results['command']}` ({results['mode']} run, {results['settings']['duration_s']:g} s per load,"
        f" {results['settings']['warmup_s']:g} s warm-up, wrk {results['settings']['wrk_threads']} thread)",
        f"- machine: {m['cores']} cores ({m.get('cpu_model') or 'unknown CPU'}), Python {m['python']}, {m.get('wrk')}",
        f"- code: {results.get('git') or 'unknown'}",
        "",
        "| row | server | upstream | conns | 2xx/s | p50 ms | p99 ms | requests | non-2xx / socket errors"
        " | stored | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if row.get("group") == "chat":
            continue
        upstream = f"{row['latency_ms']} ms" if "latency_ms" in row else row.get("backend", "")
        throughput = _fmt(row.get("ok_rps"))
        if "ok_events_per_s" in row:
            throughput += f" ({_fmt(row['ok_events_per_s'])} events/s)"
        note = row.get("detail", "") if row.get("status") != "ok" else ""
        stored = row.get("stored_check", "")
        if "stored_rows" in row:
            stored = f"{row['stored_rows']:,} of {row['acknowledged_events']:,}: {stored}"
        lines.append(
            f"| {row['id']} | {row.get('server', '')} | {upstream} | {_fmt(row.get('connections'))} | "
            f"{throughput if row.get('status') == 'ok' else row.get('status')} | {_fmt(row.get('p50_ms'), 1)} | "
            f"{_fmt(row.get('p99_ms'), 1)} | {_fmt(row.get('requests'))} | {_status_summary(row)} | {stored} | {note} |"
        )
    lines += chat_markdown(results)
    lines += ["", "| memory after load | master MiB | workers MiB |", "|---|---|---|"]
    for mem in results["memory"]:
        workers = ", ".join(f"{w['rss_mb']:.1f}" for w in mem["workers"])
        lines.append(f"| {mem['server']} ({mem['after']}) | {_fmt(mem['master_rss_mb'], 1)} | {workers} |")
    s = results.get("startup") or {}
    if s.get("status") == "ok":
        lines += [
            "",
            f"Start-up (median of {s['runs']} fresh processes): import {s['import_s'] * 1000:.0f} ms + create_app()"
            f" {s['create_app_s'] * 1000:.0f} ms = {s['import_and_create_app_s'] * 1000:.0f} ms"
            f" (whole process {s['process_wall_s'] * 1000:.0f} ms).",
        ]
    lines += ["", "| target (issue 6) | value | threshold | verdict | detail |", "|---|---|---|---|---|"]
    for t in results["targets"]:
        verdict = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
        value = t["value"] if not isinstance(t["value"], float) else f"{t['value']:,.3g}"
        lines.append(f"| {t['target']} | {_fmt(value)} | {t['threshold']} | {verdict} | {t['detail']} |")
    if results.get("server_log_errors"):
        lines += ["", "Server log lines at ERROR level (first few per server):"]
        for name, errors in results["server_log_errors"].items():
            for line in errors:
                lines.append(f"- {name}: `{line[:200]}`")
    return "\n".join(lines)


def chat_markdown(results: dict[str, Any]) -> list[str]:
    """The self-hosted rows: turns and first text, then the concurrent streams."""
    rows = [r for r in results["rows"] if r.get("group") == "chat"]
    if not rows:
        return []
    lines = [
        "",
        "| self-hosted row | server | clients | turns/s | turn p50 ms | turn p99 ms | first text p50 ms"
        " | first text p99 ms | failed | stored | /metrics | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["id"].startswith("chat_streams"):
            continue
        ok = row.get("status") == "ok"
        lines.append(
            f"| {row['id']} | {row.get('server', '')} | {_fmt(row.get('clients'))} | "
            f"{_fmt(row.get('turns_per_s'), 1) if ok else row.get('status')} | {_fmt(row.get('turn_p50_ms'), 1)} | "
            f"{_fmt(row.get('turn_p99_ms'), 1)} | {_fmt(row.get('ttft_p50_ms'), 1)} | "
            f"{_fmt(row.get('ttft_p99_ms'), 1)} | "
            f"{_fmt(row.get('failed'))} | {row.get('stored_check', '')} | {row.get('metrics_check', '')} | "
            f"{row.get('detail', '') if not ok else ''} |"
        )
    lines += [
        "",
        "| streams row | server | streams | completed | stream p50 ms | stream p99 ms | /health p50 ms"
        " | /health p99 ms | /health max ms | workers' RSS before → peak MiB | KiB per stream | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row["id"].startswith("chat_streams"):
            continue
        probe = row.get("health_probe") or {}
        lines.append(
            f"| {row['id']} | {row.get('server', '')} | {_fmt(row.get('streams'))} | {_fmt(row.get('completed'))} | "
            f"{_fmt(row.get('turn_p50_ms'), 1)} | {_fmt(row.get('turn_p99_ms'), 1)} | "
            f"{_fmt(row.get('health_p50_ms'), 1)} | {_fmt(row.get('health_p99_ms'), 1)} | "
            f"{_fmt(probe.get('max_ms'), 1)} | "
            f"{_fmt(row.get('rss_before_mb'), 1)} → {_fmt(row.get('rss_peak_mb'), 1)} | "
            f"{_fmt(row.get('kib_per_stream'), 1)} | {row.get('detail', '') if row.get('status') != 'ok' else ''} |"
        )
    s = results.get("selfhosted_startup") or {}
    if s.get("status") == "ok" or "gunicorn_to_first_answer_s" in s:
        parts = []
        if s.get("status") == "ok":
            parts.append(
                f"import + create_app() {s['create_app_s'] * 1000:.0f} ms, warm() {s['warm_s'] * 1000:.0f} ms"
                f" (median of {s['runs']} fresh processes)"
            )
        if "gunicorn_to_first_answer_s" in s:
            parts.append(
                f"gunicorn start to /health {s['gunicorn_to_health_s']:.2f} s, to the first answer"
                f" {s['gunicorn_to_first_answer_s']:.2f} s (that turn {s.get('first_answer_ms')} ms)"
            )
        lines += ["", "Self-hosted start-up: " + "; ".join(parts) + "."]
    return lines


def log_tail_errors(scratch: Path, per_server: int = 3) -> dict[str, list[str]]:
    """The first few ERROR/Traceback lines of each server's log, so a failing row shows why."""
    found: dict[str, list[str]] = {}
    for log in sorted(scratch.glob("*.log")):
        lines = []
        with open(log, errors="replace") as handle:
            for line in handle:
                if '"level": "ERROR"' in line or "Traceback" in line or line.startswith("ERROR"):
                    lines.append(line.strip())
                    if len(lines) >= per_server:
                        break
        if lines:
            found[log.stem] = lines
    return found
