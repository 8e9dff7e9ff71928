//! The table printed at the end: our numbers, the CRI floor, the upstream kubelet v1.35
//! measured on a machine of this kind (issue 8), and the targets. A target column says
//! `met` or `MISSED`; nothing fails on it.

use std::fmt::Write as _;

use crate::stats::{Dist, opt_secs, secs};
use crate::{Results, Row, Startup};

/// Median over rounds of "all pods running".
fn med_all(v: &[Startup]) -> Option<f64> {
    Dist::new(v.iter().map(|s| s.all).collect()).median()
}

/// Per-pod times of every round together.
fn pooled(v: &[Startup]) -> Dist {
    Dist::new(
        v.iter()
            .flat_map(|s| s.per_pod.values().iter().copied())
            .collect(),
    )
}

fn med(v: &[f64]) -> Option<f64> {
    Dist::new(v.to_vec()).median()
}

fn list(v: impl IntoIterator<Item = f64>) -> String {
    v.into_iter().map(secs).collect::<Vec<_>>().join(", ")
}

/// Aligned columns, first column left, the rest left too (cells are short text).
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let cols = self.head.len();
        let mut width = vec![0; cols];
        for r in std::iter::once(&self.head).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |out: &mut String, r: &[String]| {
            let cells: Vec<String> = (0..cols)
                .map(|i| {
                    let c = r.get(i).map(String::as_str).unwrap_or("");
                    format!("{c:<w$}", w = width[i])
                })
                .collect();
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        };
        line(out, &self.head);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(out, &rule);
        for r in &self.rows {
            line(out, r);
        }
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn opt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

fn p50_p99(d: &Dist) -> String {
    match (d.median(), d.pct(99.0)) {
        (Some(a), Some(b)) => format!("{} / {}", secs(a), secs(b)),
        _ => "-".into(),
    }
}

fn upstream_startup(n: usize) -> &'static str {
    match n {
        30 => "1.9 s vs 1.55 s floor (1.25x)",
        100..=120 => "7.8 s vs 6.8 s floor (1.15x) @100",
        _ => "-",
    }
}

fn upstream_teardown(n: usize) -> &'static str {
    match n {
        30 => "6-10 s vs 1.5 s floor",
        100..=120 => "70 s vs 5.7 s floor @100",
        _ => "-",
    }
}

fn upstream_usage(n: usize) -> (&'static str, &'static str) {
    match n {
        0 => ("62 MiB", "0.45%"),
        30 => ("74 MiB", "1.5%"),
        100..=120 => ("93 MiB @100", "3.5% @100"),
        _ => ("-", "-"),
    }
}

/// Targets of issue 8 as (limit, text) for RSS MiB and CPU %.
fn usage_targets(n: usize) -> (Option<f64>, Option<f64>) {
    match n {
        0 => (Some(12.0), Some(0.1)),
        n if n >= 100 => (Some(20.0), Some(0.7)),
        _ => (None, None),
    }
}

pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(out);
    let _ = writeln!(out, "kubelet-rs benchmark (make bench)");
    let _ = writeln!(
        out,
        "machine: {} cpus ({}), {:.1} GiB, kernel {}, {}, {}",
        m.cpus, m.cpu_model, m.mem_gib, m.kernel, m.runtime, m.runc
    );
    let _ = writeln!(
        out,
        "load average before: {}, after: {}   (the machine may be shared: compare with the floor, not absolute)",
        m.load_before, m.load_after
    );
    let _ = writeln!(
        out,
        "kubelet: {} ({:.1} MiB); windows: idle {:.0} s, steady {:.0} s; {} round(s); bench took {:.0} s",
        m.kubelet_bin, m.kubelet_size_mib, r.windows.0, r.windows.1, r.rounds, r.elapsed
    );
    let _ = writeln!(out, "code layout: {}", m.code_layout);

    // 1. Startup.
    let _ = writeln!(
        out,
        "\n1. Pod startup: manifests written -> every container RUNNING in CRI (polled every 25 ms)\n   \
         CRI floor: RunPodSandbox + CreateContainer + StartContainer for all pods at once, same configs\n   \
         median of {} round(s), floor and kubelet alternating; per-pod p50/p99 over all rounds",
        r.rounds
    );
    let mut t = Table::new(&[
        "N",
        "kubelet all",
        "per pod p50 / p99",
        "floor all",
        "floor p50 / p99",
        "ratio",
        "upstream v1.35",
        "target <=1.05x",
    ]);
    for row in &r.rows {
        let (k, f) = (&row.kubelet_start, &row.floor_start);
        let rt = ratio(med_all(k), med_all(f));
        let pp = |v: &[Startup]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                p50_p99(&pooled(v))
            }
        };
        t.row(vec![
            row.n.to_string(),
            opt_secs(med_all(k)),
            pp(k),
            opt_secs(med_all(f)),
            pp(f),
            opt_ratio(rt),
            upstream_startup(row.n).into(),
            verdict(rt.map(|x| x <= 1.05)).into(),
        ]);
    }
    t.render(&mut out);

    // 2. Steady state.
    let _ = writeln!(
        out,
        "\n2. Steady state: kubelet process RSS (VmRSS, sampled 1/s) and CPU (utime+stime, % of one core)"
    );
    let mut t = Table::new(&[
        "pods",
        "RSS mean / max",
        "anon + file",
        "CPU",
        "threads",
        "PLEG relist p50 / p99 (n)",
        "list proxy p50",
        "upstream RSS / CPU",
        "target RSS / CPU",
    ]);
    let usage_row = |t: &mut Table,
                     label: String,
                     n: usize,
                     u: Option<&crate::procfs::Usage>,
                     row: Option<&Row>| {
        let (up_rss, up_cpu) = upstream_usage(n);
        let (t_rss, t_cpu) = usage_targets(n);
        let target = match (t_rss, t_cpu) {
            (Some(a), Some(b)) => {
                let ok_rss = u.and_then(|u| u.rss_mib.max()).map(|v| v < a);
                let ok_cpu = u.map(|u| u.cpu_pct < b);
                format!("<{a} MiB {} / <{b}% {}", verdict(ok_rss), verdict(ok_cpu))
            }
            _ => "-".into(),
        };
        let pleg = row
            .filter(|r| !r.pleg_log.is_empty())
            .map(|r| format!("{} ({})", p50_p99(&r.pleg_log), r.pleg_log.len()))
            .unwrap_or_else(|| "-".into());
        t.row(vec![
            label,
            u.map(|u| {
                format!(
                    "{:.1} / {:.1} MiB",
                    u.rss_mib.mean().unwrap_or(0.0),
                    u.rss_mib.max().unwrap_or(0.0)
                )
            })
            .unwrap_or_else(|| "-".into()),
            u.map(|u| format!("{:.1} + {:.1}", u.anon_mib, u.file_mib))
                .unwrap_or_else(|| "-".into()),
            u.map(|u| format!("{:.3}%", u.cpu_pct))
                .unwrap_or_else(|| "-".into()),
            u.map(|u| u.threads.to_string())
                .unwrap_or_else(|| "-".into()),
            pleg,
            row.and_then(|r| r.pleg_proxy.median())
                .map(secs)
                .unwrap_or_else(|| "-".into()),
            format!("{up_rss} / {up_cpu}"),
            target,
        ]);
    };
    usage_row(
        &mut t,
        format!("0 (idle {:.0} s)", r.windows.0),
        0,
        r.idle.as_ref(),
        None,
    );
    for row in &r.rows {
        usage_row(
            &mut t,
            format!("{} ({:.0} s)", row.n, r.windows.1),
            row.n,
            row.steady.as_ref(),
            Some(row),
        );
    }
    for row in &r.rows {
        if let Some(u) = &row.after_teardown {
            t.row(vec![
                format!("0 after {} torn down", row.n),
                format!(
                    "{:.1} / {:.1} MiB",
                    u.rss_mib.mean().unwrap_or(0.0),
                    u.rss_mib.max().unwrap_or(0.0)
                ),
                format!("{:.1} + {:.1}", u.anon_mib, u.file_mib),
                format!("{:.3}%", u.cpu_pct),
                u.threads.to_string(),
                "-".into(),
                "-".into(),
                format!("peak RSS (VmHWM) {:.1} MiB", u.hwm_mib),
                String::new(),
            ]);
        }
    }
    t.render(&mut out);
    let _ = writeln!(
        out,
        "   PLEG relist: from the kubelet's own trace line (duration of ListPodSandbox + ListContainers\n   \
         + inspections of what changed); list proxy: the same two list calls made by the bench."
    );

    // 3. Reactions.
    let _ = writeln!(out, "\n3. Reaction (median, samples in brackets)");
    let mut t = Table::new(&[
        "N",
        "kill -9 -> running",
        "(runtime saw exit)",
        "edit -> new running",
        "remove -> sandbox gone",
        "upstream kill",
        "target kill <0.3 s",
    ]);
    for row in &r.rows {
        let rx = &row.reactions;
        let med = |d: &Dist| {
            d.median()
                .map(|m| format!("{} [{}]", secs(m), d.len()))
                .unwrap_or_else(|| "-".into())
        };
        t.row(vec![
            row.n.to_string(),
            med(&rx.kill),
            med(&rx.kill_exit_seen),
            med(&rx.edit),
            med(&rx.remove),
            "0.9-1.1 s".into(),
            verdict(rx.kill.median().map(|m| m < 0.3)).into(),
        ]);
    }
    t.render(&mut out);

    // 4. Node API.
    let _ = writeln!(
        out,
        "\n4. Node API (read-only port, HTTP, one connection per request)\n   \
         CRI part: ListContainerStats + ImageFsInfo (what the summary asks the runtime) made directly by the bench"
    );
    let mut t = Table::new(&[
        "N",
        "endpoint",
        "p50 / p99",
        "bytes",
        "pods listed",
        "CRI part p50",
    ]);
    for row in &r.rows {
        for a in &row.api {
            match &a.outcome {
                Ok(times) => t.row(vec![
                    row.n.to_string(),
                    a.path.clone(),
                    p50_p99(&times.latency),
                    times.bytes.to_string(),
                    times
                        .pods
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if a.path == "/stats/summary" {
                        opt_secs(row.stats_floor.median())
                    } else {
                        "-".into()
                    },
                ]),
                Err(e) => t.row(vec![
                    row.n.to_string(),
                    a.path.clone(),
                    format!("not available: {}", e.chars().take(70).collect::<String>()),
                ]),
            }
        }
    }
    t.render(&mut out);

    // 5. Teardown.
    let _ = writeln!(
        out,
        "\n5. Teardown: all manifests removed -> all sandboxes removed; floor: StopPodSandbox + RemovePodSandbox, all at once\n   \
         (median of the rounds)"
    );
    let mut t = Table::new(&[
        "N",
        "kubelet",
        "floor",
        "ratio",
        "upstream v1.35",
        "target <=1.2x",
    ]);
    for row in &r.rows {
        let rt = ratio(med(&row.teardown), med(&row.floor_teardown));
        t.row(vec![
            row.n.to_string(),
            opt_secs(med(&row.teardown)),
            opt_secs(med(&row.floor_teardown)),
            opt_ratio(rt),
            upstream_teardown(row.n).into(),
            verdict(rt.map(|x| x <= 1.2)).into(),
        ]);
    }
    t.render(&mut out);

    // Growth with N.
    if r.rows.len() >= 2 {
        let _ = writeln!(out, "\nGrowth with N (per pod beyond the first N measured)");
        let first = &r.rows[0];
        for row in &r.rows[1..] {
            let dn = (row.n - first.n) as f64;
            let rss = |x: &Row| x.steady.as_ref().and_then(|u| u.rss_mib.mean());
            let start = |x: &Row| pooled(&x.kubelet_start).median();
            let mut parts = Vec::new();
            if let (Some(a), Some(b)) = (rss(first), rss(row)) {
                parts.push(format!("RSS +{:.0} KiB/pod", (b - a) * 1024.0 / dn));
            }
            if let (Some(a), Some(b)) = (start(first), start(row)) {
                parts.push(format!("per-pod startup p50 {} -> {}", secs(a), secs(b)));
            }
            let _ = writeln!(out, "  N={} -> {}: {}", first.n, row.n, parts.join(", "));
        }
    }

    // Notes.
    let mut notes = String::new();
    for row in &r.rows {
        for n in &row.notes {
            let _ = writeln!(notes, "  N={}: {n}", row.n);
        }
        if !row.log_problems.is_empty() {
            let _ = writeln!(
                notes,
                "  N={}: the kubelet logged {} warnings/errors; first: {}",
                row.n,
                row.log_problems.len(),
                row.log_problems[0]
            );
        }
        if !row.kubelet_start.is_empty() || !row.floor_start.is_empty() {
            let _ = writeln!(
                notes,
                "  N={}: rounds: startup kubelet [{}], floor [{}] (last StartContainer returned [{}]); \
                 teardown kubelet [{}], floor [{}]",
                row.n,
                list(row.kubelet_start.iter().map(|s| s.all)),
                list(row.floor_start.iter().map(|s| s.all)),
                list(row.floor_start.iter().filter_map(|s| s.returned_all)),
                list(row.teardown.iter().copied()),
                list(row.floor_teardown.iter().copied()),
            );
        }
        let per_pod_ops = |ops: &std::collections::BTreeMap<String, f64>| {
            let total: f64 = ops.values().sum();
            let mut v: Vec<_> = ops.iter().collect();
            v.sort_by(|a, b| b.1.partial_cmp(a.1).unwrap());
            format!(
                "{total:.0} calls, {:.1}/pod: {}",
                total / row.n as f64,
                v.iter()
                    .map(|(k, n)| format!("{k} {n:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if let Some(ops) = row.kubelet_start.first().and_then(|s| s.cri_ops.as_ref()) {
            let _ = writeln!(
                notes,
                "  N={}: CRI calls by the kubelet during startup (round 1): {}",
                row.n,
                per_pod_ops(ops)
            );
        }
        if let Some(Some(ops)) = row.teardown_ops.first() {
            let _ = writeln!(
                notes,
                "  N={}: CRI calls by the kubelet during teardown (round 1): {}",
                row.n,
                per_pod_ops(ops)
            );
        }
        if !row.stats_parts[0].is_empty() {
            let _ = writeln!(
                notes,
                "  N={}: stats CRI calls one at a time (p50): ListContainerStats {}, \
                 ListPodSandboxStats {} (not used by the summary), ImageFsInfo {}",
                row.n,
                opt_secs(row.stats_parts[0].median()),
                opt_secs(row.stats_parts[1].median()),
                opt_secs(row.stats_parts[2].median()),
            );
        }
        if row.anon_after_rounds.len() > 1 {
            let _ = writeln!(
                notes,
                "  N={}: anonymous RSS after each round's teardown (0 pods): {} MiB",
                row.n,
                row.anon_after_rounds
                    .iter()
                    .map(|v| format!("{v:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(x) = row.kubelet_exit {
            let _ = writeln!(
                notes,
                "  N={}: kubelet exited {} after SIGTERM",
                row.n,
                secs(x)
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes\n{notes}");
    }
    out
}
