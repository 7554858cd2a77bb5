//! `easel hash FILE…`: every hash model sites show (legacy 8-hex, AutoV2, AutoV3, CRC32,
//! sha256), remembered in a cache so a 4 GB file is read once; `--check LIST` verifies a
//! GNU `sha256sum` list, and with `--signature` / `--signer-key` first the list's detached
//! OpenPGP signature.

use clap::Args;
use easel_core::convert::checksum::{
    verify_checksum_list, verify_signed_checksum_list, CheckStatus,
};
use easel_core::convert::signature::{SignaturePolicy, SignatureStatus};
use easel_core::model::{hash_file, hash_file_cached, HashCache};
use easel_core::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct HashArgs {
    /// Files to hash.
    pub files: Vec<PathBuf>,
    /// Verify a GNU `sha256sum` list (paths relative to the list's folder); repeatable.
    #[arg(long = "check", value_name = "LIST")]
    pub check: Vec<PathBuf>,
    /// Hash cache file (default: ~/.cache/easel/hashes.json).
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
    /// Always read the files; neither use nor update the cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    #[command(flatten)]
    pub signature: SignatureArgs,
}

/// The OpenPGP signature flags `easel hash --check` and `easel import` share.
#[derive(Args, Clone, Default)]
pub struct SignatureArgs {
    /// Detached OpenPGP signature of the checksum list (binary or armored); default:
    /// LIST.sig or LIST.asc beside the list.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// The signer's OpenPGP public key (binary or armored). Default: the release's own
    /// aboutus.gpg (or single *.gpg / *.asc), which only proves the folder is self-consistent.
    #[arg(long = "signer-key", value_name = "FILE")]
    pub signer_key: Option<PathBuf>,
    /// The fingerprint the signing key must have (hex; spaces allowed).
    #[arg(long = "signer-fingerprint", value_name = "HEX")]
    pub signer_fingerprint: Option<String>,
    /// A checksum list without a signature is an error.
    #[arg(long = "require-signature", conflicts_with = "allow_unsigned")]
    pub require_signature: bool,
    /// Go on (with a loud warning) when the signature is missing, bad or by an unknown key.
    #[arg(long = "allow-unsigned")]
    pub allow_unsigned: bool,
}

impl SignatureArgs {
    pub fn policy(&self) -> SignaturePolicy {
        SignaturePolicy {
            signature: self.signature.clone(),
            signer_key: self.signer_key.clone(),
            signer_fingerprint: self.signer_fingerprint.clone(),
            require: self.require_signature,
            allow_unsigned: self.allow_unsigned,
            now: None,
        }
    }
}

/// Prints a signature outcome: the verdict on stdout, warnings (no signature, a failure let
/// through, a key that came with the release) on stderr.
pub(crate) fn print_signature_status(status: &SignatureStatus) {
    if let SignatureStatus::Verified(v) = status {
        println!("signature: {v}");
    }
    if let Some(w) = status.warning() {
        let label = match status {
            SignatureStatus::Verified(_) => "note",
            _ => "warning",
        };
        eprintln!("{label}: {w}");
    }
}

/// A byte-count progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn byte_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// A `(done, total)` callback driving `bar`.
pub(crate) fn bar_callback(bar: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    }
}

pub fn run(a: HashArgs) -> Result<()> {
    if a.files.is_empty() && a.check.is_empty() {
        return Err(Error::Invalid(
            "nothing to do: give files to hash or --check LIST".into(),
        ));
    }
    let mut cache = match (a.no_cache, a.cache.clone().or_else(HashCache::default_path)) {
        (false, Some(p)) => Some(HashCache::load(&p)),
        _ => None,
    };
    for file in &a.files {
        let bar = byte_bar(&file.display().to_string());
        let mut cb = bar_callback(&bar);
        let h = match cache.as_mut() {
            Some(c) => hash_file_cached(file, c, &mut cb),
            None => hash_file(file, &mut cb),
        };
        bar.finish_and_clear();
        let h = h?;
        println!("{}", file.display());
        println!("  legacy  {}", h.legacy);
        println!("  AutoV2  {}", h.autov2());
        println!(
            "  AutoV3  {}",
            h.autov3.as_deref().unwrap_or("- (not a safetensors file)")
        );
        println!("  CRC32   {}", h.crc32_hex());
        println!("  sha256  {}", h.sha256);
    }
    if let Some(c) = cache.as_mut() {
        if let Err(e) = c.save() {
            eprintln!("warning: hash cache not saved: {e}");
        }
    }
    let mut failed = 0;
    let mut total = 0;
    let policy = a.signature.policy();
    let signed = policy.wants_signature() || policy.allow_unsigned;
    if signed && a.check.len() != 1 {
        return Err(Error::Invalid(
            "--signature, --signer-key, --signer-fingerprint, --require-signature and \
             --allow-unsigned apply to one checksum list: give exactly one --check LIST"
                .into(),
        ));
    }
    for list in &a.check {
        let bar = byte_bar("");
        let mut progress = |path: &str, done, all| {
            bar.set_message(path.to_string());
            bar.set_length(all);
            bar.set_position(done);
        };
        let results = if signed {
            verify_signed_checksum_list(list, &policy, &mut progress).map(|(status, results)| {
                bar.suspend(|| print_signature_status(&status));
                results
            })
        } else {
            verify_checksum_list(list, &mut progress)
        };
        bar.finish_and_clear();
        for r in results? {
            total += 1;
            let verdict = match &r.status {
                CheckStatus::Ok => "OK".to_string(),
                CheckStatus::Mismatch { actual } => format!("FAILED (sha256 is {actual})"),
                CheckStatus::Missing => "MISSING".to_string(),
                CheckStatus::Unreadable(m) => format!("UNREADABLE ({m})"),
                CheckStatus::Refused(why) => format!("REFUSED at line {} ({why})", r.line),
            };
            failed += usize::from(r.status != CheckStatus::Ok);
            println!("{}: {verdict}", r.path);
        }
    }
    if failed > 0 {
        return Err(Error::Invalid(format!(
            "{failed} of {total} checksum lines did not verify"
        )));
    }
    Ok(())
}
