//! A local Kubernetes API server for trying purchase-guard without a cluster and for its
//! integration tests: real `kubectl` and kube-rs clients work against it unchanged.
//!
//! What is faithful to kube-apiserver and what is simplified is listed in `docs/sandbox.md`.

mod admission;
mod autoscaling;
mod catalogue;
mod cron;
mod events;
mod managed;
mod meta;
mod openapi;
mod openapi_v2;
mod patch;
mod printers;
mod protobuf;
mod quantity;
mod rbac;
mod registry;
mod selectors;
mod server;
mod status;
mod store;
mod tokens;
mod validation;

pub use rbac::UserInfo;
pub use server::{ApiServer, KUBERNETES_VERSION, MAX_BODY};
pub use status::ApiError;
pub use store::{Key, Store};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to start a sandbox.
#[derive(Clone, Debug)]
pub struct Config {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where objects are persisted across restarts; `None` keeps them in memory.
    pub state_file: Option<PathBuf>,
    /// How many watch events are kept for watches resuming from a resourceVersion.
    pub history: usize,
    /// How often watches that ask for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Authorize requests with RBAC (identities come from the `Impersonate-*` headers; requests
    /// without them act as an administrator in `system:masters`).
    pub rbac: bool,
    /// Where webhooks given as a Service reference are reached: `NAMESPACE/NAME` to
    /// `HOST:PORT` (nothing runs inside the sandbox, so Services have no endpoints of their own).
    pub service_endpoints: std::collections::HashMap<String, String>,
    /// Simulate nodes and workloads: worker Nodes; Deployments, ReplicaSets, StatefulSets,
    /// DaemonSets and Jobs get their Pods, which are scheduled and reported Running (no
    /// container runs). Off by default here; on in `purchase-guard sandbox`.
    pub simulate_workloads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            state_file: None,
            history: 100_000,
            bookmark_interval: Duration::from_secs(1),
            rbac: false,
            service_endpoints: Default::default(),
            simulate_workloads: false,
        }
    }
}

/// Errors starting a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("cannot read the state file {path}: {source}")]
    ReadState { path: PathBuf, source: std::io::Error },
    #[error("the state file {path} is not a sandbox state file: {source}")]
    ParseState { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A running sandbox.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub server: Arc<ApiServer>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    persist: Option<tokio::task::JoinHandle<()>>,
}

fn load_state(path: &Path, store: &Store) -> Result<(), Error> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let snapshot: store::Snapshot = serde_json::from_slice(&bytes).map_err(|source| Error::ParseState {
                path: path.to_path_buf(),
                source,
            })?;
            store.lock().restore(snapshot);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::ReadState {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn save_state(path: &Path, store: &Store) -> Result<(), Error> {
    let snapshot = store.lock().snapshot();
    let bytes = serde_json::to_vec(&snapshot).map_err(|e| Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl Sandbox {
    /// Starts serving on 127.0.0.1.
    pub async fn start(config: Config) -> Result<Sandbox, Error> {
        let store = Arc::new(Store::new(config.history));
        if let Some(path) = &config.state_file {
            load_state(path, &store)?;
        }
        let mut server = ApiServer::new(store.clone());
        server.bookmark_interval = config.bookmark_interval;
        server.rbac = config.rbac;
        server.admission.service_endpoints = config.service_endpoints.clone();
        let server = Arc::new(server);
        server.bootstrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| Error::Listen {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            port: config.port,
            source,
        })?;
        let app = axum::Router::new().fallback(server::handler).with_state(server.clone());
        let (shutdown, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let signal = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            use axum::serve::ListenerExt;
            // Responses go out at once (no Nagle delay between their parts), as kube-apiserver's.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                tracing::error!(error = %e, "sandbox API server stopped");
            }
        });
        tokio::spawn(server.clone().retry_refused_collections(shutdown.subscribe()));
        if config.simulate_workloads {
            server.add_worker_nodes();
            tokio::spawn(server.clone().simulate_workloads(shutdown.subscribe()));
        }
        let persist = config.state_file.clone().map(|path| {
            let store = store.clone();
            let mut stop = shutdown.subscribe();
            tokio::spawn(async move {
                loop {
                    let stopping = tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => false,
                        _ = stop.wait_for(|s| *s) => true,
                    };
                    let dirty = store.lock().take_dirty();
                    if (dirty || stopping)
                        && let Err(e) = save_state(&path, &store)
                    {
                        tracing::error!(error = %e, "cannot persist the sandbox state");
                    }
                    if stopping {
                        return;
                    }
                }
            })
        });
        Ok(Sandbox {
            addr,
            server,
            shutdown,
            task,
            persist,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:6443`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this sandbox (context `purchase-guard-sandbox`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: purchase-guard-sandbox\n  cluster:\n    server: {}\ncontexts:\n- name: purchase-guard-sandbox\n  context:\n    cluster: purchase-guard-sandbox\n    user: admin\n    namespace: default\ncurrent-context: purchase-guard-sandbox\nusers:\n- name: admin\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Writes the kubeconfig at `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Stops serving, flushes the state file, and waits for both.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Open watches end, as kube-apiserver ends them when it stops; the graceful shutdown
        // would otherwise wait for their timeouts.
        self.server.store.close_watches();
        let _ = self.task.await;
        if let Some(p) = self.persist {
            let _ = p.await;
        }
    }
}
