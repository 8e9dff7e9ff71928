//! `kubelet-bench` (`make bench`): what the kubelet itself costs in time, CPU and memory,
//! and how that grows with the number of pods. A measuring tool, not a test: it reports
//! numbers and never fails on them (exit status is non-zero only if it could not measure).
//!
//! For each N it first measures the CRI floor (the sandbox and container calls the
//! kubelet would make, made directly and concurrently), then runs the release kubelet in
//! standalone mode on N static pods and measures startup, steady-state RSS/CPU and PLEG
//! relists, reactions (kill, edit, remove), node API latency and teardown. Everything it
//! creates carries the node label `kubelet-rs.io/node=kubelet-bench-<pid>-...` and is
//! removed at the end, on error and on Ctrl-C. See docs/benchmarks.md.

mod cri_util;
mod floor;
mod kubelet;
mod layout;
mod nodeapi;
mod procfs;
mod report;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::labels;

use cri_util::{Raw, containers, is_running, purge, selector, wait_all_running, wait_no_sandboxes};
use floor::Floor;
use kubelet::{Kubelet, manifest};
use nodeapi::ApiResult;
use procfs::Usage;
use stats::Dist;

const USAGE: &str = "\
kubelet-bench: the kubelet's own cost in time, CPU and memory, against the CRI floor

usage: kubelet-bench [--pods 1,30,110] [--quick] [--kubelet PATH] [--endpoint unix:///...]
                     [--idle SECS] [--steady SECS] [--rounds R] [--keep]
       kubelet-bench --cleanup

  --pods LIST     pod counts to measure, in order (default 1,30,110)
  --quick         short windows (idle 5 s, steady 10 s) and fewer samples
  --kubelet PATH  the kubelet binary (default: `kubelet` next to this binary)
  --endpoint EP   CRI endpoint (default $CONTAINER_RUNTIME_ENDPOINT)
  --idle SECS     idle window with 0 pods (default 30)
  --steady SECS   steady-state window with N pods (default 60)
  --rounds R      startup and teardown rounds per N, floor and kubelet alternating
                  (default 3; --quick: 1); the table shows medians
  --keep          keep the work directory (kubelet logs) and print where it is
  --cleanup       only remove sandboxes left by bench runs whose process is gone (a run
                  whose containerd went away could not clean up), then exit
";

#[derive(Debug, Clone)]
pub struct Args {
    pub pods: Vec<usize>,
    pub quick: bool,
    pub kubelet: PathBuf,
    pub endpoint: String,
    pub idle: Duration,
    pub steady: Duration,
    pub keep: bool,
    /// Startup and teardown are measured this many times per N (floor and kubelet
    /// alternating); the table shows medians.
    pub rounds: usize,
    /// Only remove what earlier, interrupted bench runs left in the runtime, then exit.
    pub cleanup: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        pods: vec![1, 30, 110],
        quick: false,
        kubelet: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("kubelet")))
            .unwrap_or_else(|| PathBuf::from("target/release/kubelet")),
        endpoint: std::env::var("CONTAINER_RUNTIME_ENDPOINT").unwrap_or_default(),
        idle: Duration::from_secs(30),
        steady: Duration::from_secs(60),
        keep: false,
        rounds: 3,
        cleanup: false,
    };
    let (mut idle, mut steady, mut rounds) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| anyhow!("{key} needs a value"))
        };
        match key.as_str() {
            "--pods" => {
                args.pods = value()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .map_err(|e| anyhow!("--pods {s:?}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                if args.pods.is_empty() || args.pods.contains(&0) {
                    anyhow::bail!("--pods wants positive counts, e.g. 1,30,110");
                }
            }
            "--quick" => args.quick = true,
            "--kubelet" => args.kubelet = PathBuf::from(value()?),
            "--endpoint" => args.endpoint = value()?,
            "--idle" => idle = Some(Duration::from_secs_f64(value()?.parse()?)),
            "--steady" => steady = Some(Duration::from_secs_f64(value()?.parse()?)),
            "--keep" => args.keep = true,
            "--cleanup" => args.cleanup = true,
            "--rounds" => rounds = Some(value()?.parse::<usize>()?.max(1)),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    if args.quick {
        args.idle = Duration::from_secs(5);
        args.steady = Duration::from_secs(10);
        args.rounds = 1;
    }
    args.rounds = rounds.unwrap_or(args.rounds);
    args.idle = idle.unwrap_or(args.idle);
    args.steady = steady.unwrap_or(args.steady);
    if args.endpoint.is_empty() {
        anyhow::bail!(
            "no CRI endpoint: set CONTAINER_RUNTIME_ENDPOINT (eval \"$(scripts/node-env.sh env)\") or pass --endpoint"
        );
    }
    if !args.kubelet.is_file() && !args.cleanup {
        anyhow::bail!(
            "kubelet binary {} not found: cargo build --release, or pass --kubelet",
            args.kubelet.display()
        );
    }
    Ok(args)
}

/// Pod startup as seen by the poller: manifests written (or floor calls begun) → every
/// container RUNNING in CRI.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// Until the last pod was seen running (s).
    pub all: f64,
    pub per_pod: Dist,
    /// Floor only: until the last StartContainer returned (s).
    pub returned_all: Option<f64>,
    /// Kubelet only: CRI calls it made meanwhile, by operation (from its /metrics).
    pub cri_ops: Option<BTreeMap<String, f64>>,
}

