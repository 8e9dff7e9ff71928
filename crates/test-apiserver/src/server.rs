//! The library entry point: start a server in-process on an ephemeral port, get its URL
//! and a kubeconfig, flip test knobs, stop it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::authz::Policy;
use crate::auth::ca::{CaError, CertPair, TestCa};
use crate::auth::tokens::{StaticToken, TokenAuthenticator};
use crate::auth::{UserInfo, random_token};
use crate::ops::{WriteParams, create::create};
use crate::registry::{defs, service::KUBERNETES_SERVICE_IP};
use crate::state::{Cluster, RequestRecord};
use crate::store::Store;
use crate::{controllers, http};

/// How the written kubeconfig authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeconfigAuth {
    /// A bearer token of the admin (default).
    #[default]
    Token,
    /// An admin client certificate (needs TLS).
    ClientCert,
    /// No credentials (plain HTTP acts as admin, like the old insecure port).
    None,
}

/// Server options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind (default 127.0.0.1).
    pub bind: IpAddr,
    /// Port (0 = ephemeral).
    pub port: u16,
    /// Serve HTTPS with the test CA (client certificates accepted).
    pub tls: bool,
    /// Extra static tokens.
    pub tokens: Vec<StaticToken>,
    /// Unauthenticated TLS requests are `system:anonymous` instead of 401.
    pub anonymous: bool,
    /// Requests without credentials over plain HTTP act as the admin.
    pub insecure_is_admin: bool,
    /// Authorization policy.
    pub policy: Policy,
    /// Approve CSRs automatically.
    pub auto_approve_csrs: bool,
    /// Changes retained for watch resume (older RVs get 410 Gone).
    pub history_limit: usize,
    /// Watch bookmark interval.
    pub bookmark_interval: Duration,
    /// Lifetime of certificates signed for CSRs without expirationSeconds.
    pub signed_cert_lifetime: Duration,
    /// Credentials written into the kubeconfig.
    pub kubeconfig_auth: KubeconfigAuth,
    /// Create default, kube-system, kube-public, kube-node-lease and the `kubernetes` Service.
    pub bootstrap: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: false,
            tokens: Vec::new(),
            anonymous: false,
            insecure_is_admin: true,
            policy: Policy::AlwaysAllow,
            auto_approve_csrs: false,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(10),
            signed_cert_lifetime: Duration::from_secs(365 * 24 * 3600),
            kubeconfig_auth: KubeconfigAuth::Token,
            bootstrap: true,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding or writing files failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Certificates failed.
    #[error("ca: {0}")]
    Ca(#[from] CaError),
    /// Creating the bootstrap objects failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::error::ApiError),
}

/// A running server.
pub struct Server {
    cl: Arc<Cluster>,
    addr: SocketAddr,
    tls: bool,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    tls_cfg: Option<Arc<rustls::ServerConfig>>,
    listening: tokio::sync::Mutex<Option<Listening>>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    admin_token: String,
    admin_cert: Option<CertPair>,
}

impl Server {
    /// Starts a server.
    pub async fn start(opts: Options) -> Result<Server, StartError> {
        let ca = TestCa::new()?;
        let admin_token = random_token();
        let mut tokens = TokenAuthenticator::new(opts.tokens.clone());
        tokens.add(StaticToken {
            token: admin_token.clone(),
            user: UserInfo::admin(),
        });
        let store = Arc::new(Store::new(opts.history_limit));
        let tls_cfg = if opts.tls {
            Some(Arc::new(ca.server_config(&ca.serving_cert()?)?))
        } else {
            None
        };
        let admin_cert = if opts.tls {
            Some(ca.client_cert(
                "kubernetes-admin",
                &["system:masters"],
                Duration::from_secs(365 * 24 * 3600),
            )?)
        } else {
            None
        };
        let kubelet_cert = ca.client_cert(
            "kube-apiserver-kubelet-client",
            &["system:masters"],
            Duration::from_secs(365 * 24 * 3600),
        )?;
        let kubelet_client = crate::http::proxy::kubelet_client_config(
            &kubelet_cert.cert_pem,
            kubelet_cert.key_der(),
        )
        .map_err(CaError::Tls)?;
        let cl = Arc::new(Cluster::new(
            store,
            tokens,
            opts.policy.clone(),
            ca,
            opts.signed_cert_lifetime,
            opts.bookmark_interval,
            opts.insecure_is_admin,
            opts.anonymous,
            kubelet_client,
        ));
        cl.knobs
            .auto_approve_csrs
            .store(opts.auto_approve_csrs, Ordering::SeqCst);
        let listener = TcpListener::bind(SocketAddr::new(opts.bind, opts.port)).await?;
        let addr = listener.local_addr()?;
        if opts.bootstrap {
            bootstrap(&cl, addr.port())?;
        }
        let stop = CancellationToken::new();
        let tasks = vec![tokio::spawn(controllers::run(cl.clone(), stop.clone()))];
        let listening = spawn_listener(listener, tls_cfg.clone(), cl.clone(), &stop);
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let server = Server {
            cl,
            addr,
            tls: opts.tls,
            stop,
            tasks,
            tls_cfg,
            listening: tokio::sync::Mutex::new(Some(listening)),
            dir,
            kubeconfig,
            admin_token,
            admin_cert,
        };
        let creds = match opts.kubeconfig_auth {
            KubeconfigAuth::Token => Credentials::Token(server.admin_token.clone()),
            KubeconfigAuth::ClientCert => match &server.admin_cert {
                Some(c) => Credentials::Cert(c.clone()),
                None => Credentials::Token(server.admin_token.clone()),
            },
            KubeconfigAuth::None => Credentials::None,
        };
        server.write_kubeconfig(&server.kubeconfig, &creds)?;
        tracing::info!(url = %server.url(), kubeconfig = %server.kubeconfig.display(), "test API server started");
        Ok(server)
    }

