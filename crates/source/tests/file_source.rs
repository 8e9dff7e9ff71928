//! The file source against a real directory: one-shot reads, and the watch loop reacting
//! to inotify events (the periodic re-list is set to a minute, so only the watch can
//! explain a reaction within the deadline).

use std::fs;
use std::path::Path;
use std::time::Duration;

use kubelet_source::annotations::CONFIG_SEEN;
use kubelet_source::file::{FileSource, load_manifest};
use kubelet_source::{Pod, SourceUpdate};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

const NODE: &str = "node1";
const DEADLINE: Duration = Duration::from_secs(2);
const NO_RELIST: Duration = Duration::from_secs(60);

fn manifest(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: {image}\n"
    )
}

fn names(update: &SourceUpdate) -> Vec<String> {
    update
        .pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn uid_of<'a>(update: &'a SourceUpdate, name: &str) -> Option<&'a str> {
    update
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .and_then(|p| p.metadata.uid.as_deref())
}

fn seen_of(pod: &Pod) -> String {
    pod.metadata.annotations.as_ref().unwrap()[CONFIG_SEEN].clone()
}

/// Receives updates until one satisfies `pred`, failing after [`DEADLINE`].
async fn wait_for(
    rx: &mut mpsc::Receiver<SourceUpdate>,
    what: &str,
    pred: impl Fn(&SourceUpdate) -> bool,
) -> SourceUpdate {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match timeout(left, rx.recv()).await {
            Ok(Some(u)) if pred(&u) => return u,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("source stopped while waiting for {what}"),
            Err(_) => panic!("no update with {what} within {DEADLINE:?}"),
        }
    }
}

fn start(
    path: &Path,
) -> (
    mpsc::Receiver<SourceUpdate>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let source = FileSource::new(path.to_path_buf(), NODE.into(), NO_RELIST);
    let task = tokio::spawn(source.run(tx, cancel.clone()));
    (rx, cancel, task)
}

async fn stop(cancel: CancellationToken, task: tokio::task::JoinHandle<()>) {
    cancel.cancel();
    timeout(DEADLINE, task)
        .await
        .expect("source stops on cancel")
        .expect("source task does not panic");
}

#[test]
fn read_once_lists_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("b.yaml"), manifest("beta", "nginx")).unwrap();
    fs::write(dir.path().join("a.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"alpha"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#).unwrap();
    fs::write(dir.path().join(".hidden.yaml"), manifest("hidden", "nginx")).unwrap();
    fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [",
    )
    .unwrap();
    fs::write(
        dir.path().join("deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/c.yaml"), manifest("gamma", "nginx")).unwrap();

    let source = FileSource::new(dir.path().to_path_buf(), NODE.into(), NO_RELIST);
    let update = source.read_once();
    assert_eq!(names(&update), vec!["alpha-node1", "beta-node1"]);
    let beta = &update.pods[1];
    let ann = beta.metadata.annotations.as_ref().unwrap();
    assert_eq!(ann["kubernetes.io/config.source"], "file");
    assert_eq!(
        ann["kubernetes.io/config.hash"],
        beta.metadata.uid.clone().unwrap()
    );
}

#[test]
fn read_once_single_file_and_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".dotted-but-named.yaml");
    fs::write(&file, manifest("solo", "nginx")).unwrap();
    fs::write(dir.path().join("other.yaml"), manifest("other", "nginx")).unwrap();
    let update = FileSource::new(file, NODE.into(), NO_RELIST).read_once();
    assert_eq!(
        names(&update),
        vec!["solo-node1"],
        "an explicit file is read even if dotted"
    );

    let missing = FileSource::new(dir.path().join("nope"), NODE.into(), NO_RELIST).read_once();
    assert!(missing.pods.is_empty());
}

#[test]
fn duplicate_full_names_keep_the_first_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("10-web.yaml"), manifest("web", "nginx:1")).unwrap();
    fs::write(dir.path().join("20-web.yaml"), manifest("web", "nginx:2")).unwrap();
    let update = FileSource::new(dir.path().to_path_buf(), NODE.into(), NO_RELIST).read_once();
    assert_eq!(update.pods.len(), 1);
    let image = update.pods[0].spec.as_ref().unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1"));
}

#[test]
fn uid_is_stable_across_reads_and_changes_with_content() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("web.yaml");
    fs::write(&f, manifest("web", "nginx:1")).unwrap();
    let src = FileSource::new(dir.path().to_path_buf(), NODE.into(), NO_RELIST);
    let a = src.read_once();
    let b = src.read_once();
    assert_eq!(uid_of(&a, "web-node1"), uid_of(&b, "web-node1"));
    fs::write(&f, manifest("web", "nginx:2")).unwrap();
    let c = src.read_once();
    assert_ne!(uid_of(&a, "web-node1"), uid_of(&c, "web-node1"));
}

