//! Detached OpenPGP signatures over a release's checksum list.
//!
//! A `sha256sum` list proves the files match the list; it proves nothing about who wrote
//! the list, since anyone who can change the files can change the list too. A release that
//! ships `sha256sum.sig` (binary) or `sha256sum.asc` (ASCII armor) beside the list, made
//! with the publisher's OpenPGP key, closes that gap: a good signature by a key the user
//! trusts shows the list (and so every file it names) is what that key's owner published.
//!
//! What a signature does not prove: that the key is the publisher's. A key file found in
//! the release folder itself (`aboutus.gpg`, or a single `*.gpg` / `*.asc` key) came with
//! the files it vouches for, so with it a good signature only shows the folder is
//! self-consistent; the report says so and prints the fingerprint for the user to compare
//! with one published elsewhere (or to pin with `signer_fingerprint`).
//!
//! Verification is rPGP's (the `pgp` crate, pure Rust); nothing here runs `gpg`. On top of
//! the cryptographic check Easel applies a small policy, so that every failure is an error
//! naming the file and, where known, the key's fingerprint and user id:
//! * keys: RSA of 2048–4096 bits and Ed25519 (the RFC 9580 form and the older EdDSA form
//!   GnuPG writes); signature hashes SHA-256/384/512 and SHA3-256/512. Anything else is
//!   reported as unsupported by name (DSA, SHA-1, RSA 1024, ...);
//! * the signing key may be the primary key or a subkey bound to it for signing (with a
//!   valid back-signature), and the primary key must carry a user id bound by a valid
//!   self-signature; expiry and revocation are read only from signatures that verify;
//! * a key that is revoked, or expired now or at signing time, or a signature that has
//!   expired, is refused (GnuPG prints such signatures as "good" with a note; a release
//!   import refuses them, since the key owner withdrew them).
//!
//! The verification itself is native-only (the `pgp` dependency is not built for wasm32,
//! where no release folder is imported); on wasm32 every check reports it as unavailable.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// File name extensions looked for beside a checksum list: `sha256sum.sig`, `sha256sum.asc`.
pub const SIGNATURE_EXTENSIONS: [&str; 2] = ["sig", "asc"];

/// The key file name a NovelAI-style release ships its public key under.
pub const RELEASE_KEY_NAME: &str = "aboutus.gpg";

/// Key files and signatures are small; anything larger is refused before it is parsed.
const MAX_KEY_FILE: u64 = 16 << 20;
const MAX_SIGNATURE_FILE: u64 = 1 << 20;

/// How a checksum list's signature is checked (the `--signer-*`, `--signature`,
/// `--require-signature` and `--allow-unsigned` flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// The signature file; default: `<list>.sig` or `<list>.asc` beside the list.
    pub signature: Option<PathBuf>,
    /// The signer's public key file (binary or armored); default: the release's own key.
    pub signer_key: Option<PathBuf>,
    /// The expected fingerprint of the signing key (its primary key or the signing subkey),
    /// hex, spaces allowed.
    pub signer_fingerprint: Option<String>,
    /// A list without a signature is an error.
    pub require: bool,
    /// Any failure (bad signature, unknown key, missing signature) becomes a warning.
    pub allow_unsigned: bool,
    /// The time keys are checked against for expiry; default: the system clock.
    pub now: Option<SystemTime>,
}

impl SignaturePolicy {
    /// Whether the user asked for a signature in some way, so its absence is an error.
    pub fn wants_signature(&self) -> bool {
        self.require
            || self.signature.is_some()
            || self.signer_key.is_some()
            || self.signer_fingerprint.is_some()
    }
}

/// Why a signature check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No signature file, where one was required.
    Missing,
    /// No key to check with (no `--signer-key`, and none or several in the release).
    NoKey,
    /// The signature does not verify over the list's bytes with the signer's key.
    BadSignature,
    /// The signature was made by a key that is not in the key file.
    OtherKey,
    /// The signing key's fingerprint is not the pinned one.
    FingerprintMismatch,
    /// The key (or signing subkey, or the signature itself) has expired.
    Expired,
    /// The key (or signing subkey) has been revoked by its owner.
    Revoked,
    /// A key or hash algorithm outside what Easel accepts (named in the message).
    Unsupported,
    /// The key cannot sign: no valid self-signature, a subkey not bound for signing, ...
    UnusableKey,
    /// The signature file is not an OpenPGP signature (truncated, garbage, wrong kind).
    MalformedSignature,
    /// The key file holds no usable OpenPGP public key.
    MalformedKey,
    /// The file could not be read.
    Unreadable,
    /// Built without OpenPGP support (wasm32).
    Unavailable,
}

