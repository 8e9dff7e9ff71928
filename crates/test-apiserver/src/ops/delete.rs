//! DELETE with upstream's graceful deletion and finalizer rules (rest.BeforeDelete and the
//! generic store's Delete): pods on a node get deletionTimestamp and a grace period and
//! stay until deleted with grace 0; objects with finalizers stay until they are removed.

use serde_json::{Value, json};

use super::{key, not_found};
use crate::error::{ApiError, ApiResult, Subject, success_status};
use crate::meta;
use crate::registry::{ResourceDef, from_storage, pod};
use crate::state::Cluster;
use crate::store::{Mutation, Outcome};

/// DeleteOptions (body or query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a DeleteOptions body.
    pub fn from_body(v: &Value) -> Self {
        DeleteOptions {
            grace_period: v.get("gracePeriodSeconds").and_then(Value::as_i64),
            uid: meta::path(v, "preconditions.uid")
                .and_then(Value::as_str)
                .map(String::from),
            resource_version: meta::path(v, "preconditions.resourceVersion")
                .and_then(Value::as_str)
                .map(String::from),
            dry_run: v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        }
    }
}

/// What the first step decided.
enum Step {
    /// Graceful deletion pending: return the object as it is.
    Pending,
    /// Stored an update (deletionTimestamp etc.); delete right after if `then_delete`.
    Updated { then_delete: bool },
    /// Removed.
    Removed,
}

fn check_preconditions(def: &ResourceDef, cur: &Value, o: &DeleteOptions) -> ApiResult<()> {
    let subject = || Subject::new(def.group, def.plural, meta::name(cur));
    if let Some(uid) = &o.uid
        && uid != meta::uid(cur)
    {
        return Err(ApiError::Conflict(
            subject(),
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(cur)
            ),
        ));
    }
    if let Some(rv) = &o.resource_version
        && Some(rv.as_str()) != meta::md_str(cur, "resourceVersion")
    {
        return Err(ApiError::Conflict(
            subject(),
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta::md_str(cur, "resourceVersion").unwrap_or("")
            ),
        ));
    }
    Ok(())
}

fn set_deletion(obj: &mut Value, grace: i64, at: String) {
    let md = meta::metadata_mut(obj);
    md.insert("deletionTimestamp".into(), json!(at));
    md.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if let Some(g) = md
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        md.insert("generation".into(), json!(g + 1));
    }
}

/// Decides the first step for the current object.
fn decide(def: &ResourceDef, cur: &Value, o: &DeleteOptions) -> ApiResult<(Step, Option<Value>)> {
    check_preconditions(def, cur, o)?;
    let requested = o.grace_period.map(|g| if g < 0 { 1 } else { g });
    let has_finalizers = !meta::finalizers(cur).is_empty();
    let graceful = def.kind == "Pod" && def.group.is_empty();
    if def.kind == "Namespace" {
        return Ok(namespace_step(cur));
    }
    if meta::is_deleting(cur) {
        let current_grace = meta::deletion_grace(cur).unwrap_or(0);
        if !graceful || current_grace == 0 {
            return Ok(if has_finalizers {
                (Step::Pending, None)
            } else {
                (Step::Removed, None)
            });
        }
        match requested {
            Some(p) if p < current_grace => {
                let ts = meta::md_str(cur, "deletionTimestamp").unwrap_or("");
                let at = chrono::DateTime::parse_from_rfc3339(ts)
                    .map(|t| t + chrono::Duration::seconds(p - current_grace))
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_else(|_| meta::rfc3339_in(p));
                let mut new = cur.clone();
                set_deletion(&mut new, p, at);
                Ok((
                    Step::Updated {
                        then_delete: p == 0 && !has_finalizers,
                    },
                    Some(new),
                ))
            }
            _ => Ok((Step::Pending, None)),
        }
    } else if graceful {
        let period = pod::graceful_period(cur, requested);
        let mut new = cur.clone();
        set_deletion(&mut new, period, meta::rfc3339_in(period));
        Ok((
            Step::Updated {
                then_delete: period == 0 && !has_finalizers,
            },
            Some(new),
        ))
    } else if has_finalizers {
        let mut new = cur.clone();
        set_deletion(&mut new, 0, meta::now_rfc3339());
        Ok((Step::Updated { then_delete: false }, Some(new)))
    } else {
        Ok((Step::Removed, None))
    }
}

