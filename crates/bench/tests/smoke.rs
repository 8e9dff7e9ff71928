//! `kubelet-bench` run end to end, at one pod with the shortest windows, against the
//! private containerd of `scripts/test.sh` and the debug kubelet: every part of the table
//! the issue asks for (startup against the floor, steady state, reactions, node API,
//! teardown) must be measured and printed. No number is judged: the bench is a measuring
//! tool, and this only checks that it still measures.
//!
//! The kubelet is the workspace's `target/<profile>/kubelet`, next to the bench binary
//! (its default); `cargo test --workspace` builds it for the root package's tests.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::labels;

fn kubelet_beside_the_bench() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_kubelet-bench"));
    let kubelet = bench.with_file_name("kubelet");
    assert!(
        kubelet.is_file(),
        "{} is missing: build the kubelet first (cargo build, or cargo test --workspace)",
        kubelet.display()
    );
    kubelet
}

/// The lines of the table section whose heading starts with `heading` (up to the next
/// blank line).
fn section<'a>(table: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = table.lines().skip_while(|l| !l.starts_with(heading));
    assert!(
        lines.next().is_some(),
        "no section {heading:?} in:\n{table}"
    );
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

/// The row of `lines` whose first column is `first`.
fn row<'a>(lines: &[&'a str], first: &str, table: &str) -> Vec<&'a str> {
    lines
        .iter()
        .find(|l| l.trim_start().starts_with(first))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{}\n\n{table}", lines.join("\n")))
}

#[test]
fn the_bench_measures_every_part_at_one_pod() {
    let endpoint = std::env::var("CONTAINER_RUNTIME_ENDPOINT").expect(
        "CONTAINER_RUNTIME_ENDPOINT is not set: this test needs the private containerd \
         (scripts/test.sh exports it)",
    );
    let bench = Command::new(env!("CARGO_BIN_EXE_kubelet-bench"))
        .args(["--pods", "1", "--quick", "--idle", "1", "--steady", "2"])
        .arg("--kubelet")
        .arg(kubelet_beside_the_bench())
        .args(["--endpoint", &endpoint])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubelet-bench");
    // Its kubelets and floor pods are named after its pid.
    let nodes = format!("kubelet-bench-{}-", bench.id());
    let out = bench.wait_with_output().expect("run kubelet-bench");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubelet-bench failed ({}):\n{progress}\n{table}",
        out.status
    );

    // 1. Startup: the kubelet's time, the floor's and their ratio.
    let startup = section(&table, "1. Pod startup");
    let r = row(&startup, "1 ", &table);
    assert!(r.iter().any(|c| c.ends_with('x')), "no ratio in {r:?}");
    assert!(
        r.iter().filter(|c| ["ms", "s"].contains(c)).count() >= 4,
        "{r:?}"
    );

    // 2. Steady state: idle and with the pod, RSS and CPU, and the PLEG relist.
    let steady = section(&table, "2. Steady state");
    for first in ["0 (idle", "1 (", "0 after 1 torn down"] {
        let r = row(&steady, first, &table);
        assert!(r.contains(&"MiB"), "no RSS in {r:?}");
        assert!(r.iter().any(|c| c.ends_with('%')), "no CPU in {r:?}");
    }
    let with_pod = row(&steady, "1 (", &table);
    assert!(
        with_pod
            .iter()
            .any(|c| c.starts_with('(') && c.ends_with(')')),
        "no relist count in {with_pod:?}"
    );

    // 3. Reactions: kill, edit and remove, each with its sample count.
    let reactions = section(&table, "3. Reaction");
    let r = row(&reactions, "1 ", &table);
    assert!(
        r.iter().filter(|c| c.starts_with('[')).count() >= 3,
        "kill, edit and remove were not all measured: {r:?}"
    );

    // 4. Node API: both endpoints, listing the one pod.
    let api = section(&table, "4. Node API");
    for endpoint in ["/pods", "/stats/summary"] {
        let r = api
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|c| c.get(1) == Some(&endpoint))
            .unwrap_or_else(|| panic!("no {endpoint} row in:\n{table}"));
        // N, endpoint, p50 (value unit), "/", p99 (value unit), bytes, pods listed, ...
        assert_eq!(r.get(8), Some(&"1"), "{endpoint} should list 1 pod: {r:?}");
    }

    // 5. Teardown against the floor.
    let teardown = section(&table, "5. Teardown");
    let r = row(&teardown, "1 ", &table);
    assert!(r.iter().any(|c| c.ends_with('x')), "no ratio in {r:?}");

    // The bench removed what it created: no sandbox of its nodes is left.
    let left = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let cri = CriClient::new(&endpoint, None, Duration::from_secs(30)).unwrap();
            cri.list_pod_sandbox(None).await.unwrap()
        })
        .into_iter()
        .filter(|s| {
            s.labels
                .get(labels::MANAGED_BY_NODE)
                .is_some_and(|n| n.starts_with(&nodes))
        })
        .count();
    assert_eq!(left, 0, "sandboxes of {nodes}* left behind");
}