#[tokio::test]
async fn watch_reacts_to_add_modify_broken_edit_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:1")).unwrap();
    let (mut rx, cancel, task) = start(dir.path());

    let first = wait_for(&mut rx, "the initial snapshot", |u| u.pods.len() == 1).await;
    let uid_a = uid_of(&first, "a-node1").unwrap().to_string();
    let seen_a = seen_of(&first.pods[0]);

    // Add.
    fs::write(dir.path().join("b.yaml"), manifest("b", "nginx:1")).unwrap();
    let added = wait_for(&mut rx, "b added", |u| u.pods.len() == 2).await;
    assert_eq!(uid_of(&added, "a-node1"), Some(uid_a.as_str()));
    assert_eq!(seen_of(&added.pods[0]), seen_a, "a's config.seen is stable");

    // Modify: a new UID for b.
    let uid_b = uid_of(&added, "b-node1").unwrap().to_string();
    fs::write(dir.path().join("b.yaml"), manifest("b", "nginx:2")).unwrap();
    let modified = wait_for(&mut rx, "b modified", |u| {
        uid_of(u, "b-node1").is_some_and(|uid| uid != uid_b)
    })
    .await;
    assert_eq!(modified.pods.len(), 2);

    // A broken edit of a keeps a's last good pod; c proves the source went on.
    fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a\n",
    )
    .unwrap();
    fs::write(dir.path().join("c.yaml"), manifest("c", "nginx:1")).unwrap();
    let after_broken = wait_for(&mut rx, "c added", |u| uid_of(u, "c-node1").is_some()).await;
    assert_eq!(
        uid_of(&after_broken, "a-node1"),
        Some(uid_a.as_str()),
        "last good kept"
    );

    // A new broken file produces no pod; dotfiles are ignored; delete removes.
    fs::write(dir.path().join("d.yaml"), "kind: Deployment\n").unwrap();
    fs::write(dir.path().join(".e.yaml"), manifest("e", "nginx:1")).unwrap();
    fs::remove_file(dir.path().join("b.yaml")).unwrap();
    let removed = wait_for(&mut rx, "b removed", |u| uid_of(u, "b-node1").is_none()).await;
    assert_eq!(names(&removed), vec!["a-node1", "c-node1"]);

    // Removing the broken file finally removes a's pod.
    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let gone = wait_for(&mut rx, "a removed", |u| uid_of(u, "a-node1").is_none()).await;
    assert_eq!(names(&gone), vec!["c-node1"]);

    stop(cancel, task).await;
}

#[tokio::test]
async fn watch_sees_atomic_rename_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rx, cancel, task) = start(dir.path());
    wait_for(&mut rx, "the initial empty snapshot", |u| u.pods.is_empty()).await;
    let tmp = dir.path().join(".web.yaml.tmp");
    fs::write(&tmp, manifest("web", "nginx:1")).unwrap();
    fs::rename(&tmp, dir.path().join("web.yaml")).unwrap();
    wait_for(&mut rx, "the renamed file", |u| names(u) == ["web-node1"]).await;
    fs::rename(
        dir.path().join("web.yaml"),
        dir.path().join(".web.yaml.bak"),
    )
    .unwrap();
    wait_for(&mut rx, "the file renamed away", |u| u.pods.is_empty()).await;
    stop(cancel, task).await;
}

#[tokio::test]
async fn single_file_path_is_watched_through_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    fs::write(&file, manifest("web", "nginx:1")).unwrap();
    let (mut rx, cancel, task) = start(&file);
    let first = wait_for(&mut rx, "the file's pod", |u| u.pods.len() == 1).await;
    let uid = uid_of(&first, "web-node1").unwrap().to_string();

    fs::write(dir.path().join("other.yaml"), manifest("other", "nginx:1")).unwrap();
    fs::write(&file, manifest("web", "nginx:2")).unwrap();
    let changed = wait_for(&mut rx, "the edit", |u| {
        uid_of(u, "web-node1").is_some_and(|u| u != uid)
    })
    .await;
    assert_eq!(names(&changed), vec!["web-node1"], "siblings are not read");

    fs::remove_file(&file).unwrap();
    wait_for(&mut rx, "the removal", |u| u.pods.is_empty()).await;
    stop(cancel, task).await;
}