/// A key, as reported to the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyIdentity {
    /// Fingerprint of the primary key, upper-case hex (40 digits for v4 keys, 64 for v6);
    /// for a key that is not in the key file, the signature's issuer fingerprint, or its
    /// 16-digit key id when the signature names no fingerprint.
    pub fingerprint: String,
    /// The primary user id, when the key is known.
    pub user_id: Option<String>,
}

impl fmt::Display for KeyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}", self.fingerprint)?;
        match &self.user_id {
            Some(uid) => write!(f, " \"{uid}\""),
            None => Ok(()),
        }
    }
}

/// A failed check: the file at fault, the kind of failure, the key involved when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureError {
    pub failure: Failure,
    pub file: PathBuf,
    pub message: String,
    /// The key that made (or, for [`Failure::OtherKey`], that was expected to make) the
    /// signature.
    pub key: Option<KeyIdentity>,
}

impl SignatureError {
    fn new(failure: Failure, file: &Path, message: impl Into<String>) -> Self {
        SignatureError {
            failure,
            file: file.to_path_buf(),
            message: message.into(),
            key: None,
        }
    }
    fn with_key(mut self, key: &KeyIdentity) -> Self {
        self.key = Some(key.clone());
        self
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)?;
        if let Some(k) = &self.key {
            write!(f, " [{k}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for SignatureError {}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub signature_file: PathBuf,
    pub key_file: PathBuf,
    /// The key file came from the release folder itself (see the module doc).
    pub key_from_release: bool,
    /// The signer (primary key).
    pub key: KeyIdentity,
    /// Fingerprint of the subkey that signed, when it was not the primary key.
    pub signing_subkey: Option<String>,
    /// E.g. `RSA 4096` or `Ed25519`.
    pub algorithm: String,
    /// E.g. `SHA-256`.
    pub hash: String,
    /// Signature creation time, seconds since 1970 (UTC).
    pub created: u32,
}

impl fmt::Display for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "good signature {} by {} ({}, {}",
            self.signature_file.display(),
            self.key,
            self.algorithm,
            self.hash
        )?;
        if let Some(sub) = &self.signing_subkey {
            write!(f, ", signing subkey {sub}")?;
        }
        write!(
            f,
            ", made {}), key from {}",
            utc_date(self.created),
            self.key_file.display()
        )
    }
}

impl VerifiedSignature {
    /// The caveat to show when the key came from the release itself, else `None`.
    pub fn self_consistency_note(&self) -> Option<String> {
        self.key_from_release.then(|| {
            format!(
                "the key {} comes from the release folder itself, so this signature only shows the \
                 folder is self-consistent: whoever could change the files could have replaced the key \
                 too. Compare fingerprint {} with one the publisher published elsewhere, then pass \
                 --signer-fingerprint {} (or --signer-key with a key you trust).",
                self.key_file.display(),
                self.key.fingerprint,
                self.key.fingerprint
            )
        })
    }
}

/// The outcome of the signature step of an import or a `hash --check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Not looked at (no checksum list, or verification off).
    #[default]
    NotChecked,
    /// The list has no signature beside it; only the checksums were checked.
    Absent {
        list: PathBuf,
    },
    Verified(VerifiedSignature),
    /// The check failed and the policy allowed going on anyway.
    FailedButAllowed(SignatureError),
}

