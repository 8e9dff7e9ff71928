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
mod nodeapi;
mod procfs;
mod report;
mod stats;

use std::collections::HashMap;
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
                     [--idle SECS] [--steady SECS] [--keep]

  --pods LIST     pod counts to measure, in order (default 1,30,110)
  --quick         short windows (idle 5 s, steady 10 s) and fewer samples
  --kubelet PATH  the kubelet binary (default: `kubelet` next to this binary)
  --endpoint EP   CRI endpoint (default $CONTAINER_RUNTIME_ENDPOINT)
  --idle SECS     idle window with 0 pods (default 30)
  --steady SECS   steady-state window with N pods (default 60)
  --keep          keep the work directory (kubelet logs) and print where it is
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
    };
    let (mut idle, mut steady) = (None, None);
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
    }
    args.idle = idle.unwrap_or(args.idle);
    args.steady = steady.unwrap_or(args.steady);
    if args.endpoint.is_empty() {
        anyhow::bail!(
            "no CRI endpoint: set CONTAINER_RUNTIME_ENDPOINT (eval \"$(scripts/node-env.sh env)\") or pass --endpoint"
        );
    }
    if !args.kubelet.is_file() {
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
    pub floor_start: Option<Startup>,
    pub floor_teardown: Option<f64>,
    pub floor_teardown_pod: Dist,
    pub kubelet_start: Option<Startup>,
    pub steady: Option<Usage>,
    /// PLEG relist durations from the kubelet's log during the steady window (s).
    pub pleg_log: Dist,
    /// ListPodSandbox + ListContainers made by the bench with the node label (s).
    pub pleg_proxy: Dist,
    pub reactions: Reactions,
    pub api: Vec<ApiResult>,
    pub teardown: Option<f64>,
    pub after_teardown: Option<Usage>,
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
}

