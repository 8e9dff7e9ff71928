use std::time::Duration;

use super::*;
use crate::annotations::CONFIG_SEEN;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pod(name: &str, uid: &str, seen: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            annotations: Some([(CONFIG_SEEN.to_string(), seen.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn update(source: SourceKind, pods: Vec<Pod>) -> SourceUpdate {
    SourceUpdate {
        source,
        pods: pods.into_iter().map(Arc::new).collect(),
    }
}

fn both() -> BTreeSet<SourceKind> {
    [SourceKind::File, SourceKind::Http].into()
}

#[test]
fn ready_only_after_every_expected_source_reported() {
    let mut m = Merger::new(both());
    assert!(!m.all_sources_ready());
    m.apply(update(SourceKind::File, vec![]));
    assert!(!m.all_sources_ready());
    m.apply(update(SourceKind::Http, vec![]));
    assert!(m.all_sources_ready());
    m.apply(update(SourceKind::Http, vec![]));
    assert!(m.all_sources_ready(), "stays ready");
    assert!(Merger::new(BTreeSet::new()).all_sources_ready());
}

#[test]
fn snapshots_replace_per_source() {
    let mut m = Merger::new(both());
    m.apply(update(
        SourceKind::File,
        vec![pod("a", "u1", "t1"), pod("b", "u2", "t1")],
    ));
    m.apply(update(SourceKind::Http, vec![pod("c", "u3", "t1")]));
    assert_eq!(m.desired().pods.len(), 3);
    m.apply(update(SourceKind::File, vec![pod("b", "u2", "t1")]));
    let uids: Vec<String> = m.desired().pods.keys().cloned().collect();
    assert_eq!(uids, vec!["u2", "u3"]);
    let p = &m.desired().pods["u3"];
    assert_eq!(
        p.metadata.annotations.as_ref().unwrap()[CONFIG_SOURCE],
        "http"
    );
}

#[test]
fn file_wins_a_name_conflict() {
    let mut m = Merger::new(both());
    m.apply(update(SourceKind::Http, vec![pod("same", "uh", "t")]));
    assert!(m.desired().pods.contains_key("uh"));
    m.apply(update(SourceKind::File, vec![pod("same", "uf", "t")]));
    let d = m.desired();
    assert!(d.pods.contains_key("uf"));
    assert!(!d.pods.contains_key("uh"));
}

#[test]
fn seen_stays_stable_and_arcs_are_reused() {
    let mut m = Merger::new(both());
    m.apply(update(SourceKind::File, vec![pod("a", "u1", "first")]));
    let before = m.desired().pods["u1"].clone();
    // Same UID re-listed with a fresher timestamp (e.g. the source restarted).
    m.apply(update(SourceKind::File, vec![pod("a", "u1", "later")]));
    let after = m.desired().pods["u1"].clone();
    assert_eq!(
        after.metadata.annotations.as_ref().unwrap()[CONFIG_SEEN],
        "first"
    );
    assert!(Arc::ptr_eq(&before, &after), "unchanged pod keeps its Arc");
}

#[test]
fn an_annotated_pod_is_published_as_the_sources_own_arc() {
    let mut m = Merger::new(both());
    let mut ready = pod("a", "u1", "t1");
    ready
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(CONFIG_SOURCE.to_string(), "file".to_string());
    let sent = Arc::new(ready);
    m.apply(SourceUpdate {
        source: SourceKind::File,
        pods: vec![Arc::clone(&sent)],
    });
    assert!(
        Arc::ptr_eq(&m.desired().pods["u1"], &sent),
        "no copy of a pod that already carries its annotations"
    );

    // Without config.source (or with another first-seen value) the merge annotates a
    // copy and leaves the source's pod as it was.
    let bare = Arc::new(pod("b", "u2", "t1"));
    m.apply(SourceUpdate {
        source: SourceKind::Http,
        pods: vec![Arc::clone(&bare)],
    });
    let published = &m.desired().pods["u2"];
    assert!(!Arc::ptr_eq(published, &bare));
    assert_eq!(
        published.metadata.annotations.as_ref().unwrap()[CONFIG_SOURCE],
        "http"
    );
    assert!(
        !bare
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(CONFIG_SOURCE)
    );
}

#[tokio::test]
async fn run_publishes_changes_and_readiness() {
    let (tx, rx) = mpsc::channel(4);
    let (out, mut watch_rx) = watch::channel(DesiredPods::default());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(both(), rx, out, cancel.clone()));

    tx.send(update(SourceKind::File, vec![pod("a", "u1", "t")]))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            watch_rx.changed().await.unwrap();
            let d = watch_rx.borrow_and_update().clone();
            if d.pods.contains_key("u1") {
                return d;
            }
        }
    })
    .await
    .unwrap();
    assert!(!got.all_sources_ready);

    tx.send(update(SourceKind::Http, vec![])).await.unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            watch_rx.changed().await.unwrap();
            if watch_rx.borrow_and_update().all_sources_ready {
                return true;
            }
        }
    })
    .await
    .unwrap();
    assert!(ready);

    // An identical snapshot is not a change.
    tx.send(update(SourceKind::Http, vec![])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!watch_rx.has_changed().unwrap());

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn run_keeps_the_channel_open_until_cancelled() {
    // No source configured: ready at once, and the watch stays open until shutdown.
    let (tx, rx) = mpsc::channel::<SourceUpdate>(1);
    let (out, watch_rx) = watch::channel(DesiredPods::default());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(BTreeSet::new(), rx, out, cancel.clone()));
    drop(tx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(watch_rx.borrow().all_sources_ready);
    assert!(!task.is_finished(), "still running without senders");
    assert!(watch_rx.has_changed().is_ok(), "sender still alive");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