impl SignatureStatus {
    /// The warning to print, if any.
    pub fn warning(&self) -> Option<String> {
        match self {
            SignatureStatus::Absent { list } => Some(format!(
                "{}: no signature ({}) beside it: files are checked against the list, but nothing \
                 shows the list itself is the publisher's",
                list.display(),
                SIGNATURE_EXTENSIONS
                    .iter()
                    .map(|e| format!("{}.{e}", file_name(list)))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            SignatureStatus::FailedButAllowed(e) => Some(format!(
                "SIGNATURE CHECK FAILED, going on only because of --allow-unsigned: {e}"
            )),
            SignatureStatus::Verified(v) => v.self_consistency_note(),
            SignatureStatus::NotChecked => None,
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since 1970 (civil-from-days, proleptic Gregorian).
pub fn utc_date(secs: u32) -> String {
    let secs = i64::from(secs);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `<list>.sig` or `<list>.asc`, whichever exists first.
pub fn find_signature_beside(list: &Path) -> Option<PathBuf> {
    let name = list.file_name()?.to_string_lossy().into_owned();
    SIGNATURE_EXTENSIONS
        .iter()
        .map(|ext| list.with_file_name(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// The release's own key file in `dir`: `aboutus.gpg` if present, else the only `*.gpg` /
/// `*.asc` file that is not a signature of `list` (`<list>.sig` / `<list>.asc`). Several
/// candidates is an error; `sig` is the signature the key is wanted for (named in errors).
pub fn find_release_key(dir: &Path, list: &Path, sig: &Path) -> Result<PathBuf, SignatureError> {
    let about = dir.join(RELEASE_KEY_NAME);
    if about.is_file() {
        return Ok(about);
    }
    let list_name = file_name(list);
    let skip: Vec<std::ffi::OsString> = SIGNATURE_EXTENSIONS
        .iter()
        .map(|e| format!("{list_name}.{e}").into())
        .chain(sig.file_name().map(|n| n.to_os_string()))
        .collect();
    let skip = skip.as_slice();
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SignatureError::new(Failure::Unreadable, dir, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| skip.iter().any(|s| s == n)))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gpg") || e.eq_ignore_ascii_case("asc"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(SignatureError::new(
            Failure::NoKey,
            sig,
            format!(
                "no key to check this signature with: pass --signer-key FILE (the publisher's public \
                 key); the release folder {} has no {RELEASE_KEY_NAME} or other *.gpg / *.asc key file",
                dir.display()
            ),
        )),
        _ => Err(SignatureError::new(
            Failure::NoKey,
            sig,
            format!(
                "several possible key files in {} ({}): choose one with --signer-key",
                dir.display(),
                found.iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn read_limited(path: &Path, limit: u64, failure: Failure) -> Result<Vec<u8>, SignatureError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SignatureError::new(Failure::Unreadable, path, e.to_string()))?;
    if meta.len() > limit {
        return Err(SignatureError::new(
            failure,
            path,
            format!(
                "{} bytes is far too large for an OpenPGP key or signature file",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| SignatureError::new(Failure::Unreadable, path, e.to_string()))
}

/// The signature step for the checksum list at `list_path`, whose exact bytes are
/// `list_bytes` (the caller parses those same bytes afterwards, so what was verified is what
/// is used). Without a given key, the release's own key is looked for in the list's folder.
///
/// Returns the status, or the failure when the policy does not allow going on.
pub fn check_list_signature(
    list_path: &Path,
    list_bytes: &[u8],
    policy: &SignaturePolicy,
) -> Result<SignatureStatus, SignatureError> {
    let outcome = (|| {
        let Some(sig_path) = policy
            .signature
            .clone()
            .or_else(|| find_signature_beside(list_path))
        else {
            if policy.wants_signature() {
                return Err(SignatureError::new(
                    Failure::Missing,
                    list_path,
                    format!(
                        "no signature beside the checksum list ({}.sig or {0}.asc) and a signed list \
                         was asked for",
                        file_name(list_path)
                    ),
                ));
            }
            return Ok(SignatureStatus::Absent {
                list: list_path.to_path_buf(),
            });
        };
        let (key_path, from_release) = match &policy.signer_key {
            Some(k) => (k.clone(), false),
            None => {
                let dir = list_path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                (find_release_key(dir, list_path, &sig_path)?, true)
            }
        };
        let sig_bytes = read_limited(&sig_path, MAX_SIGNATURE_FILE, Failure::MalformedSignature)?;
        let key_bytes = read_limited(&key_path, MAX_KEY_FILE, Failure::MalformedKey)?;
        // wasm32-unknown-unknown has no clock (`now()` panics there); it verifies nothing
        // either, so the value is never used.
        #[cfg(not(target_arch = "wasm32"))]
        let now = policy.now.unwrap_or_else(SystemTime::now);
        #[cfg(target_arch = "wasm32")]
        let now = policy.now.unwrap_or(SystemTime::UNIX_EPOCH);
        let mut verified = verify_detached(
            list_bytes,
            &sig_path,
            &sig_bytes,
            &key_path,
            &key_bytes,
            policy.signer_fingerprint.as_deref(),
            now,
        )?;
        verified.key_from_release = from_release && policy.signer_fingerprint.is_none();
        Ok(SignatureStatus::Verified(verified))
    })();
    match outcome {
        Err(e) if policy.allow_unsigned => Ok(SignatureStatus::FailedButAllowed(e)),
        other => other,
    }
}

/// Normalises a user-given fingerprint (spaces, `0x`, case) to upper-case hex; `None` when
/// it is not 40 or 64 hex digits.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    (matches!(hex.len(), 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Verifies the detached signature `sig_bytes` (from `sig_path`) over `data` with the
/// key(s) in `key_bytes` (from `key_path`), optionally pinned to `pin`, with keys checked
/// for expiry at `now`.
#[cfg(not(target_arch = "wasm32"))]
pub fn verify_detached(
    data: &[u8],
    sig_path: &Path,
    sig_bytes: &[u8],
    key_path: &Path,
    key_bytes: &[u8],
    pin: Option<&str>,
    now: SystemTime,
) -> Result<VerifiedSignature, SignatureError> {
    openpgp::verify(data, sig_path, sig_bytes, key_path, key_bytes, pin, now)
}

/// wasm32 builds carry no OpenPGP implementation: every check is reported as unavailable.
#[cfg(target_arch = "wasm32")]
pub fn verify_detached(
    _data: &[u8],
    sig_path: &Path,
    _sig_bytes: &[u8],
    _key_path: &Path,
    _key_bytes: &[u8],
    _pin: Option<&str>,
    _now: SystemTime,
) -> Result<VerifiedSignature, SignatureError> {
    Err(SignatureError::new(
        Failure::Unavailable,
        sig_path,
        "OpenPGP signature checks are not built into this (wasm32) build",
    ))
}

/// The rPGP-backed part: parsing, key selection, policy, the cryptographic check.
#[cfg(not(target_arch = "wasm32"))]
mod openpgp {
    use super::{normalize_fingerprint, Failure, KeyIdentity, SignatureError, VerifiedSignature};
    use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::crypto::public_key::PublicKeyAlgorithm;
    use pgp::packet::{Signature, SignatureType};
    use pgp::ser::Serialize;
    use pgp::types::{EddsaLegacyPublicParams, KeyDetails, PublicParams, Tag};
    use std::path::Path;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    fn fingerprint(k: &impl KeyDetails) -> String {
        hex(k.fingerprint().as_bytes())
    }

    fn secs(t: pgp::types::Timestamp) -> u64 {
        u64::from(t.as_secs())
    }

    /// Parses every key in the file; any unparsable part makes the file malformed.
    fn parse_keys(path: &Path, bytes: &[u8]) -> Result<Vec<SignedPublicKey>, SignatureError> {
        let malformed = |why: String| SignatureError::new(Failure::MalformedKey, path, why);
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
        if text.contains("PRIVATE KEY BLOCK") {
            return Err(malformed(
                "this is a secret key; give the signer's public key (gpg --export), never a secret one"
                    .into(),
            ));
        }
        let (keys, _) = SignedPublicKey::from_reader_many(bytes).map_err(|e| {
            malformed(format!(
                "not an OpenPGP public key (binary or ASCII-armored): {e}"
            ))
        })?;
        let keys: Vec<SignedPublicKey> = keys
            .collect::<Result<_, _>>()
            .map_err(|e| malformed(format!("unreadable OpenPGP public key: {e}")))?;
        if keys.is_empty() {
            return Err(malformed(
                "holds no OpenPGP public key (binary or ASCII-armored)".into(),
            ));
        }
        Ok(keys)
    }

    fn parse_signatures(path: &Path, bytes: &[u8]) -> Result<Vec<Signature>, SignatureError> {
        let malformed = |why: String| SignatureError::new(Failure::MalformedSignature, path, why);
        let (sigs, _) = DetachedSignature::from_reader_many(bytes).map_err(|e| {
            malformed(format!(
                "not an OpenPGP signature (binary or ASCII-armored): {e}"
            ))
        })?;
        let sigs: Vec<Signature> = sigs
            .map(|s| s.map(|d| d.signature))
            .collect::<Result<_, _>>()
            .map_err(|e| malformed(format!("unreadable OpenPGP signature: {e}")))?;
        if sigs.is_empty() {
            return Err(malformed(
                "holds no complete OpenPGP signature (truncated or not a signature file)".into(),
            ));
        }
        for s in &sigs {
            if s.config().is_none() {
                return Err(SignatureError::new(
                    Failure::Unsupported,
                    path,
                    format!("unsupported signature version {:?}", s.version()),
                ));
            }
            match s.typ() {
                Some(SignatureType::Binary | SignatureType::Text) => {}
                other => {
                    return Err(malformed(format!(
                        "is a {other:?} signature, not a detached signature over a file"
                    )))
                }
            }
        }
        Ok(sigs)
    }

    /// The user id to report: the primary one among those with a valid self-signature.
    fn user_id(key: &SignedPublicKey) -> Option<String> {
        let valid: Vec<_> = key
            .details
            .users
            .iter()
            .filter(|u| {
                u.signatures.iter().any(|s| {
                    s.verify_certification(&key.primary_key, Tag::UserId, &u.id)
                        .is_ok()
                })
            })
            .collect();
        valid
            .iter()
            .find(|u| u.is_primary())
            .or(valid.first())
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
    }

    fn identity(key: &SignedPublicKey) -> KeyIdentity {
        KeyIdentity {
            fingerprint: fingerprint(&key.primary_key),
            user_id: user_id(key),
        }
    }

    /// The self-signatures of the primary key that verify (user id certifications and
    /// direct-key signatures), newest first.
    fn primary_self_signatures(key: &SignedPublicKey) -> Vec<&Signature> {
        let mut sigs: Vec<&Signature> = key
            .details
            .users
            .iter()
            .flat_map(|u| {
                u.signatures.iter().filter(|s| {
                    s.typ() != Some(SignatureType::CertRevocation)
                        && s.verify_certification(&key.primary_key, Tag::UserId, &u.id)
                            .is_ok()
                })
            })
            .chain(
                key.details
                    .direct_signatures
                    .iter()
                    .filter(|s| s.verify_key(&key.primary_key).is_ok()),
            )
            .collect();
        sigs.sort_by_key(|s| std::cmp::Reverse(s.created()));
        sigs
    }

    fn subkey_bindings<'a>(
        key: &SignedPublicKey,
        sub: &'a SignedPublicSubKey,
    ) -> Vec<&'a Signature> {
        let mut sigs: Vec<&Signature> = sub
            .signatures
            .iter()
            .filter(|s| {
                s.typ() == Some(SignatureType::SubkeyBinding)
                    && s.verify_subkey_binding(&key.primary_key, &sub.key).is_ok()
            })
            .collect();
        sigs.sort_by_key(|s| std::cmp::Reverse(s.created()));
        sigs
    }

    fn algorithm_name(params: &PublicParams, algo: PublicKeyAlgorithm) -> Result<String, String> {
        match (algo, params) {
            (PublicKeyAlgorithm::RSA | PublicKeyAlgorithm::RSASign, PublicParams::RSA(_)) => {
                // The public parameters start with the modulus as an MPI, whose first two
                // bytes are its length in bits.
                let bytes = params.to_bytes().map_err(|e| e.to_string())?;
                let bits = bytes
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .unwrap_or(0);
                if (2048..=4096).contains(&bits) {
                    Ok(format!("RSA {bits}"))
                } else {
                    Err(format!("RSA {bits}"))
                }
            }
            (PublicKeyAlgorithm::Ed25519, PublicParams::Ed25519(_)) => Ok("Ed25519".into()),
            (
                PublicKeyAlgorithm::EdDSALegacy,
                PublicParams::EdDSALegacy(EddsaLegacyPublicParams::Ed25519 { .. }),
            ) => Ok("Ed25519".into()),
            (PublicKeyAlgorithm::EdDSALegacy, PublicParams::EdDSALegacy(other)) => {
                Err(format!("EdDSA on another curve ({other:?})"))
            }
            (PublicKeyAlgorithm::ECDSA, PublicParams::ECDSA(p)) => {
                Err(format!("ECDSA ({})", p.curve().name()))
            }
            (other, _) => Err(format!("{other:?}")),
        }
    }

    fn hash_name(h: HashAlgorithm) -> Result<&'static str, String> {
        match h {
            HashAlgorithm::Sha256 => Ok("SHA-256"),
            HashAlgorithm::Sha384 => Ok("SHA-384"),
            HashAlgorithm::Sha512 => Ok("SHA-512"),
            HashAlgorithm::Sha3_256 => Ok("SHA3-256"),
            HashAlgorithm::Sha3_512 => Ok("SHA3-512"),
            HashAlgorithm::Sha1 => Err("SHA-1".into()),
            HashAlgorithm::Md5 => Err("MD5".into()),
            HashAlgorithm::Ripemd160 => Err("RIPEMD-160".into()),
            HashAlgorithm::Sha224 => Err("SHA-224".into()),
            other => Err(format!("{other}")),
        }
    }

    /// Which key in `keys` issued `sig`: (key index, subkey index or `None` for the primary).
    fn find_issuer(keys: &[SignedPublicKey], sig: &Signature) -> Option<(usize, Option<usize>)> {
        let fprs = sig.issuer_fingerprint();
        let ids = sig.issuer_key_id();
        let matches = |k: &dyn KeyDetails| {
            let (f, id) = (k.fingerprint(), k.legacy_key_id());
            if fprs.is_empty() {
                ids.iter().any(|i| **i == id)
            } else {
                fprs.iter().any(|x| **x == f)
            }
        };
        keys.iter().enumerate().find_map(|(i, k)| {
            if matches(&k.primary_key) {
                return Some((i, None));
            }
            k.public_subkeys
                .iter()
                .position(|s| matches(&s.key))
                .map(|j| (i, Some(j)))
        })
    }

    /// The issuer of a signature whose key is not at hand, as well as the signature tells.
    fn issuer_of(sig: &Signature) -> KeyIdentity {
        let fingerprint = match (
            sig.issuer_fingerprint().first(),
            sig.issuer_key_id().first(),
        ) {
            (Some(f), _) => hex(f.as_bytes()),
            (None, Some(id)) => format!("with key id {}", hex(id.as_ref())),
            (None, None) => "(the signature names no issuer)".into(),
        };
        KeyIdentity {
            fingerprint,
            user_id: None,
        }
    }

    fn expiry_error(
        sig_path: &Path,
        who: &KeyIdentity,
        what: &str,
        expires: u64,
        signed: u64,
    ) -> SignatureError {
        let when = super::utc_date(expires.min(u64::from(u32::MAX)) as u32);
        let message = if signed >= expires {
            format!("the signature was made after the {what} expired ({when})")
        } else {
            format!("the {what} expired on {when}; its owner no longer vouches for it")
        };
        SignatureError::new(Failure::Expired, sig_path, message).with_key(who)
    }

    pub(super) fn verify(
        data: &[u8],
        sig_path: &Path,
        sig_bytes: &[u8],
        key_path: &Path,
        key_bytes: &[u8],
        pin: Option<&str>,
        now: SystemTime,
    ) -> Result<VerifiedSignature, SignatureError> {
        let pin = match pin {
            None => None,
            Some(p) => Some(normalize_fingerprint(p).ok_or_else(|| {
                SignatureError::new(
                    Failure::FingerprintMismatch,
                    key_path,
                    format!(
                        "--signer-fingerprint `{p}` is not a fingerprint (40 or 64 hex digits)"
                    ),
                )
            })?),
        };
        let keys = parse_keys(key_path, key_bytes)?;
        let sigs = parse_signatures(sig_path, sig_bytes)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);

        // The first signature made by a key in the file is the one checked; signatures by
        // other keys are only reported when none is by a known key.
        let Some((sig, ki, sub)) = sigs
            .iter()
            .find_map(|s| find_issuer(&keys, s).map(|(k, sub)| (s, k, sub)))
        else {
            let issuer = issuer_of(&sigs[0]);
            let known: Vec<String> = keys.iter().map(|k| identity(k).to_string()).collect();
            return Err(SignatureError::new(
                Failure::OtherKey,
                sig_path,
                format!(
                    "signed by another key ({}) than the one in {} ({})",
                    issuer.fingerprint,
                    key_path.display(),
                    known.join("; ")
                ),
            )
            .with_key(&issuer));
        };
        let key = &keys[ki];
        let who = identity(key);
        let fail = |failure: Failure, msg: String| {
            SignatureError::new(failure, sig_path, msg).with_key(&who)
        };
        let signing_fpr = match sub {
            Some(j) => fingerprint(&key.public_subkeys[j].key),
            None => who.fingerprint.clone(),
        };
        if let Some(pin) = &pin {
            if *pin != who.fingerprint && *pin != signing_fpr {
                return Err(fail(
                    Failure::FingerprintMismatch,
                    format!(
                        "signed by key {}, not by the pinned --signer-fingerprint {pin}",
                        who.fingerprint
                    ),
                ));
            }
        }

        // Algorithms first: an unsupported one is reported by name, whatever else is wrong.
        let (params, algo) = match sub {
            Some(j) => {
                let k = &key.public_subkeys[j].key;
                (k.public_params(), k.algorithm())
            }
            None => (key.primary_key.public_params(), key.primary_key.algorithm()),
        };
        let algorithm = algorithm_name(params, algo).map_err(|name| {
            fail(
                Failure::Unsupported,
                format!(
                    "unsupported key algorithm {name}; Easel verifies RSA (2048–4096 bits) and Ed25519"
                ),
            )
        })?;
        let hash_alg = sig.hash_alg().unwrap_or(HashAlgorithm::None);
        let hash = hash_name(hash_alg).map_err(|name| {
            fail(
                Failure::Unsupported,
                format!(
                    "unsupported signature hash {name}; Easel accepts SHA-256, SHA-384, SHA-512, \
                     SHA3-256 and SHA3-512"
                ),
            )
        })?;

        // The cryptographic check over the list's exact bytes.
        let checked = match sub {
            Some(j) => sig.verify(&key.public_subkeys[j].key, data),
            None => sig.verify(&key.primary_key, data),
        };
        if let Err(e) = checked {
            // rPGP's first check compares the hash's leading bytes, with a multi-line
            // assertion text that says nothing more than "does not match".
            let detail = e.to_string();
            let detail = if detail.contains("invalid signed hash value") {
                String::new()
            } else {
                format!(
                    " ({})",
                    detail.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            };
            return Err(fail(
                Failure::BadSignature,
                format!(
                    "BAD signature: it does not match the checksum list's bytes (the list or the \
                     signature was changed after signing){detail}"
                ),
            ));
        }
        let Some(created) = sig.created().map(secs) else {
            return Err(fail(
                Failure::MalformedSignature,
                "the signature carries no creation time".into(),
            ));
        };
        if let Some(valid_for) = sig.signature_expiration_time() {
            if u64::from(valid_for.as_secs()) > 0 && created + u64::from(valid_for.as_secs()) <= now
            {
                return Err(fail(
                    Failure::Expired,
                    format!(
                        "the signature itself expired on {}",
                        super::utc_date(
                            (created + u64::from(valid_for.as_secs())).min(u64::from(u32::MAX))
                                as u32
                        )
                    ),
                ));
            }
        }

        // The key's own statements, trusted only where their signatures verify.
        let self_sigs = primary_self_signatures(key);
        let Some(newest) = self_sigs.first() else {
            return Err(fail(
                Failure::UnusableKey,
                format!(
                    "the key in {} has no user id bound by a valid self-signature",
                    key_path.display()
                ),
            ));
        };
        let revocation = key.details.revocation_signatures.iter().find(|r| {
            r.typ() == Some(SignatureType::KeyRevocation) && r.verify_key(&key.primary_key).is_ok()
        });
        if let Some(r) = revocation {
            let reason = r
                .revocation_reason_string()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .filter(|s| !s.is_empty())
                .map(|s| format!(" (reason: {s})"))
                .unwrap_or_default();
            return Err(fail(
                Failure::Revoked,
                format!("the key has been REVOKED by its owner{reason}"),
            ));
        }
        let primary_created = secs(key.primary_key.created_at());
        if let Some(valid_for) = newest.key_expiration_time() {
            if u64::from(valid_for.as_secs()) > 0 {
                let expires = primary_created + u64::from(valid_for.as_secs());
                if expires <= now || expires <= created {
                    return Err(expiry_error(sig_path, &who, "key", expires, created));
                }
            }
        }
        match sub {
            None => {
                let flags = newest.key_flags();
                // No key flags subpacket at all (old keys): the primary key may sign.
                let has_flags = newest.config().is_some_and(|c| {
                    c.hashed_subpackets()
                        .any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_)))
                });
                if has_flags && !flags.sign() {
                    return Err(fail(
                        Failure::UnusableKey,
                        "the primary key is not marked for signing (its key flags say otherwise)"
                            .into(),
                    ));
                }
                if created < primary_created {
                    return Err(fail(
                        Failure::BadSignature,
                        "the signature claims to be older than the key that made it".into(),
                    ));
                }
            }
            Some(j) => {
                let subkey = &key.public_subkeys[j];
                let revoked = subkey.signatures.iter().any(|s| {
                    s.typ() == Some(SignatureType::SubkeyRevocation)
                        && s.verify_subkey_binding(&key.primary_key, &subkey.key)
                            .is_ok()
                });
                if revoked {
                    return Err(fail(
                        Failure::Revoked,
                        format!("the signing subkey {signing_fpr} has been REVOKED by its owner"),
                    ));
                }
                let bindings = subkey_bindings(key, subkey);
                let Some(binding) = bindings.first() else {
                    return Err(fail(
                        Failure::UnusableKey,
                        format!("the signing subkey {signing_fpr} is not bound to the key by a valid signature"),
                    ));
                };
                let back_ok = binding.embedded_signature().is_some_and(|b| {
                    b.verify_primary_key_binding(&subkey.key, &key.primary_key)
                        .is_ok()
                });
                if !binding.key_flags().sign() || !back_ok {
                    return Err(fail(
                        Failure::UnusableKey,
                        format!(
                            "the subkey {signing_fpr} is not bound for signing (no signing flag or no valid back-signature)"
                        ),
                    ));
                }
                let sub_created = secs(subkey.key.created_at());
                if let Some(valid_for) = binding.key_expiration_time() {
                    if u64::from(valid_for.as_secs()) > 0 {
                        let expires = sub_created + u64::from(valid_for.as_secs());
                        if expires <= now || expires <= created {
                            return Err(expiry_error(
                                sig_path,
                                &who,
                                "signing subkey",
                                expires,
                                created,
                            ));
                        }
                    }
                }
                if created < sub_created {
                    return Err(fail(
                        Failure::BadSignature,
                        "the signature claims to be older than the subkey that made it".into(),
                    ));
                }
            }
        }

        Ok(VerifiedSignature {
            signature_file: sig_path.to_path_buf(),
            key_file: key_path.to_path_buf(),
            key_from_release: false,
            signing_subkey: sub.map(|_| signing_fpr),
            key: who,
            algorithm,
            hash: hash.to_string(),
            created: created.min(u64::from(u32::MAX)) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_fingerprints() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @1577966400`
        assert_eq!(utc_date(1_577_966_400), "2020-01-02 12:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            normalize_fingerprint("0x3d58 199d 2eb8 e9f9 b5bc  77c4 c9e4 8ce2 56cb 27de").unwrap(),
            "3D58199D2EB8E9F9B5BC77C4C9E48CE256CB27DE"
        );
        assert!(normalize_fingerprint("C9E48CE256CB27DE").is_none());
        assert!(normalize_fingerprint(&"G".repeat(40)).is_none());
    }
}