/// Namespaces: mark Terminating; the namespace controller empties and finalizes them.
fn namespace_step(cur: &Value) -> (Step, Option<Value>) {
    let spec_fins = meta::path(cur, "spec.finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if !spec_fins && meta::finalizers(cur).is_empty() {
        return (Step::Removed, None);
    }
    if meta::is_deleting(cur) {
        return (Step::Pending, None);
    }
    let mut new = cur.clone();
    set_deletion(&mut new, 0, meta::now_rfc3339());
    if let Some(root) = new.as_object_mut() {
        root.insert("status".into(), json!({"phase": "Terminating"}));
    }
    (Step::Updated { then_delete: false }, Some(new))
}

/// Deletes an object; returns the response body (the object or a Status).
pub fn delete(
    cl: &Cluster,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    o: &DeleteOptions,
) -> ApiResult<Value> {
    let k = key(def, ns, name);
    let mut step = Step::Pending;
    let out = cl.store.mutate(&k, |cur| {
        let cur = cur.ok_or_else(|| not_found(def, name))?;
        let (s, new) = decide(def, cur, o)?;
        let m = if o.dry_run {
            Mutation::Keep
        } else {
            match (&s, new) {
                (Step::Updated { .. }, Some(n)) => Mutation::Put(n),
                (Step::Removed, _) => Mutation::Delete,
                _ => Mutation::Keep,
            }
        };
        step = s;
        Ok(m)
    })?;
    let mut last = match out {
        Outcome::Stored(v) | Outcome::Deleted(v) => v,
    };
    if let Step::Updated { then_delete: true } = step
        && !o.dry_run
    {
        match cl.store.mutate(&k, |cur| {
            if cur.is_some() {
                Ok(Mutation::Delete)
            } else {
                Err(not_found(def, name))
            }
        }) {
            Ok(Outcome::Deleted(v)) | Ok(Outcome::Stored(v)) => last = v,
            // Someone else finished the deletion first: fine, as upstream tolerates.
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let removed = matches!(step, Step::Removed | Step::Updated { then_delete: true });
    if def.delete_returns_object || !removed {
        Ok(from_storage(def, &last))
    } else {
        Ok(success_status(
            def.group,
            def.plural,
            name,
            meta::uid(&last),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::defs;

    fn pod_def() -> &'static ResourceDef {
        defs::find("", "v1", "pods").unwrap_or(&defs::RESOURCES[0])
    }

    #[test]
    fn scheduled_pod_gets_grace_then_shortens_then_removes() {
        let d = pod_def();
        let cur = json!({"metadata": {"name": "p", "uid": "u"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30}});
        let (s, new) = decide(d, &cur, &DeleteOptions::default()).unwrap();
        assert!(matches!(s, Step::Updated { then_delete: false }));
        let new = new.unwrap_or_default();
        assert_eq!(new["metadata"]["deletionGracePeriodSeconds"], 30);
        // A longer or equal grace does nothing.
        let (s, _) = decide(
            d,
            &new,
            &DeleteOptions {
                grace_period: Some(60),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(s, Step::Pending));
        // Grace 0 (the kubelet's final delete) removes it.
        let (s, n2) = decide(
            d,
            &new,
            &DeleteOptions {
                grace_period: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(s, Step::Updated { then_delete: true }));
        assert_eq!(
            n2.unwrap_or_default()["metadata"]["deletionGracePeriodSeconds"],
            0
        );
    }

    #[test]
    fn unscheduled_pod_goes_at_once_and_uid_precondition_is_checked() {
        let d = pod_def();
        let cur = json!({"metadata": {"name": "p", "uid": "u"}, "spec": {"terminationGracePeriodSeconds": 30}});
        let (s, _) = decide(d, &cur, &DeleteOptions::default()).unwrap();
        assert!(matches!(s, Step::Updated { then_delete: true }));
        let bad = DeleteOptions {
            uid: Some("other".into()),
            ..Default::default()
        };
        assert!(matches!(decide(d, &cur, &bad), Err(ApiError::Conflict(..))));
    }

    #[test]
    fn finalizers_hold_non_graceful_objects() {
        let d = defs::find("", "v1", "configmaps").unwrap_or(&defs::RESOURCES[0]);
        let cur = json!({"metadata": {"name": "c", "uid": "u", "finalizers": ["x"]}});
        let (s, new) = decide(d, &cur, &DeleteOptions::default()).unwrap();
        assert!(matches!(s, Step::Updated { then_delete: false }));
        let new = new.unwrap_or_default();
        assert!(meta::is_deleting(&new));
        let (s, _) = decide(d, &new, &DeleteOptions::default()).unwrap();
        assert!(matches!(s, Step::Pending));
    }
}
