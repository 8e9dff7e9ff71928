use serde_json::json;

use super::*;

fn put(s: &Store, ns: &str, name: &str, v: i64) -> Outcome {
    s.mutate(&ObjKey::new("pods", ns, name), |_| {
        Ok(Mutation::Put(json!({"metadata": {"name": name}, "v": v})))
    })
    .unwrap_or_else(|e| Outcome::Stored(Arc::new(json!({"error": e.to_string()}))))
}

fn rv_of(o: &Outcome) -> u64 {
    match o {
        Outcome::Stored(v) | Outcome::Deleted(v) => meta::resource_version(v).unwrap_or(0),
    }
}

#[test]
fn one_global_counter_and_noop_updates() {
    let s = Store::new(100);
    assert_eq!(rv_of(&put(&s, "a", "x", 1)), 1);
    assert_eq!(rv_of(&put(&s, "b", "y", 1)), 2);
    // Same content: no new RV, no event.
    assert_eq!(rv_of(&put(&s, "a", "x", 1)), 1);
    assert_eq!(s.current_rv(), 2);
    assert_eq!(s.history_len(), 2);
    assert_eq!(rv_of(&put(&s, "a", "x", 2)), 3);
}

#[test]
fn snapshots_undo_newer_changes() {
    let s = Store::new(100);
    put(&s, "a", "x", 1); // rv1
    put(&s, "a", "y", 1); // rv2
    put(&s, "a", "x", 2); // rv3
    let _ = s.mutate(&ObjKey::new("pods", "a", "y"), |_| Ok(Mutation::Delete)); // rv4
    let at2 = s.snapshot_at("pods", None, 2).unwrap_or_else(|_| Snapshot {
        rv: 0,
        objects: Default::default(),
    });
    assert_eq!(at2.objects.len(), 2);
    assert_eq!(at2.objects[&ObjKey::new("pods", "a", "x")]["v"], 1);
    let at4 = s
        .snapshot_at("pods", Some("a"), 4)
        .unwrap_or_else(|_| Snapshot {
            rv: 0,
            objects: Default::default(),
        });
    assert_eq!(at4.objects.len(), 1);
    assert!(matches!(
        s.snapshot_at("pods", None, 9),
        Err(SnapshotError::TooNew { current: 4 })
    ));
}

#[test]
fn subscribe_resumes_and_compaction_expires() {
    let s = Store::new(100);
    for i in 0..5 {
        put(&s, "a", &format!("p{i}"), i);
    }
    let sub = s
        .subscribe(3)
        .map(|s| s.backlog.iter().map(|c| c.rv).collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(sub, vec![4, 5]);
    s.compact(Some(4));
    assert!(matches!(
        s.subscribe(3),
        Err(SnapshotError::Compacted { compacted: 4 })
    ));
    assert!(s.subscribe(4).is_ok());
    assert!(matches!(
        s.snapshot_at("pods", None, 2),
        Err(SnapshotError::Compacted { .. })
    ));
}

#[test]
fn bounded_history_compacts_itself() {
    let s = Store::new(3);
    for i in 0..6 {
        put(&s, "a", "x", i);
    }
    assert_eq!(s.history_len(), 3);
    assert_eq!(s.compacted_rv(), 3);
    assert!(s.subscribe(2).is_err());
    assert!(s.subscribe(3).is_ok());
}

#[test]
fn deletes_carry_the_delete_rv() {
    let s = Store::new(10);
    put(&s, "a", "x", 1);
    let mut rx = s.subscribe(1).map(|s| s.live).ok();
    let out = s.mutate(&ObjKey::new("pods", "a", "x"), |_| Ok(Mutation::Delete));
    assert!(matches!(&out, Ok(Outcome::Deleted(v)) if meta::resource_version(v) == Some(2)));
    let c = rx.as_mut().and_then(|r| r.try_recv().ok());
    assert!(c.is_some_and(|c| c.kind == ChangeKind::Deleted && c.prev.is_some()));
}
