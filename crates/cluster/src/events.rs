//! The event recorder: pod events from the workers become core/v1 Events (source
//! component `kubelet`, host = node). Recording never blocks: events queue in a bounded
//! channel and are dropped when it is full. A background task sends them under a token
//! bucket (`eventRecordQPS` / `eventBurst`) and aggregates repeats as upstream's
//! correlator does: the same event again within 10 minutes bumps `count` and
//! `lastTimestamp` of the existing Event instead of creating another.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubelet_core::events::{EventSink, PodEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::with_timeout;

const QUEUE: usize = 1000;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);

/// The sink handed to pod workers.
pub struct EventRecorder {
    tx: mpsc::Sender<PodEvent>,
}

impl EventSink for EventRecorder {
    fn record(&self, event: PodEvent) {
        tracing::debug!(pod = %event.pod_name, reason = %event.reason, message = %event.message, "event");
        if self.tx.try_send(event).is_err() {
            tracing::debug!("event queue full; event dropped");
        }
    }
}

/// Build the recorder and the task that sends its events.
pub fn recorder(
    client: kube::Client,
    node_name: String,
    qps: f64,
    burst: u32,
) -> (EventRecorder, EventSender) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        EventRecorder { tx },
        EventSender {
            client,
            node_name,
            rx,
            qps,
            burst: f64::from(burst.max(1)),
            seen: HashMap::new(),
        },
    )
}

type Key = (String, String, Option<String>, String, String, &'static str);

pub struct EventSender {
    client: kube::Client,
    node_name: String,
    rx: mpsc::Receiver<PodEvent>,
    qps: f64,
    burst: f64,
    /// Recent events: key -> (Event name, namespace, count, when first sent).
    seen: HashMap<Key, (String, i32, Instant)>,
}

impl EventSender {
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tokens = self.burst;
        let mut last = Instant::now();
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = self.rx.recv() => e,
            };
            let Some(event) = event else { return };
            if self.qps > 0.0 {
                tokens = (tokens + last.elapsed().as_secs_f64() * self.qps).min(self.burst);
                last = Instant::now();
                if tokens < 1.0 {
                    // Over the rate: dropped, as upstream's spam filter does.
                    continue;
                }
                tokens -= 1.0;
            }
            self.send(event).await;
        }
    }

    async fn send(&mut self, e: PodEvent) {
        self.seen
            .retain(|_, (_, _, at)| at.elapsed() < AGGREGATE_WINDOW);
        let key: Key = (
            e.namespace.clone(),
            e.pod_uid.clone(),
            e.field_path.clone(),
            e.reason.clone(),
            e.message.clone(),
            e.event_type.as_str(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &e.namespace);
        let now = crate::time::now();
        let limit = Duration::from_secs(10);
        if let Some((name, count, _)) = self.seen.get_mut(&key) {
            *count += 1;
            let patch = serde_json::json!({"count": *count, "lastTimestamp": now});
            match with_timeout(
                limit,
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await
            {
                Ok(_) => return,
                Err(err) if err.is_not_found() => {
                    self.seen.remove(&key);
                }
                Err(err) => {
                    tracing::debug!(error = %err, "could not update event");
                    return;
                }
            }
        }
        let name = format!(
            "{}.{:x}",
            e.pod_name,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(e.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(e.pod_name.clone()),
                namespace: Some(e.namespace.clone()),
                uid: Some(e.pod_uid.clone()),
                field_path: e.field_path.clone(),
                ..Default::default()
            },
            reason: Some(e.reason.clone()),
            message: Some(e.message.clone()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node_name.clone()),
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            type_: Some(e.event_type.as_str().into()),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node_name.clone()),
            ..Default::default()
        };
        match with_timeout(limit, api.create(&PostParams::default(), &event)).await {
            Ok(_) => {
                self.seen.insert(key, (name, 1, Instant::now()));
            }
            Err(err) => tracing::debug!(error = %err, reason = %e.reason, "could not record event"),
        }
    }
}
