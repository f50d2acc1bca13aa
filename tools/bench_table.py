#!/usr/bin/env python3
"""Tables for tools/bench.sh.

  bench_table.py suite RESULTS.jsonl
      one row per (case, run) of `spate bench --json` lines.
  bench_table.py compare RESULTS.jsonl ANCHOR_RUN.txt
      Spate's suite next to the NATS JetStream anchor's lines
      (shared/anchors/jetstream/run.sh output), with Spate/JetStream ratios.
  bench_table.py check RESULTS.jsonl CASES
      exit 1 unless there are CASES results, none failed, and every one has
      non-zero rates, latencies and server CPU (the CI smoke test).
"""
import json
import os
import re
import statistics
import sys

CASES = {
    "1": "1 pub async w1000, 128 B",
    "2": "1 pub async w1000, 1 KB",
    "3": "4 pubs / 4 channels, async",
    "4": "sync publish, 128 B",
    "5": "1 pub + 1 durable sub (MIF 1000, manual ack)",
    "6": "catch-up read from FIRST",
    "7": "open loop 10k msgs/s, 1 sub",
}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ms(role, q):
    if not role or not role["latency"]["count"]:
        return "-"
    return "%.2f" % (role["latency"][q + "_us"] / 1000.0)


def rate(role):
    return "%.0f" % role["msgs_per_s"] if role else "-"


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def suite(path):
    header = ["case", "what", "run", "pub msgs/s", "pub MB/s", "ack p50 ms", "ack p99 ms",
              "ack p99.9 ms", "sub msgs/s", "e2e p50 ms", "e2e p99 ms", "e2e p99.9 ms",
              "server CPU s", "msgs/CPU-s", "load 1m"]
    rows = []
    for r in sorted(load(path), key=lambda r: (r["label"], r.get("run", 1))):
        what = CASES.get(r["label"], r.get("config", {}).get("description", ""))
        if r.get("failed"):
            rows.append([r["label"], what, r.get("run", 1), "FAILED"] + [""] * 11)
            continue
        pub, sub = r.get("pub"), r.get("sub")
        # A catch-up read's "end-to-end" latency is only the stored
        # messages' age: not shown.
        e2e = sub if pub else None
        rows.append([
            r["label"], what, r.get("run", 1), rate(pub),
            "%.2f" % pub["mb_per_s"] if pub else "-",
            ms(pub, "p50"), ms(pub, "p99"), ms(pub, "p999"), rate(sub),
            ms(e2e, "p50"), ms(e2e, "p99"), ms(e2e, "p999"),
            "%.2f" % r["server_cpu_s"], "%.0f" % r["msgs_per_server_cpu_s"],
            "%.1f-%.1f" % (r["loadavg_1m_start"], r["loadavg_1m_end"]),
        ])
    extra = os.environ.get("SPATE_BENCH_CONFIG", "").strip()
    if extra:
        setup = "NOT the standard setup: every node's config adds '%s'" % extra
    else:
        setup = "fsync before every ack"
    print("Spate, 3 nodes on 127.0.0.1, replication 3, %s; latencies in ms; "
          "server CPU = sum over the 3 nodes during the case" % setup)
    print_table(header, rows)


# ---- side by side ------------------------------------------------------------

def parse_anchor(path):
    """The anchor's `jetstream key=value ...` lines, keyed by server column."""
    out = []
    with open(path) as f:
        for line in f:
            if not line.startswith("jetstream ") or "msgs_per_s=" not in line:
                continue
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            kv["server"] = kv.get("server", "?")
            kv["sync_interval"] = kv.get("sync_interval", "?")
            out.append(kv)
    return out


def median(values):
    return statistics.median(values) if values else None


