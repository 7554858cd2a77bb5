//! The built web page (`web/dist`): GET/HEAD of files under the folder only, under a strict
//! Content Security Policy (the page can fetch nothing but its own assets and this server).

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path, PathBuf};

/// The policy the page runs under: scripts and wasm from this origin only, no inline code,
/// no requests anywhere else, model files only through file pickers.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
worker-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `web/dist` of the source checkout this binary was built from.
fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/dist")
}

/// The page folder, when it holds a built page.
pub fn page_dir(arg: Option<PathBuf>) -> Option<PathBuf> {
    let dir = arg.unwrap_or_else(default_dir).canonicalize().ok()?;
    dir.join("index.html").is_file().then_some(dir)
}

/// Maps a request path to a file under `root`, refusing anything that leaves it.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let path = if path == "/" { "/index.html" } else { path };
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel);
    full.is_file().then_some(full)
}

pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Answers a request for a page file (404 for anything else).
pub async fn serve_file(root: Option<PathBuf>, req: Request<Body>) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let found = root.as_deref().and_then(|r| resolve(r, req.uri().path()));
    let (status, ctype, body) = match found {
        Some(path) => match tokio::fs::read(&path).await {
            Ok(bytes) => (StatusCode::OK, content_type(&path), bytes),
            Err(_) => (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        },
        None => (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
    };
    let len = body.len();
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        let d = std::env::temp_dir().join(format!("easel-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("pkg")).unwrap();
        std::fs::write(d.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(d.join("pkg/a.wasm"), [0u8, 97, 115, 109]).unwrap();
        d
    }

    #[test]
    fn resolves_files_inside_the_root_only() {
        let r = root();
        assert_eq!(resolve(&r, "/"), Some(r.join("index.html")));
        assert_eq!(resolve(&r, "/pkg/a.wasm?v=1"), Some(r.join("pkg/a.wasm")));
        assert_eq!(resolve(&r, "/../etc/passwd"), None);
        assert_eq!(resolve(&r, "/pkg/../../x"), None);
        assert_eq!(resolve(&r, "/missing.js"), None);
    }

    #[test]
    fn wasm_and_scripts_get_their_types() {
        assert_eq!(content_type(Path::new("x.wasm")), "application/wasm");
        assert!(content_type(Path::new("main.js")).starts_with("text/javascript"));
    }

    #[tokio::test]
    async fn answers_with_the_csp() {
        let r = root();
        let req = Request::builder()
            .uri("/pkg/a.wasm")
            .body(Body::empty())
            .unwrap();
        let resp = serve_file(Some(r), req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/wasm");
        let body = axum::body::to_bytes(resp.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], &[0u8, 97, 115, 109]);
    }
}
