//! `test-apiserver`: run the in-memory API server standalone.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use test_apiserver::{KubeconfigAuth, Options, Server, bootstrap_token};

/// In-memory Kubernetes API server for tests.
#[derive(Debug, Parser)]
#[command(name = "test-apiserver", version)]
struct Args {
    /// Port to listen on (0 = ephemeral).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Serve HTTPS with a self-signed CA.
    #[arg(long)]
    tls: bool,
    /// Write the admin kubeconfig here (it is also printed).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Use an admin client certificate in the kubeconfig instead of a token.
    #[arg(long)]
    client_cert: bool,
    /// Approve CSRs automatically.
    #[arg(long)]
    auto_approve_csrs: bool,
    /// Accept a bootstrap token `<id>.<secret>` (system:bootstrappers).
    #[arg(long)]
    bootstrap_token: Vec<String>,
    /// Retained watch history (events).
    #[arg(long, default_value_t = 10_000)]
    history_limit: usize,
    /// Watch bookmark interval in seconds.
    #[arg(long, default_value_t = 10)]
    bookmark_interval: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut tokens = Vec::new();
    for t in &args.bootstrap_token {
        let (id, secret) = t
            .split_once('.')
            .context("bootstrap token must be <id>.<secret>")?;
        tokens.push(bootstrap_token(id, secret));
    }
    let opts = Options {
        bind: args.bind,
        port: args.port,
        tls: args.tls,
        tokens,
        auto_approve_csrs: args.auto_approve_csrs,
        history_limit: args.history_limit,
        bookmark_interval: Duration::from_secs(args.bookmark_interval.max(1)),
        kubeconfig_auth: if args.client_cert {
            KubeconfigAuth::ClientCert
        } else {
            KubeconfigAuth::Token
        },
        ..Options::default()
    };
    let server = Server::start(opts).await.context("starting the server")?;
    if let Some(p) = &args.kubeconfig {
        std::fs::copy(server.kubeconfig_path(), p)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    println!("listening on {}", server.url());
    println!(
        "kubeconfig: {}",
        args.kubeconfig
            .as_deref()
            .unwrap_or(server.kubeconfig_path())
            .display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    server.stop().await;
    Ok(())
}
