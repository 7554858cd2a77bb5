//! `easel import SRC --models DIR`: lays a release folder (`<name>/model.ckpt` +
//! `config.yaml`, a VAE `.pt`, `modules/**/*.pt` hypernetworks, a `sha256sum` list) out as
//! an A1111 `models/` tree, verifying the list's OpenPGP signature (`sha256sum.sig`) and
//! then the files against the list first.

use crate::hash::{byte_bar, print_signature_status, SignatureArgs};
use clap::Args;
use easel_core::convert::checksum::CheckStatus;
use easel_core::convert::import::{
    import_release, FileStatus, ImportOptions, ItemKind, LinkMode, VaeTargets, Verify,
};
use easel_core::{Error, Result};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct ImportArgs {
    /// The release folder.
    pub src: PathBuf,
    /// The models folder to fill (created if missing).
    #[arg(long, value_name = "DIR")]
    pub models: PathBuf,
    /// Hard-link files (symbolic link across filesystems). The default.
    #[arg(long, group = "how")]
    pub link: bool,
    /// Symbolic-link files.
    #[arg(long, group = "how")]
    pub symlink: bool,
    /// Copy files.
    #[arg(long, group = "how")]
    pub copy: bool,
    /// Print the plan (and verify), write nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Require a checksum list and verify against it (default: verify when one is present).
    #[arg(long, conflicts_with = "no_verify")]
    pub verify: bool,
    /// Do not verify even if a checksum list is present.
    #[arg(long = "no-verify")]
    pub no_verify: bool,
    /// Checksum list to use instead of SRC/sha256sum.
    #[arg(long, value_name = "FILE")]
    pub checksums: Option<PathBuf>,
    /// Checkpoints that get the release's VAE as <name>.vae.pt: comma-separated names,
    /// `all` (default) or `none`.
    #[arg(long = "vae-for", default_value = "all")]
    pub vae_for: String,
    /// The VAE file to use when the release has several (path under SRC or file name).
    #[arg(long)]
    pub vae: Option<String>,
    /// Replace existing files in the models folder.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub signature: SignatureArgs,
}

fn kind_label(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Checkpoint => "checkpoint",
        ItemKind::Config => "config",
        ItemKind::Vae => "vae",
        ItemKind::Hypernetwork => "hypernetwork",
    }
}

pub fn run(a: ImportArgs) -> Result<()> {
    let vae_for = match a.vae_for.trim() {
        "all" | "" => VaeTargets::All,
        "none" => VaeTargets::None,
        list => VaeTargets::Named(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let options = ImportOptions {
        mode: if a.copy {
            LinkMode::Copy
        } else if a.symlink {
            LinkMode::Symlink
        } else {
            LinkMode::Link
        },
        dry_run: a.dry_run,
        verify: if a.no_verify {
            Verify::Off
        } else if a.verify {
            Verify::Required
        } else {
            Verify::Auto
        },
        force: a.force,
        vae_for,
        vae: a.vae.clone(),
        checksums: a.checksums.clone(),
        signature: a.signature.policy(),
    };
    if a.no_verify && (options.signature.wants_signature() || a.signature.allow_unsigned) {
        return Err(Error::Invalid(
            "--no-verify skips the checksum list, so its signature cannot be checked: drop \
             --no-verify or the signature flags"
                .into(),
        ));
    }
    let bar = byte_bar("verify");
    let result = import_release(&a.src, &a.models, &options, &mut |path, done, total| {
        bar.set_message(format!("verify {path}"));
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = result?;
    if let Some(list) = &report.checksum_list {
        println!("checksums: {}", list.display());
    }
    print_signature_status(&report.signature);
    println!(
        "{}plan for {}:",
        if a.dry_run { "dry run: " } else { "" },
        a.models.display()
    );
    for f in &report.files {
        let status = match &f.status {
            FileStatus::Planned => "planned".to_string(),
            FileStatus::Placed(how) => (*how).to_string(),
            FileStatus::AlreadyPresent => "already present".to_string(),
            FileStatus::Conflict => "EXISTS (use --force)".to_string(),
            FileStatus::Skipped(why) => format!("SKIPPED: {why}"),
        };
        println!(
            "  {:<12} {} -> {}  [{status}]",
            kind_label(f.kind),
            f.source,
            f.dest
        );
    }
    let problems: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Ok)
        .collect();
    for c in &problems {
        let c = *c;
        let what = match &c.status {
            CheckStatus::Mismatch { actual } => format!("MISMATCH (sha256 is {actual})"),
            CheckStatus::Missing => "MISSING (listed, not present)".to_string(),
            CheckStatus::Unreadable(m) => format!("UNREADABLE ({m})"),
            CheckStatus::Refused(why) => format!("REFUSED ({why})"),
            CheckStatus::Ok => continue,
        };
        let line = if c.line > 0 {
            format!("line {}: ", c.line)
        } else {
            String::new()
        };
        println!("  check: {line}{}: {what}", c.path);
    }
    for (path, why) in &report.ignored {
        println!("  ignored: {path} ({why})");
    }
    if !report.is_clean() {
        return Err(Error::Invalid(format!(
            "import of {} finished with problems (see above); files that failed were not placed",
            a.src.display()
        )));
    }
    Ok(())
}
