"""api_calls' report: the table of calls and times, and the findings."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


def print_report(results: list[dict], skipped: list[str], inventory_rows: list[dict]) -> None:
    print(f"{'tool':<10} | {'run':<9} | {'tasks':>5} | {'failed':>6} | {'changed':>7} | {'API calls':>9} | "
          f"{'GET':>5} | {'writes':>6} | {'calls/guest':>11} | {'wall s':>7} | {'in tasks s':>10}")
    print("-" * 107)
    for r in results:
        print(f"{r['tool']:<10} | {r['run']:<9} | {r['tasks']:>5} | {r['failed']:>6} | {r['changed']:>7} | "
              f"{r['calls']:>9} | {r['gets']:>5} | {r['writes']:>6} | {r['per_guest_calls']:>11.2f} | "
              f"{r['wall_s']:>7.1f} | {r['task_s']:>10.1f}")
    print()
    print("API calls per guest (attributed to tasks by time):")
    ids = list(results[0]["by_guest"]) if results else []
    print(f"{'tool':<10} | {'run':<9} | " + " | ".join(f"{gid:>5}" for gid in ids))
    for r in results:
        print(f"{r['tool']:<10} | {r['run']:<9} | " + " | ".join(f"{r['by_guest'].get(gid, 0):>5}" for gid in ids))
    print()
    for r in results:
        cats = ", ".join(f"{name} {count}" for name, count in r["categories"].items())
        print(f"{r['tool']} {r['run']} by request: {cats}")
    print()
    if inventory_rows:
        print(f"{'inventory plugin':<28} | {'variant':<16} | {'guests':>6} | {'hosts':>5} | {'API calls':>9} | "
              f"{'best s':>6} | {'median s':>8}")
        print("-" * 96)
        for row in inventory_rows:
            print(f"{row['plugin']:<28} | {row['variant'] or '-':<16} | {row['guests']:>6} | {row['hosts']:>5} | "
                  f"{row['calls']:>9} | {row['best_s']:>6.2f} | {row['median_s']:>8.2f}")
        print()
    for r in results:
        if "end_state" in r:
            diffs = {gid: d for gid, d in r["end_state"].items() if d}
            text = "; ".join(f"{gid}: {', '.join(d)}" for gid, d in diffs.items()) or "none"
            print(f"{r['tool']} end state, differences from proxmox_guest's desired config: {text}")
    print()
    print("Findings:")
    for line in findings(results, skipped, inventory_rows):
        print(f"- {line}")
    print()


def findings(results: list[dict], skipped: list[str], inventory_rows: list[dict]) -> list[str]:
    out = [f"community.proxmox {item}" for item in skipped]
    for r in results:
        if r["error"]:
            out.append(f"{r['tool']} {r['run']}: {r['error']}")
        for task in r["per_task"]:
            if task["failed"]:
                out.append(f"{r['tool']} {r['run']} task '{task['guest']} {task['step']}' failed: {task['msg'][:400]}")
        if r["rejected"]:
            out.append(f"{r['tool']} {r['run']}: requests answered with an error: "
                       f"{'; '.join(sorted(set(r['rejected'])))}")
        if r["missing_probes"] > r["missing_probe_paths"]:
            out.append(f"{r['tool']} {r['run']}: {r['missing_probes']} GET config answered 500 (guest does not exist "
                       f"yet) for {r['missing_probe_paths']} guests: "
                       f"{r['missing_probes'] - r['missing_probe_paths']} are retries of that same request")
        if r["repeated_reads"]:
            text = ", ".join(f"{name} {count}" for name, count in r["repeated_reads"].items())
            out.append(f"{r['tool']} {r['run']}: {sum(r['repeated_reads'].values())} repeated reads (the same GET "
                       f"again within one task, no write in between): {text}")
        if r["run"] == "unchanged":
            changed = [f"{t['guest']} {t['step']}" for t in r["per_task"] if t["changed"]]
            if changed:
                out.append(f"{r['tool']} unchanged run reports changed for: {', '.join(changed)}")
            if r["writes"]:
                out.append(f"{r['tool']} unchanged run writes: {'; '.join(r['write_list'][:12])}"
                           + (" ..." if len(r["write_list"]) > 12 else ""))
        if r["tool"] == "ours":
            counted = sum(t["api_calls"] or 0 for t in r["per_task"])
            if counted != r["calls"]:
                out.append(f"ours {r['run']}: modules counted {counted} API calls, pvesim logged {r['calls']}")
        if r["unattributed"]:
            out.append(f"{r['tool']} {r['run']}: {r['unattributed']} requests outside every task's time window")
    for row in inventory_rows:
        if row["error"]:
            out.append(f"inventory {row['plugin']} {row['variant']} failed: {row['error']}")
        elif row["hosts"] < row["guests"]:
            out.append(f"inventory {row['plugin']} {row['variant']} listed {row['hosts']} of {row['guests']} guests")
    return out
