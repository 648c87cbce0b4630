//! The Kubernetes client of the controllers and webhooks: kube's own layers (base URI,
//! credentials with their refresh, impersonation headers, retries of throttled requests,
//! connection timeouts, TLS) over an HTTP/1 client whose read buffers are capped.
//!
//! Why: a connection's read buffer grows while it reads a large response (a page of a list is
//! about a megabyte) up to hyper's default ceiling of about 400 KB, and keeps that capacity for
//! as long as the connection lives. A watch takes over the connection its list used and lives
//! as long as the process, so each watched kind kept 400 KB, and so did every pooled connection
//! that once carried a list: about 10 MB of the controller's memory at 10,000 customers. At
//! [`MAX_READ_BUFFER`], a large response is read in more, smaller reads.
//!
//! A kubeconfig with a proxy, or with credentials from an exec plugin (whose client
//! certificates expire), gets kube's default client, which handles both.

use hyper_util::client::legacy::connect::HttpConnector;
use kube::client::ConfigExt;
use kube::{Client, Config};
use tower::ServiceBuilder;

/// The largest read buffer of one connection to the API server.
pub const MAX_READ_BUFFER: usize = 64 * 1024;

/// A client for the kube context as kubectl uses it (KUBECONFIG, ~/.kube/config), or
/// in-cluster.
pub async fn inferred() -> anyhow::Result<Client> {
    let config = Config::infer().await?;
    Ok(from_config(config)?)
}

/// A client for `config` (see the module's documentation).
pub fn from_config(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() || config.auth_info.exec.is_some() {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    // The scheme is the TLS connector's business.
    http.enforce_http(false);
    let mut connector = hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client = hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
        .http1_max_buf_size(MAX_READ_BUFFER)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(Client::new(service, config.default_namespace))
}