/// One kill → replacement-running sample.
#[derive(Debug, Clone, Default)]
pub struct Reactions {
    /// kill -9 from the host → a new container of the pod RUNNING (s).
    pub kill: Dist,
    /// kill -9 → CRI shows the old container EXITED (the runtime's share) (s).
    pub kill_exit_seen: Dist,
    /// Manifest edited → new pod's container RUNNING (s).
    pub edit: Dist,
    /// Manifest removed → the pod's sandbox gone from CRI (s).
    pub remove: Dist,
}

#[derive(Debug, Clone, Default)]
pub struct Row {
    pub n: usize,
    /// One entry per round (round 1 first: a fresh kubelet).
    pub floor_start: Vec<Startup>,
    pub floor_teardown: Vec<f64>,
    pub kubelet_start: Vec<Startup>,
    pub steady: Option<Usage>,
    /// PLEG relist durations from the kubelet's log during the steady window (s).
    pub pleg_log: Dist,
    /// ListPodSandbox + ListContainers made by the bench with the node label (s).
    pub pleg_proxy: Dist,
    pub reactions: Reactions,
    pub api: Vec<ApiResult>,
    /// What /stats/summary asks the runtime for (ListContainerStats + ImageFsInfo with the
    /// node label; pod figures come from cgroups, not ListPodSandboxStats), made by the
    /// bench (s).
    pub stats_floor: Dist,
    /// One at a time: ListContainerStats, ListPodSandboxStats (which the kubelet no
    /// longer makes: shown for what it would cost), ImageFsInfo (s).
    pub stats_parts: [Dist; 3],
    pub teardown: Vec<f64>,
    /// CRI calls the kubelet made during each teardown round (from its /metrics).
    pub teardown_ops: Vec<Option<BTreeMap<String, f64>>>,
    pub after_teardown: Option<Usage>,
    /// Anonymous RSS (MiB) 2 s after each round's teardown: growth from round to round
    /// with nothing running would be a leak.
    pub anon_after_rounds: Vec<f64>,
    pub kubelet_exit: Option<f64>,
    pub leftovers: usize,
    pub log_problems: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub runtime: String,
    pub runc: String,
    pub load_before: String,
    pub load_after: String,
    pub kubelet_bin: String,
    pub kubelet_size_mib: f64,
    /// How well the binary's code layout matches link/symbol-order.txt.
    pub code_layout: String,
}

#[derive(Debug, Clone, Default)]
pub struct Results {
    pub machine: Machine,
    pub idle: Option<Usage>,
    pub rows: Vec<Row>,
    pub elapsed: f64,
    pub windows: (f64, f64),
    pub rounds: usize,
}

struct Ctx<'a> {
    args: &'a Args,
    cri: CriClient,
    raw: Raw,
    dir: PathBuf,
    prefix: String,
    image_ref: String,
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn probe_machine(cri: &CriClient, args: &Args) -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let runtime = match cri.version().await {
        Ok(v) => format!("{} {}", v.runtime_name, v.runtime_version),
        Err(e) => format!("unknown ({e})"),
    };
    let runc = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        mem_gib: mem_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        runtime,
        runc,
        load_before: loadavg(),
        load_after: String::new(),
        kubelet_bin: args.kubelet.display().to_string(),
        kubelet_size_mib: std::fs::metadata(&args.kubelet)
            .map(|m| m.len() as f64 / 1024.0 / 1024.0)
            .unwrap_or(0.0),
        code_layout: layout::describe(&args.kubelet),
    }
}