    /// `http://127.0.0.1:<port>` or `https://...`.
    pub fn url(&self) -> String {
        http::serve::url(self.addr, self.tls)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig written at start (admin credentials).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A directory that lives as long as the server (for extra files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The CA certificate PEM.
    pub fn ca_pem(&self) -> &str {
        self.cl.ca.cert_pem()
    }

    /// Issues a client certificate (CN = user, O = groups) from the test CA.
    pub fn issue_client_cert(
        &self,
        user: &str,
        groups: &[&str],
        lifetime: Duration,
    ) -> Result<CertPair, CaError> {
        self.cl.ca.client_cert(user, groups, lifetime)
    }

    /// Adds a static bearer token.
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.cl
            .tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(StaticToken {
                token: token.into(),
                user,
            });
    }

    /// Writes a kubeconfig for this server with the given credentials.
    pub fn write_kubeconfig(&self, path: &Path, creds: &Credentials) -> std::io::Result<()> {
        let mut cluster = json!({"server": self.url()});
        if self.tls {
            let ca = self.dir.path().join("ca.crt");
            std::fs::write(&ca, self.cl.ca.cert_pem())?;
            cluster["certificate-authority"] = json!(ca);
        }
        let user = match creds {
            Credentials::Token(t) => json!({"token": t}),
            Credentials::Cert(c) => {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD;
                json!({"client-certificate-data": b.encode(&c.cert_pem), "client-key-data": b.encode(&c.key_pem)})
            }
            Credentials::None => json!({}),
        };
        let cfg = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": cluster}],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}],
            "current-context": "test",
            "preferences": {},
        });
        let text = serde_json::to_string_pretty(&cfg).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    /// The shared state (store, policy, knobs) for direct manipulation in tests.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cl
    }

    /// Forgets watch history up to `rv` (default all): older RVs get 410 Gone.
    pub fn compact(&self, rv: Option<u64>) -> u64 {
        self.cl.store.compact(rv)
    }

    /// The next `n` API requests fail with 503.
    pub fn fail_next(&self, n: u64) {
        self.cl.knobs.fail_next(n);
    }

    /// All API requests fail with 503 for `d`.
    pub fn fail_for(&self, d: Duration) {
        self.cl.knobs.fail_for(d);
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.cl
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the authorization policy.
    pub fn set_policy(&self, p: Policy) {
        *self.cl.policy.write().unwrap_or_else(|p| p.into_inner()) = p;
    }

    /// Turns CSR auto-approval on or off.
    pub fn set_auto_approve_csrs(&self, on: bool) {
        self.cl.knobs.auto_approve_csrs.store(on, Ordering::SeqCst);
        controllers::resync(&self.cl);
    }

    /// Ends every open watch.
    pub fn close_watches(&self) {
        self.cl.close_watches();
    }

    /// Creates an object as the admin (e.g. a Node or a Pod fixture).
    pub fn create(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        obj: Value,
    ) -> Result<Value, crate::error::ApiError> {
        let def = defs::find(group, version, plural).ok_or(crate::error::ApiError::PathNotFound)?;
        create(
            &self.cl,
            def,
            namespace,
            obj,
            &UserInfo::admin(),
            WriteParams::default(),
        )
        .map(|(o, _)| o)
    }

    /// Simulates the API server going away: stops listening, drops every connection and
    /// watch; the state is kept. Clients get "connection refused" until [`Server::go_online`].
    pub async fn go_offline(&self) {
        let mut l = self.listening.lock().await;
        if let Some(Listening { stop, task }) = l.take() {
            stop.cancel();
            let _ = task.await;
        }
        self.cl.close_watches();
    }

    /// Listens again on the same address after [`Server::go_offline`].
    pub async fn go_online(&self) -> std::io::Result<()> {
        let mut l = self.listening.lock().await;
        if l.is_none() {
            let listener = TcpListener::bind(self.addr).await?;
            *l = Some(spawn_listener(
                listener,
                self.tls_cfg.clone(),
                self.cl.clone(),
                &self.stop,
            ));
        }
        Ok(())
    }

    /// Stops listening, ends watches and background tasks.
    pub async fn stop(self) {
        self.go_offline().await;
        self.stop.cancel();
        self.cl.close_watches();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The accept loop and its own stop token (a child of the server's).
struct Listening {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn spawn_listener(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    cl: Arc<Cluster>,
    parent: &CancellationToken,
) -> Listening {
    let stop = parent.child_token();
    let task = tokio::spawn(http::serve::serve(listener, tls, cl, stop.clone()));
    Listening { stop, task }
}

/// Credentials for [`Server::write_kubeconfig`].
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Bearer token.
    Token(String),
    /// Client certificate.
    Cert(CertPair),
    /// None.
    None,
}

fn bootstrap(cl: &Cluster, port: u16) -> Result<(), crate::error::ApiError> {
    let admin = UserInfo::admin();
    let p = WriteParams::default();
    let ns_def = defs::find("", "v1", "namespaces").ok_or(crate::error::ApiError::PathNotFound)?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create(cl, ns_def, "", json!({"metadata": {"name": ns}}), &admin, p)?;
    }
    let svc = defs::find("", "v1", "services").ok_or(crate::error::ApiError::PathNotFound)?;
    let body = json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": KUBERNETES_SERVICE_IP, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
    });
    create(cl, svc, "default", body, &admin, p)?;
    Ok(())
}