#[tokio::test]
async fn missing_directory_is_empty_then_picked_up_when_created() {
    let parent = tempfile::tempdir().unwrap();
    let manifests = parent.path().join("manifests");
    let (mut rx, cancel, task) = start(&manifests);
    wait_for(&mut rx, "an empty snapshot for a missing path", |u| {
        u.pods.is_empty()
    })
    .await;

    // Create the directory with its content in one rename, as a provisioner would.
    let staging = parent.path().join(".staging");
    fs::create_dir(&staging).unwrap();
    fs::write(staging.join("web.yaml"), manifest("web", "nginx:1")).unwrap();
    fs::rename(&staging, &manifests).unwrap();
    wait_for(&mut rx, "the new directory's pod", |u| {
        names(u) == ["web-node1"]
    })
    .await;

    // The watch moved to the directory itself.
    fs::write(manifests.join("db.yaml"), manifest("db", "postgres:16")).unwrap();
    wait_for(&mut rx, "a second pod", |u| u.pods.len() == 2).await;
    stop(cancel, task).await;
}

#[tokio::test]
async fn periodic_relist_works_without_events() {
    // A check frequency short enough that the re-list, not inotify, could also find it;
    // this checks the timer path does not break the loop.
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let source = FileSource::new(
        dir.path().to_path_buf(),
        NODE.into(),
        Duration::from_millis(200),
    );
    let task = tokio::spawn(source.run(tx, cancel.clone()));
    wait_for(&mut rx, "the initial snapshot", |u| u.pods.is_empty()).await;
    fs::write(dir.path().join("web.yaml"), manifest("web", "nginx:1")).unwrap();
    wait_for(&mut rx, "the pod", |u| u.pods.len() == 1).await;
    stop(cancel, task).await;
}

#[tokio::test]
async fn stops_when_the_receiver_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:1")).unwrap();
    let (rx, _cancel, task) = start(dir.path());
    drop(rx);
    timeout(DEADLINE, task)
        .await
        .expect("source stops without a receiver")
        .unwrap();
}

#[test]
fn errors_name_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &str, content: &str, reason: &str| {
        let path = dir.path().join(file);
        fs::write(&path, content).unwrap();
        let e = load_manifest(&path, NODE).unwrap_err().to_string();
        let want = format!("{}: {reason}", path.display());
        assert!(
            e.starts_with(&want),
            "got {e:?}, want it to start with {want:?}"
        );
    };
    check(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
        "kind \"Deployment\" is not supported, expected Pod",
    );
    check(
        "noversion.yaml",
        "kind: Pod\nmetadata: {name: d}\n",
        "missing apiVersion, expected \"v1\"",
    );
    check(
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n",
        "invalid YAML: unclosed bracket '[' at line 4, column 9",
    );
    check(
        "bad.json",
        "{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",,}",
        "invalid JSON at line 2 column",
    );
    check(
        "dup.yaml",
        &format!(
            "{}  - name: c\n    image: other\n",
            manifest("dup", "nginx")
        ),
        "invalid pod: spec.containers[1].name: Duplicate value: \"c\"",
    );
    check(
        "vol.yaml",
        &format!(
            "{}  volumes:\n  - name: v\n    fancyDisk: {{}}\n",
            manifest("vol", "nginx")
        ),
        "spec.volumes[0]: Required value: must specify a volume type",
    );
    let missing = load_manifest(&dir.path().join("absent.yaml"), NODE).unwrap_err();
    assert!(missing.to_string().contains("absent.yaml"), "{missing}");
    fs::write(dir.path().join("ok.yaml"), manifest("ok", "nginx")).unwrap();
    let pod = load_manifest(&dir.path().join("ok.yaml"), NODE).unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("ok-node1"));
}

#[tokio::test]
async fn directory_removed_and_recreated() {
    let parent = tempfile::tempdir().unwrap();
    let manifests = parent.path().join("manifests");
    fs::create_dir(&manifests).unwrap();
    fs::write(manifests.join("web.yaml"), manifest("web", "nginx:1")).unwrap();
    let (mut rx, cancel, task) = start(&manifests);
    wait_for(&mut rx, "the pod", |u| u.pods.len() == 1).await;

    fs::remove_dir_all(&manifests).unwrap();
    wait_for(&mut rx, "the empty set after removal", |u| {
        u.pods.is_empty()
    })
    .await;

    let staging = parent.path().join(".staging");
    fs::create_dir(&staging).unwrap();
    fs::write(staging.join("db.yaml"), manifest("db", "postgres:16")).unwrap();
    fs::rename(&staging, &manifests).unwrap();
    wait_for(&mut rx, "the recreated directory's pod", |u| {
        names(u) == ["db-node1"]
    })
    .await;
    fs::write(manifests.join("web.yaml"), manifest("web", "nginx:1")).unwrap();
    wait_for(&mut rx, "a pod in the new directory", |u| u.pods.len() == 2).await;
    stop(cancel, task).await;
}