#[derive(Debug, Clone, Default)]
pub struct Results {
    pub machine: Machine,
    pub idle: Option<Usage>,
    pub rows: Vec<Row>,
    pub elapsed: f64,
    pub windows: (f64, f64),
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
    let stale = purge(&cri, is_stale_bench_node).await;
    if stale > 0 {
        progress(format!(
            "removed {stale} sandboxes left by an earlier, interrupted bench run"
        ));
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

fn manifests(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let name = format!("bench-{i:03}");
            (format!("{name}.yaml"), manifest(&name, 100000))
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
    if let Err(e) = floor_n(ctx, n, &mut row).await {
        row.notes.push(format!("CRI floor: {e:#}"));
    }
    let floor_node = format!("{}f{n}", ctx.prefix);
    purge(&ctx.cri, |node| node == floor_node).await;
    // Let shims exit and containerd settle before the kubelet's turn.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let name = format!("{}n{n}", ctx.prefix);
    let kdir = ctx.dir.join(format!("n{n}"));
    let mut kubelet = match Kubelet::start(&ctx.args.kubelet, &kdir, &name, &ctx.args.endpoint) {
        Ok(k) => k,
        Err(e) => {
            row.notes.push(format!("kubelet: {e:#}"));
            return row;
        }
    };
    let log_start = kubelet.log_len();
    if let Err(e) = kubelet_n(ctx, n, &mut kubelet, measure_idle, idle, &mut row).await {
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

async fn floor_n(ctx: &Ctx<'_>, n: usize, row: &mut Row) -> anyhow::Result<()> {
    let node = format!("{}f{n}", ctx.prefix);
    let floor = Floor::new(
        ctx.cri.clone(),
        &ctx.args.endpoint,
        &ctx.dir.join(format!("f{n}")),
        &node,
        &ctx.image_ref,
    )?;
    let pods = floor.pods(&manifests(n))?;
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    progress(format!("N={n}: CRI floor: starting {n} pods directly"));
    let t0 = Instant::now();
    let (started, seen) = tokio::join!(
        floor.start(&pods, t0),
        wait_all_running(&ctx.cri, &node, &names, t0, deadline_for(n)),
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
            row.floor_start = Some(Startup {
                all: per_pod.max().unwrap_or(0.0),
                per_pod,
                returned_all: Some(returned_all),
            });
        }
        Err(e) => errors.push(format!("{e:#}")),
    }
    progress(format!("N={n}: CRI floor: tearing down"));
    let (total, per_pod) = floor.teardown(&ok).await?;
    row.floor_teardown = Some(total.as_secs_f64());
    row.floor_teardown_pod = Dist::from_durations(per_pod);
    if let Some(first) = errors.first() {
        anyhow::bail!("{} of {n} pods failed; first: {first}", errors.len());
    }
    Ok(())
}

async fn kubelet_n(
    ctx: &Ctx<'_>,
    n: usize,
    k: &mut Kubelet,
    measure_idle: bool,
    idle: &mut Option<Usage>,
    row: &mut Row,
) -> anyhow::Result<()> {
    let quick = ctx.args.quick;
    let settle = if quick {
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

    // 1. Startup.
    let files = manifests(n);
    let names: Vec<String> = files
        .iter()
        .map(|(f, _)| k.pod_name(f.trim_end_matches(".yaml")))
        .collect();
    progress(format!("N={n}: kubelet: writing {n} manifests"));
    let t0 = Instant::now();
    for (file, text) in &files {
        k.write_manifest(file, text)?;
    }
    let seen = wait_all_running(&ctx.cri, &k.name, &names, t0, deadline_for(n)).await?;
    let per_pod = Dist::from_durations(seen.values().copied());
    row.kubelet_start = Some(Startup {
        all: per_pod.max().unwrap_or(0.0),
        per_pod,
        returned_all: None,
    });

    // 2. Steady state.
    tokio::time::sleep(settle).await;
    progress(format!("N={n}: steady state for {:?}", ctx.args.steady));
    let from = k.log_len();
    row.steady = Some(procfs::measure(k.pid(), ctx.args.steady).await?);
    row.pleg_log = Dist::new(k.relists(from, k.log_len()));
    let mut proxy = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (a, b) = tokio::join!(
            ctx.cri
                .list_pod_sandbox(Some(k8s_cri::v1::PodSandboxFilter {
                    label_selector: selector(&k.name),
                    ..Default::default()
                })),
            ctx.cri.list_containers(Some(k8s_cri::v1::ContainerFilter {
                label_selector: selector(&k.name),
                ..Default::default()
            })),
        );
        a?;
        b?;
        proxy.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row.pleg_proxy = Dist::from_durations(proxy);

    // 4. Node API (before the reactions disturb the pod set).
    let samples = if quick { 5 } else { 20 };
    for path in ["/pods", "/stats/summary"] {
        row.api
            .push(nodeapi::measure(k.read_only_port, path, samples).await);
    }

    // 3. Reactions.
    progress(format!("N={n}: reactions (kill, edit, remove)"));
    reactions(ctx, n, k, row).await?;

    // 5. Teardown.
    progress(format!("N={n}: teardown"));
    let t0 = Instant::now();
    for (file, _) in &files {
        k.remove_manifest(file)?;
    }
    let took = wait_no_sandboxes(&ctx.cri, selector(&k.name), t0, deadline_for(n)).await?;
    row.teardown = Some(took.as_secs_f64());

    // Memory once every pod is gone again (does it come back down?).
    tokio::time::sleep(Duration::from_secs(2)).await;
    row.after_teardown =
        Some(procfs::measure(k.pid(), Duration::from_secs(if quick { 2 } else { 5 })).await?);
    Ok(())
}

fn pod_selector(node: &str, pod: &str) -> HashMap<String, String> {
    let mut sel = selector(node);
    sel.insert(labels::POD_NAME.to_string(), pod.to_string());
    sel
}

async fn reactions(ctx: &Ctx<'_>, n: usize, k: &Kubelet, row: &mut Row) -> anyhow::Result<()> {
    let (kills, edits, removes) = if ctx.args.quick { (3, 2, 2) } else { (5, 3, 3) };
    let cri = &ctx.cri;
    let deadline = Duration::from_secs(30);

    // Kill -9 from the host, each on a different pod (a pod's first restart is immediate;
    // a second kill of the same pod would meet the 10 s crash-loop backoff).
    for i in 0..kills.min(n) {
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
                row.reactions.kill =
                    Dist::new([row.reactions.kill.values(), &[at.as_secs_f64()]].concat());
                if let Some(e) = exit_seen {
                    row.reactions.kill_exit_seen = Dist::new(
                        [row.reactions.kill_exit_seen.values(), &[e.as_secs_f64()]].concat(),
                    );
                }
                break;
            }
            if at > deadline {
                anyhow::bail!("killed container of {pod} not replaced after {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Edit: new content is a new pod (new UID); time until its container runs.
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
                row.reactions.edit =
                    Dist::new([row.reactions.edit.values(), &[at.as_secs_f64()]].concat());
                break;
            }
            if at > deadline {
                anyhow::bail!("edited pod {pod} not running after {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Remove: an extra pod (so N stays N for the teardown), started, then its file removed.
    for e in 0..removes {
        let name = format!("extra-{e}");
        let pod = k.pod_name(&name);
        k.write_manifest(&format!("{name}.yaml"), &manifest(&name, 100000))?;
        wait_all_running(
            cri,
            &k.name,
            std::slice::from_ref(&pod),
            Instant::now(),
            deadline,
        )
        .await?;
        // Let the worker finish its sync before the pod goes away.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        k.remove_manifest(&format!("{name}.yaml"))?;
        let took = wait_no_sandboxes(cri, pod_selector(&k.name, &pod), t0, deadline).await?;
        row.reactions.remove =
            Dist::new([row.reactions.remove.values(), &[took.as_secs_f64()]].concat());
    }
    Ok(())
}
