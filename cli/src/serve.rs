//! `easel serve`: serves the built web page (`web/dist`) on 127.0.0.1 so a WebGPU browser
//! can generate from the user's own files. Loopback only, GET/HEAD of files under the folder
//! only, and a strict Content Security Policy: the page can fetch nothing but its own assets.

use clap::Args;
use easel_core::{Error, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

/// The policy the page runs under: scripts and wasm from this origin only, no inline code,
/// no requests anywhere else, model files only through file pickers.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
worker-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 7860)]
    pub port: u16,
    /// The built page (web/ci.sh writes it to web/dist).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `web/dist` of the source checkout this binary was built from.
fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/dist")
}

pub fn run(a: ServeArgs) -> Result<()> {
    let dir = a.dir.clone().unwrap_or_else(default_dir);
    let dir = dir.canonicalize().map_err(|e| Error::io(&dir, e))?;
    if !dir.join("index.html").is_file() {
        return Err(Error::Invalid(format!(
            "{}: no index.html (build the page with `bash web/ci.sh` first)",
            dir.display()
        )));
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, a.port))
        .map_err(|e| Error::Invalid(format!("cannot listen on 127.0.0.1:{}: {e}", a.port)))?;
    let port = listener.local_addr().map(|s| s.port()).unwrap_or(a.port);
    println!(
        "serving {} on http://127.0.0.1:{port}/ (Ctrl-C stops)",
        dir.display()
    );
    for stream in listener.incoming().flatten() {
        // One connection at a time is plenty for one local user; errors end that connection.
        let _ = handle(stream, &dir);
    }
    Ok(())
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

fn content_type(path: &Path) -> &'static str {
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

fn handle(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers; nothing in them changes the answer.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut out = stream;
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, "405 Method Not Allowed", "text/plain", b"", true);
    }
    match resolve(root, target).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((path, body)) => respond(
            &mut out,
            "200 OK",
            content_type(&path),
            &body,
            method == "GET",
        ),
        None => respond(
            &mut out,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method == "GET",
        ),
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n\
Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    if with_body {
        out.write_all(body)?;
    }
    out.flush()
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

    #[test]
    fn answers_with_the_csp_on_loopback() {
        use std::io::Read;
        let r = root();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            handle(s, &r).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /pkg/a.wasm HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).unwrap();
        server.join().unwrap();
        let text = String::from_utf8_lossy(&resp);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains(&format!("Content-Security-Policy: {CSP}")));
        assert!(text.contains("Content-Type: application/wasm"));
        assert!(resp.ends_with(&[0u8, 97, 115, 109]));
    }
}