def compare(results_path, anchor_path):
    ours = [r for r in load(results_path) if not r.get("failed")]
    js = parse_anchor(anchor_path)
    with open(anchor_path) as f:
        for line in f:
            if line.startswith("# machine") or line.startswith("# disk"):
                print(line.rstrip())

    def spate(case, role, field):
        vals = []
        for r in ours:
            if r["label"] != case or role not in r:
                continue
            if field == "msgs_per_s":
                vals.append(r[role]["msgs_per_s"])
            else:
                vals.append(r[role]["latency"][field] / 1000.0)
        return median(vals), len(vals)

    def jet(column, mode, size, replicas, field):
        server, sync = column
        vals = []
        for kv in js:
            if (kv.get("mode") == mode and kv.get("size") == size and kv.get("R") == replicas
                    and kv["server"] == server and kv["sync_interval"].startswith(sync)):
                if field in kv:
                    v = float(kv[field])
                    vals.append(v if field == "msgs_per_s" else v / 1000.0)
        return median(vals)

    columns = [("2.9.10", "default"), ("2.10.27", "default"), ("2.10.27", "always")]
    names = ["JS 2.9.10 fsync/2min", "JS 2.10.27 fsync/2min",
             "JS 2.10.27 always (fsync before ack)"]
    rows_spec = [
        ("1", "1 pub async w1000 128 B R3: msgs/s", "pub", "msgs_per_s", ("async_pub", "128", "3")),
        ("1", "  publish->ack p50 ms", "pub", "p50_us", ("async_pub", "128", "3")),
        ("1", "  publish->ack p99 ms", "pub", "p99_us", ("async_pub", "128", "3")),
        ("2", "1 pub async w1000 1 KB R3: msgs/s", "pub", "msgs_per_s", ("async_pub", "1024", "3")),
        ("3", "4 pubs on 4 channels async: msgs/s", "pub", "msgs_per_s", None),
        ("4", "sync publish 128 B R3: msgs/s", "pub", "msgs_per_s", ("sync_pub", "128", "3")),
        ("4", "  sync publish p50 ms", "pub", "p50_us", ("sync_pub", "128", "3")),
        ("4", "  sync publish p99 ms", "pub", "p99_us", ("sync_pub", "128", "3")),
        ("5", "pub + durable sub: pub msgs/s", "pub", "msgs_per_s", None),
        ("5", "  sub msgs/s", "sub", "msgs_per_s", None),
        ("5", "  end-to-end p99 ms", "sub", "p99_us", None),
        ("6", "catch-up read 200k, acked: msgs/s", "sub", "msgs_per_s", ("consume", "128", "3")),
        ("7", "open loop 10k/s: publish->ack p99 ms", "pub", "p99_us", None),
        ("7", "  end-to-end p99 ms", "sub", "p99_us", None),
    ]
    header = ["case", "measure", "Spate (fsync before ack)"]
    for n in names:
        header += [n, "Spate/JS"]
    rows = []

    def fmt(v, field):
        if v is None:
            return "-"
        return "%.0f" % v if field == "msgs_per_s" else "%.2f" % v

    runs = 0
    for case, measure, role, field, jskey in rows_spec:
        value, n = spate(case, role, field)
        runs = max(runs, n)
        row = [case, measure, fmt(value, field)]
        for col in columns:
            j = jet(col, jskey[0], jskey[1], jskey[2], field) if jskey else None
            row.append(fmt(j, field))
            row.append("%.2fx" % (value / j) if (value is not None and j) else "-")
        rows.append(row)
    extra = os.environ.get("SPATE_BENCH_CONFIG", "").strip()
    if extra:
        print("WARNING: NOT the standard setup, Spate's nodes ran with '%s': the "
              "'fsync before ack' label below does not hold" % extra)
    print("Side by side on this machine, one invocation (JetStream anchor phases first, "
          "then Spate's suite; medians over %d Spate run(s) and over the anchor's lines)." % runs)
    print("Durability differs: Spate fsyncs on a majority before every ack; JetStream's "
          "default (2.9.10, and 2.10 without sync_interval) fsyncs every 2 minutes, so its "
          "acks mean 'in the page cache of a quorum'. Only the 'always' column is like for like.")
    print("Case 6: Spate's reader is a plain subscription with auto acks (MaxInFlight "
          "1000); JetStream's is a durable pull consumer with explicit async acks (Fetch 1000).")
    print("Ratios are Spate/JetStream: above 1 is better for msgs/s, below 1 is better for "
          "latency. '-': no counterpart (jsbench has one publisher and no concurrent consumer).")
    print_table(header, rows)


def check(path, want):
    rs = load(path)
    problems = []
    if len(rs) != want:
        problems.append("%d results, want %d" % (len(rs), want))
    for r in rs:
        if r.get("failed"):
            problems.append("case %s failed" % r["label"])
            continue
        for role in ("pub", "sub"):
            if role not in r:
                continue
            x = r[role]
            lat = x["latency"]
            if not (x["msgs"] > 0 and x["msgs_per_s"] > 0 and x["mb_per_s"] > 0):
                problems.append("case %s %s: zero rate %s" % (r["label"], role, x))
            if not (0 < lat["p50_us"] <= lat["p99_us"] <= lat["p999_us"] <= lat["max_us"] < 60e6):
                problems.append("case %s %s: bad latencies %s" % (r["label"], role, lat))
        if len(r["servers"]) != 3 or any(s["cpu_s"] < 0 for s in r["servers"]):
            problems.append("case %s: server CPU %s" % (r["label"], r["servers"]))
    # CPU time comes in 10 ms ticks, so a tiny case may show none; the
    # whole suite must show some for every server.
    cpu = {}
    for r in rs:
        for s in r.get("servers", []):
            cpu[s["pid"]] = cpu.get(s["pid"], 0) + s["cpu_s"]
    if len(cpu) != 3 or not all(v > 0 for v in cpu.values()):
        problems.append("server CPU over the suite: %s" % cpu)
    for p in problems:
        print("bench check: " + p)
    print("bench check: %d results, %d problem(s)" % (len(rs), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "suite":
        suite(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], int(sys.argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