/// A node label of an earlier bench run whose process is gone.
fn is_stale_bench_node(node: &str) -> bool {
    let Some(rest) = node.strip_prefix("kubelet-bench-") else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence.
    pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } != 0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kubelet-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubelet-bench: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async_main(args))
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Waits while a containerd that just started still loads its CRI plugin (it answers
/// "server is not initialized yet" while it recovers earlier sandboxes; a minute at
/// most), and fails at once on any other error.
async fn wait_for_runtime(cri: &CriClient) -> Result<(), kubelet_core::runtime::cri::CriError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = false;
    loop {
        match cri.version().await {
            Ok(_) => return Ok(()),
            Err(e) if e.message().contains("not initialized") && Instant::now() < deadline => {
                if !said {
                    progress("the container runtime is still starting its CRI service; waiting");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn async_main(args: Args) -> ExitCode {
    let started = Instant::now();
    let prefix = format!("kubelet-bench-{}-", std::process::id());
    let cri = match cri_util::client(&args.endpoint) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kubelet-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = wait_for_runtime(&cri).await {
        eprintln!(
            "kubelet-bench: the container runtime at {} does not answer: {e}",
            args.endpoint
        );
        return ExitCode::from(2);
    }
    let stale = purge(&cri, is_stale_bench_node).await;
    if stale > 0 || args.cleanup {
        progress(format!(
            "removed {stale} sandboxes left by earlier, interrupted bench runs"
        ));
    }
    if args.cleanup {
        return ExitCode::SUCCESS;
    }
    let dir = match tempfile::Builder::new().prefix("kubelet-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kubelet-bench: temp dir: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::select! {
        r = run(&args, &cri, dir.path().to_path_buf(), &prefix) => r,
        sig = interrupted() => Err(anyhow!("interrupted by {sig}")),
    };
    // The run future is dropped by now: its kubelet got SIGTERM (pods stay); remove them.
    let purged = purge(&cri, |node| node.starts_with(&prefix)).await;
    if purged > 0 {
        progress(format!("cleanup: removed {purged} sandboxes"));
    }
    if args.keep {
        let kept = dir.keep();
        progress(format!("work directory kept: {}", kept.display()));
    }
    match outcome {
        Ok(mut results) => {
            results.elapsed = started.elapsed().as_secs_f64();
            results.machine.load_after = loadavg();
            print!("{}", report::render(&results));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kubelet-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: &Args, cri: &CriClient, dir: PathBuf, prefix: &str) -> anyhow::Result<Results> {
    let mut results = Results {
        machine: probe_machine(cri, args).await,
        windows: (args.idle.as_secs_f64(), args.steady.as_secs_f64()),
        rounds: args.rounds,
        ..Default::default()
    };
    progress(format!(
        "{} cpus, load {}, {}; kubelet {}",
        results.machine.cpus,
        results.machine.load_before,
        results.machine.runtime,
        results.machine.kubelet_bin
    ));
    // The image must be present: pull once (from the local registry), then use its id.
    let pull = cri.with_timeout(Duration::from_secs(300));
    if cri.image_status("busybox").await?.is_none() {
        progress("pulling busybox");
        pull.pull_image("busybox", None).await?;
    }
    let image_ref = cri
        .image_status("busybox")
        .await?
        .context("busybox is not present after pulling it")?
        .id;
    let ctx = Ctx {
        args,
        cri: cri.clone(),
        raw: Raw::new(&args.endpoint)?,
        dir,
        prefix: prefix.to_string(),
        image_ref,
    };
    // Warm-up (not measured): one floor pod, so the sandbox image and containerd's caches
    // are in place before anything is timed.
    progress("warm-up: one pod through the CRI floor");
    warm_up(&ctx).await?;

    for (i, &n) in args.pods.iter().enumerate() {
        let mut idle = None;
        let row = run_n(&ctx, n, i == 0, &mut idle).await;
        if idle.is_some() {
            results.idle = idle;
        }
        results.rows.push(row);
    }
    Ok(results)
}

async fn warm_up(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let node = format!("{}warm", ctx.prefix);
    let floor = Floor::new(
        ctx.cri.clone(),
        &ctx.args.endpoint,
        &ctx.dir.join("warm"),
        &node,
        &ctx.image_ref,
    )?;
    let pods = floor.pods(&[("warm.yaml".into(), manifest("warm", 100000))])?;
    let started: Vec<_> = floor
        .start(&pods, Instant::now())
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    floor.teardown(&started).await?;
    Ok(())
}

/// The N manifests of round `round` (each round has its own content, so new UIDs).
fn manifests(n: usize, round: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let name = format!("bench-{i:03}");
            (
                format!("{name}.yaml"),
                manifest(&name, 200000 + round as u64),
            )
        })
        .collect()
}

fn deadline_for(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(500) * n as u32
}

async fn run_n(ctx: &Ctx<'_>, n: usize, measure_idle: bool, idle: &mut Option<Usage>) -> Row {
    let mut row = Row {
        n,
        ..Default::default()
    };
    let floor = match make_floor(ctx, n) {
        Ok(f) => Some(f),
        Err(e) => {
            row.notes.push(format!("CRI floor: {e:#}"));
            None
        }
    };
    if let Some(floor) = &floor
        && let Err(e) = floor_round(ctx, floor, n, 0, &mut row).await
    {
        row.notes.push(format!("CRI floor: {e:#}"));
    }

    let name = format!("{}n{n}", ctx.prefix);
    let kdir = ctx.dir.join(format!("n{n}"));
    let mut kubelet = match Kubelet::start(
        &ctx.args.kubelet,
        &kdir,
        &name,
        &ctx.args.endpoint,
        (n + 10).max(110),
    ) {
        Ok(k) => k,
        Err(e) => {
            row.notes.push(format!("kubelet: {e:#}"));
            return row;
        }
    };
    let log_start = kubelet.log_len();
    let mut result = kubelet_n(ctx, n, &mut kubelet, measure_idle, idle, &mut row).await;
    for round in 1..ctx.args.rounds {
        if result.is_err() {
            break;
        }
        if let Some(floor) = &floor
            && let Err(e) = floor_round(ctx, floor, n, round, &mut row).await
        {
            row.notes
                .push(format!("CRI floor, round {}: {e:#}", round + 1));
        }
        result = kubelet_round(ctx, &kubelet, n, round, &mut row).await;
    }
    if let Err(e) = result {
        row.notes.push(format!("kubelet: {e:#}"));
        let tail = kubelet.log_tail(15);
        if !tail.is_empty() {
            row.notes.push(format!("last kubelet log lines:\n{tail}"));
        }
    }
    row.log_problems = kubelet.problems(log_start, kubelet.log_len());
    if !kubelet.alive() {
        row.notes.push("the kubelet exited by itself".into());
    }
    row.kubelet_exit = kubelet.stop().map(|d| d.as_secs_f64());
    row.leftovers = purge(&ctx.cri, |node| node == name).await;
    if row.leftovers > 0 {
        row.notes.push(format!(
            "{} sandboxes of this kubelet were still there at the end and were purged",
            row.leftovers
        ));
    }
    row
}

fn make_floor(ctx: &Ctx<'_>, n: usize) -> anyhow::Result<Floor> {
    Floor::new(
        ctx.cri.clone(),
        &ctx.args.endpoint,
        &ctx.dir.join(format!("f{n}")),
        &format!("{}f{n}", ctx.prefix),
        &ctx.image_ref,
    )
}

/// One floor round: start N pods directly (all at once), then tear them down.
async fn floor_round(
    ctx: &Ctx<'_>,
    floor: &Floor,
    n: usize,
    round: usize,
    row: &mut Row,
) -> anyhow::Result<()> {
    let pods = floor.pods(&manifests(n, round))?;
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    progress(format!(
        "N={n}: round {}: CRI floor: starting {n} pods directly",
        round + 1
    ));
    let t0 = Instant::now();
    let (started, seen) = tokio::join!(
        floor.start(&pods, t0),
        wait_all_running(&ctx.cri, &floor.node, &names, t0, deadline_for(n)),
    );
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for s in started {
        match s {
            Ok(s) => ok.push(s),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let returned_all = ok
        .iter()
        .map(|s| s.returned.as_secs_f64())
        .fold(0.0, f64::max);
    match seen {
        Ok(seen) => {
            let per_pod = Dist::from_durations(seen.values().copied());
            row.floor_start.push(Startup {
                all: per_pod.max().unwrap_or(0.0),
                per_pod,
                returned_all: Some(returned_all),
                cri_ops: None,
            });
        }
        Err(e) => errors.push(format!("{e:#}")),
    }
    let result = floor.teardown(&ok).await;
    let node = floor.node.clone();
    purge(&ctx.cri, |x| x == node).await;
    let (total, _) = result?;
    row.floor_teardown.push(total.as_secs_f64());
    if let Some(first) = errors.first() {
        anyhow::bail!("{} of {n} pods failed; first: {first}", errors.len());
    }
    // Let shims exit and containerd settle before the kubelet's turn.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// An extra kubelet round: write N manifests, wait until all run, remove them, wait
/// until all sandboxes are gone.
async fn kubelet_round(
    ctx: &Ctx<'_>,
    k: &Kubelet,
    n: usize,
    round: usize,
    row: &mut Row,
) -> anyhow::Result<()> {
    progress(format!(
        "N={n}: round {}: kubelet: start and teardown",
        round + 1
    ));
    let files = manifests(n, round);
    row.kubelet_start
        .push(kubelet_startup(ctx, k, &files).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (took, ops) = kubelet_teardown(ctx, k, &files).await?;
    row.teardown.push(took);
    row.teardown_ops.push(ops);
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(s) = procfs::snapshot(k.pid()) {
        row.anon_after_rounds.push(s.anon_kib as f64 / 1024.0);
    }
    Ok(())
}

async fn kubelet_startup(
    ctx: &Ctx<'_>,
    k: &Kubelet,
    files: &[(String, String)],
) -> anyhow::Result<Startup> {
    let names: Vec<String> = files
        .iter()
        .map(|(f, _)| k.pod_name(f.trim_end_matches(".yaml")))
        .collect();
    let before = nodeapi::runtime_ops(k.read_only_port).await;
    let t0 = Instant::now();
    for (file, text) in files {
        k.write_manifest(file, text)?;
    }
    let seen = wait_all_running(&ctx.cri, &k.name, &names, t0, deadline_for(files.len())).await?;
    let after = nodeapi::runtime_ops(k.read_only_port).await;
    let per_pod = Dist::from_durations(seen.values().copied());
    Ok(Startup {
        all: per_pod.max().unwrap_or(0.0),
        per_pod,
        returned_all: None,
        cri_ops: before.zip(after).map(|(b, a)| nodeapi::ops_delta(&b, &a)),
    })
}

async fn kubelet_teardown(
    ctx: &Ctx<'_>,
    k: &Kubelet,
    files: &[(String, String)],
) -> anyhow::Result<(f64, Option<BTreeMap<String, f64>>)> {
    let before = nodeapi::runtime_ops(k.read_only_port).await;
    let t0 = Instant::now();
    for (file, _) in files {
        k.remove_manifest(file)?;
    }
    let took =
        wait_no_sandboxes(&ctx.cri, selector(&k.name), t0, deadline_for(files.len())).await?;
    let after = nodeapi::runtime_ops(k.read_only_port).await;
    Ok((
        took.as_secs_f64(),
        before.zip(after).map(|(b, a)| nodeapi::ops_delta(&b, &a)),
    ))
}

async fn kubelet_n(
    ctx: &Ctx<'_>,
    n: usize,
    k: &mut Kubelet,
    measure_idle: bool,
    idle: &mut Option<Usage>,
    row: &mut Row,
) -> anyhow::Result<()> {
    let settle = if ctx.args.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    let ready = k.wait_ready(Duration::from_secs(20)).await?;
    progress(format!(
        "N={n}: kubelet {} up (pid {}, connected after {})",
        k.name,
        k.pid(),
        stats::secs(ready.as_secs_f64())
    ));
    tokio::time::sleep(settle).await;
    if measure_idle {
        progress(format!(
            "idle: measuring the kubelet with 0 pods for {:?}",
            ctx.args.idle
        ));
        *idle = Some(procfs::measure(k.pid(), ctx.args.idle).await?);
    }

    // 1. Startup. Without it the rest means nothing, but the teardown still runs.
    let files = manifests(n, 0);
    progress(format!("N={n}: round 1: kubelet: writing {n} manifests"));
    match kubelet_startup(ctx, k, &files).await {
        Ok(s) => {
            row.kubelet_start.push(s);
            tokio::time::sleep(settle).await;
            progress(format!("N={n}: steady state for {:?}", ctx.args.steady));
            if let Err(e) = steady(ctx, k, row).await {
                row.notes.push(format!("steady state: {e:#}"));
            }
            node_api(ctx, k, row).await;
            progress(format!("N={n}: reactions (kill, edit, remove)"));
            if let Err(e) = kill_reaction(ctx, n, k, row).await {
                row.notes.push(format!("kill reaction: {e:#}"));
            }
            if let Err(e) = edit_reaction(ctx, n, k, row).await {
                row.notes.push(format!("edit reaction: {e:#}"));
            }
            if let Err(e) = remove_reaction(ctx, k, row).await {
                row.notes.push(format!("remove reaction: {e:#}"));
            }
        }
        Err(e) => row.notes.push(format!("startup: {e:#}")),
    }

    // 5. Teardown.
    progress(format!("N={n}: round 1: teardown"));
    let (took, ops) = kubelet_teardown(ctx, k, &files).await?;
    row.teardown.push(took);
    row.teardown_ops.push(ops);

    // Memory once every pod is gone again (does it come back down?).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(if ctx.args.quick { 2 } else { 5 });
    row.after_teardown = Some(procfs::measure(k.pid(), window).await?);
    if let Some(s) = procfs::snapshot(k.pid()) {
        row.anon_after_rounds.push(s.anon_kib as f64 / 1024.0);
    }
    Ok(())
}

/// 2. RSS and CPU over the steady window, PLEG relists from the log, the list proxy.
async fn steady(ctx: &Ctx<'_>, k: &Kubelet, row: &mut Row) -> anyhow::Result<()> {
    let from = k.log_len();
    row.steady = Some(procfs::measure(k.pid(), ctx.args.steady).await?);
    row.pleg_log = Dist::new(k.relists(from, k.log_len()));
    let mut proxy = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (a, b) = tokio::join!(
            cri_util::sandboxes(&ctx.cri, selector(&k.name)),
            containers(&ctx.cri, selector(&k.name)),
        );
        a?;
        b?;
        proxy.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row.pleg_proxy = Dist::from_durations(proxy);
    Ok(())
}

/// 4. Node API latency, and what /stats/summary asks of the runtime, made directly.
async fn node_api(ctx: &Ctx<'_>, k: &Kubelet, row: &mut Row) {
    let samples = if ctx.args.quick { 5 } else { 20 };
    for path in ["/pods", "/stats/summary"] {
        row.api
            .push(nodeapi::measure(k.read_only_port, path, samples).await);
    }
    let container_stats = || {
        ctx.cri
            .list_container_stats(Some(k8s_cri::v1::ContainerStatsFilter {
                label_selector: selector(&k.name),
                ..Default::default()
            }))
    };
    let sandbox_stats = || {
        ctx.cri
            .list_pod_sandbox_stats(Some(k8s_cri::v1::PodSandboxStatsFilter {
                label_selector: selector(&k.name),
                ..Default::default()
            }))
    };
    let mut together = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let (a, c) = tokio::join!(container_stats(), ctx.cri.image_fs_info());
        if a.is_ok() && c.is_ok() {
            together.push(t.elapsed());
        }
    }
    row.stats_floor = Dist::from_durations(together);
    let mut parts: [Vec<Duration>; 3] = Default::default();
    for _ in 0..5 {
        let t = Instant::now();
        if container_stats().await.is_ok() {
            parts[0].push(t.elapsed());
        }
        let t = Instant::now();
        if sandbox_stats().await.is_ok() {
            parts[1].push(t.elapsed());
        }
        let t = Instant::now();
        if ctx.cri.image_fs_info().await.is_ok() {
            parts[2].push(t.elapsed());
        }
    }
    row.stats_parts = parts.map(Dist::from_durations);
}

fn pod_selector(node: &str, pod: &str) -> HashMap<String, String> {
    let mut sel = selector(node);
    sel.insert(labels::POD_NAME.to_string(), pod.to_string());
    sel
}

fn push(d: &mut Dist, v: Duration) {
    *d = Dist::new([d.values(), &[v.as_secs_f64()]].concat());
}

const REACTION_DEADLINE: Duration = Duration::from_secs(30);

/// Kill -9 from the host, each on a different pod (a pod's first restart is immediate; a
/// second kill of the same pod would meet the 10 s crash-loop backoff).
async fn kill_reaction(ctx: &Ctx<'_>, n: usize, k: &Kubelet, row: &mut Row) -> anyhow::Result<()> {
    let kills = if ctx.args.quick { 3 } else { 5 };
    let cri = &ctx.cri;
    let samples = kills.min(n);
    for i in 0..samples {
        // The kubelet relists once a second and right after it acted; killing straight
        // after the previous replacement ran would always land just after a relist (the
        // worst case). Wait 1 s plus an offset spread evenly over the period instead, so
        // the samples cover every phase as a kill at a random time would.
        let offset = Duration::from_millis((1000 * i / samples) as u64);
        tokio::time::sleep(Duration::from_secs(1) + offset).await;
        let pod = k.pod_name(&format!("bench-{i:03}"));
        let sel = pod_selector(&k.name, &pod);
        let old = containers(cri, sel.clone())
            .await?
            .into_iter()
            .find(is_running)
            .with_context(|| format!("no running container for {pod}"))?;
        let pid = ctx.raw.container_pid(&old.id).await?;
        let t0 = Instant::now();
        // SAFETY: kill(2) on the pid the runtime reported for our own container.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            anyhow::bail!("kill {pid}: {}", std::io::Error::last_os_error());
        }
        let mut exit_seen = None;
        loop {
            let list = containers(cri, sel.clone()).await?;
            let at = t0.elapsed();
            if exit_seen.is_none()
                && list.iter().any(|c| {
                    c.id == old.id && c.state == k8s_cri::v1::ContainerState::ContainerExited as i32
                })
            {
                exit_seen = Some(at);
            }
            if list.iter().any(|c| c.id != old.id && is_running(c)) {
                push(&mut row.reactions.kill, at);
                if let Some(e) = exit_seen {
                    push(&mut row.reactions.kill_exit_seen, e);
                }
                break;
            }
            if at > REACTION_DEADLINE {
                anyhow::bail!("killed container of {pod} not replaced after {REACTION_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Edit: new content is a new pod (new UID); time until its container runs.
async fn edit_reaction(ctx: &Ctx<'_>, n: usize, k: &Kubelet, row: &mut Row) -> anyhow::Result<()> {
    let edits = if ctx.args.quick { 2 } else { 3 };
    let cri = &ctx.cri;
    for e in 0..edits.min(n) {
        let i = n - 1 - e;
        let name = format!("bench-{i:03}");
        let pod = k.pod_name(&name);
        let sel = pod_selector(&k.name, &pod);
        let old_uid = containers(cri, sel.clone())
            .await?
            .into_iter()
            .find(is_running)
            .and_then(|c| c.labels.get(labels::POD_UID).cloned())
            .with_context(|| format!("no running container for {pod}"))?;
        let t0 = Instant::now();
        k.write_manifest(&format!("{name}.yaml"), &manifest(&name, 100001 + e as u64))?;
        loop {
            let list = containers(cri, sel.clone()).await?;
            let at = t0.elapsed();
            if list
                .iter()
                .any(|c| is_running(c) && c.labels.get(labels::POD_UID) != Some(&old_uid))
            {
                push(&mut row.reactions.edit, at);
                break;
            }
            if at > REACTION_DEADLINE {
                anyhow::bail!("edited pod {pod} not running after {REACTION_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Remove: an extra pod (so N stays N for the teardown), started, then its file removed.
async fn remove_reaction(ctx: &Ctx<'_>, k: &Kubelet, row: &mut Row) -> anyhow::Result<()> {
    let removes = if ctx.args.quick { 2 } else { 3 };
    let cri = &ctx.cri;
    for e in 0..removes {
        let name = format!("extra-{e}");
        let file = format!("{name}.yaml");
        let pod = k.pod_name(&name);
        k.write_manifest(&file, &manifest(&name, 100000))?;
        let running = wait_all_running(
            cri,
            &k.name,
            std::slice::from_ref(&pod),
            Instant::now(),
            REACTION_DEADLINE,
        )
        .await;
        if let Err(err) = running {
            k.remove_manifest(&file)?;
            return Err(err);
        }
        // Let the worker finish its sync before the pod goes away.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        k.remove_manifest(&file)?;
        let took =
            wait_no_sandboxes(cri, pod_selector(&k.name, &pod), t0, REACTION_DEADLINE).await?;
        push(&mut row.reactions.remove, took);
    }
    Ok(())
}
