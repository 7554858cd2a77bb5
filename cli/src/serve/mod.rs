//! `easel serve`: the web page (`web/dist`) and A1111's HTTP API under `/sdapi/v1`, which is
//! always on, on axum + tokio. Generation runs on its own thread (see [`worker`]), one job
//! at a time, with a bounded FIFO queue in front ([`queue`]); the async runtime only parses,
//! queues and answers. Loopback by default; `--listen` opens all interfaces and then needs
//! `--api-auth` (or an explicit `--insecure`).

mod api_types;
mod auth;
mod img2img;
pub mod limits;
mod options;
mod queue;
#[cfg(test)]
mod request_fuzz;
mod routes;
mod static_files;
mod txt2img;
mod worker;

use crate::compute::{Compute, ComputeArgs};
use crate::generate::{models_folder, sampler_registry, scheduler_registry};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clap::Args;
use easel_core::model::{list_folder, resolve_checkpoint};
use easel_core::{Error, Result};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 7860)]
    pub port: u16,
    /// Listen on all interfaces (0.0.0.0) instead of 127.0.0.1; requires --api-auth unless
    /// --insecure is given.
    #[arg(long)]
    pub listen: bool,
    /// Allow --listen without --api-auth (anyone who can reach the port can generate).
    #[arg(long)]
    pub insecure: bool,
    /// HTTP Basic credentials for the API: user:password[,user2:password2].
    #[arg(long = "api-auth")]
    pub api_auth: Option<String>,
    /// Origins allowed to call the API from a browser (comma-separated); no CORS otherwise.
    #[arg(long = "cors-allow-origins")]
    pub cors_allow_origins: Option<String>,
    /// Requests that may wait for their turn; more are answered 503 at once.
    #[arg(long = "queue-limit", default_value_t = 32)]
    pub queue_limit: usize,
    /// Largest request body in bytes (a base64 image for png-info must fit).
    #[arg(long = "max-body", default_value_t = 32 * 1024 * 1024)]
    pub max_body: usize,
    /// The built page (web/ci.sh writes it to web/dist); without it only the API is served.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// An A1111-style models folder (default: ./models, else the bundled tiny model).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Checkpoint to start with (name, hash or A1111 title) [default: the first].
    #[arg(long)]
    pub model: Option<String>,
    /// Textual-inversion embeddings folder [default: `embeddings/` beside the models folder].
    #[arg(long = "embeddings-dir")]
    pub embeddings_dir: Option<PathBuf>,
    #[command(flatten)]
    pub limits: limits::RequestLimits,
    #[command(flatten)]
    pub compute: ComputeArgs,
}

/// An API error with A1111's body shapes: `{"detail": "..."}`, or for a bad field FastAPI's
/// `{"detail": [{"loc": ["body", field], "msg": ..., "type": ...}]}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": detail.into() }),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
    /// 422 naming a body field.
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Self::field_path(&["body", field], msg)
    }
    /// A bad item of a list field: FastAPI's `loc` ends with the item's index.
    pub fn list_item(field: &str, index: usize, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "detail": [{ "loc": ["body", field, index], "msg": msg.into(), "type": "value_error" }] }),
        }
    }
    pub fn field_path(loc: &[&str], msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "detail": [{ "loc": loc, "msg": msg.into(), "type": "value_error" }] }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// Checks the flags that decide who can reach the server.
fn check_exposure(a: &ServeArgs) -> Result<IpAddr> {
    if !a.listen {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if a.api_auth.is_none() && !a.insecure {
        return Err(Error::Invalid(
            "--listen exposes the API to the network: give --api-auth user:password (or --insecure to allow anyone)".into(),
        ));
    }
    Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

pub fn run(a: ServeArgs) -> Result<()> {
    let compute = a.compute.choose()?;
    let ip = check_exposure(&a)?;
    let credentials = a
        .api_auth
        .as_deref()
        .map(auth::Credentials::parse)
        .transpose()?;
    let (models, model) = models_folder(&a.models, a.model.as_deref().unwrap_or(""));
    let checkpoint = resolve_checkpoint(&models, &model)?;
    let title = list_folder(&models)
        .into_iter()
        .find(|c| c.path == checkpoint)
        .map(|c| format!("{} [{}]", c.name, c.legacy_hash))
        .unwrap_or(model);
    // The backend is built on the worker thread that owns it.
    let args = a.compute.clone();
    let embeddings = a.embeddings_dir.clone().unwrap_or_else(|| {
        models
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("embeddings")
    });
    let folders = (models.clone(), Some(embeddings.clone()));
    let job_time = a.limits.job_time();
    let worker = match compute {
        Compute::Candle => worker::start(move || args.candle(), folders, job_time)?,
        Compute::Wgpu => worker::start(move || args.wgpu(), folders, job_time)?,
    };
    let page = static_files::page_dir(a.dir.clone());
    let state = Arc::new(routes::AppState {
        worker,
        queue: queue::JobQueue::new(a.queue_limit),
        options: std::sync::Mutex::new(options::default_options(&title)),
        models,
        embeddings,
        embeddings_cache: std::sync::Mutex::new(Default::default()),
        samplers: sampler_registry(),
        schedulers: scheduler_registry(),
        limits: a.limits.clone(),
        cmd_flags: json!({
            "api": true,
            "listen": a.listen,
            "port": a.port,
            "api_auth": a.api_auth.is_some(),
            "cors_allow_origins": a.cors_allow_origins.clone(),
            "queue_limit": a.queue_limit,
            "max_body": a.max_body,
            "max_steps": a.limits.max_steps,
            "max_size": a.limits.max_size,
            "max_batch_size": a.limits.max_batch_size,
            "max_batch_count": a.limits.max_batch_count,
            "max_job_seconds": a.limits.max_job_seconds,
            "backend": a.compute.backend.clone(),
            "insecure": a.insecure,
        }),
    });
    let app = routes::router(
        state,
        credentials,
        a.cors_allow_origins.as_deref(),
        a.max_body,
        page.clone(),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, a.port))
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {ip}:{}: {e}", a.port)))?;
        let port = listener.local_addr().map(|s| s.port()).unwrap_or(a.port);
        match &page {
            Some(dir) => println!("page: {}", dir.display()),
            None => {
                println!("page: not built (bash web/ci.sh builds web/dist); serving the API only")
            }
        }
        println!("A1111 API: http://{ip}:{port}/sdapi/v1/ (docs: README, \"easel serve\")");
        println!("listening on http://{ip}:{port}/ (Ctrl-C stops)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Invalid(format!("server error: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: ServeArgs,
    }

    fn args(v: &[&str]) -> ServeArgs {
        Wrap::parse_from(std::iter::once("serve").chain(v.iter().copied())).a
    }

    #[test]
    fn loopback_unless_listen_and_listen_needs_auth() {
        assert_eq!(
            check_exposure(&args(&[])).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let e = check_exposure(&args(&["--listen"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--api-auth"), "{e}");
        let open = check_exposure(&args(&["--listen", "--api-auth", "u:p"])).unwrap();
        assert_eq!(open, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(check_exposure(&args(&["--listen", "--insecure"])).is_ok());
    }
}
