//! HTTP Basic authentication for the API, as A1111's `--api-auth user:pass[,user2:pass2]`.
//! Every configured credential is compared in constant time (no early exit on the first
//! differing byte or on a match), so response timing does not reveal how much of a
//! guessed password was right.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use easel_core::{Error, Result};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The `user:pass` pairs accepted.
#[derive(Clone, Debug, Default)]
pub struct Credentials(Vec<Vec<u8>>);

impl Credentials {
    /// `user:pass[,user2:pass2]`; each pair needs a user and a `:`.
    pub fn parse(text: &str) -> Result<Self> {
        let pairs = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once(':') {
                Some((user, _)) if !user.is_empty() => Ok(p.as_bytes().to_vec()),
                _ => Err(Error::Invalid(format!(
                    "--api-auth: `{}` is not user:password",
                    p.split(':').next().unwrap_or("")
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        if pairs.is_empty() {
            return Err(Error::Invalid("--api-auth lists no user:password".into()));
        }
        Ok(Self(pairs))
    }

    /// Whether an `Authorization` header value carries one of the pairs.
    pub fn accepts(&self, header_value: Option<&HeaderValue>) -> bool {
        let Some(given) = header_value
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
            })
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        else {
            return false;
        };
        let mut ok = subtle::Choice::from(0u8);
        for pair in &self.0 {
            ok |= pair.as_slice().ct_eq(given.as_slice());
        }
        ok.into()
    }
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request authenticates.
pub async fn require(State(creds): State<Arc<Credentials>>, req: Request, next: Next) -> Response {
    if creds.accepts(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "detail": "Incorrect username or password" })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"easel\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderValue {
        let b64 = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
    }

    #[test]
    fn accepts_each_listed_pair_only() {
        let c = Credentials::parse("alice:s3cret, bob:pa:ss").unwrap();
        assert!(c.accepts(Some(&basic("alice:s3cret"))));
        assert!(c.accepts(Some(&basic("bob:pa:ss"))));
        assert!(!c.accepts(Some(&basic("alice:s3cre"))));
        assert!(!c.accepts(Some(&basic("alice:s3cretx"))));
        assert!(!c.accepts(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!c.accepts(Some(&HeaderValue::from_static("Basic !!!"))));
        assert!(!c.accepts(None));
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(Credentials::parse("").is_err());
        let e = Credentials::parse("alice").unwrap_err().to_string();
        assert!(e.contains("alice"), "{e}");
        assert!(Credentials::parse(":pw").is_err());
    }
}
