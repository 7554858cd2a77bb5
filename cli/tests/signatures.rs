//! `easel import` and `easel hash --check` with OpenPGP signatures, through the binary: the
//! keys and signatures are GnuPG's (`tests/fixtures/signatures/`, with GnuPG's own view of
//! them in `expected.json`), the release is `tests/fixtures/tools/release/`. A failed
//! signature must exit non-zero naming the file and the key, and import nothing.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn sigs(name: &str) -> PathBuf {
    fixtures().join("signatures").join(name)
}

fn key(name: &str) -> (String, String) {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(sigs("expected.json")).unwrap()).unwrap();
    let k = &v["keys"][name];
    (
        k["fingerprint"].as_str().unwrap().to_string(),
        k["uid"].as_str().unwrap().to_string(),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A fresh copy of the release fixture in a scratch folder, with `extra` files (fixture
/// name → name in the release) laid beside its `sha256sum`.
fn release(test: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easel-cli-sig-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&fixtures().join("tools/release"), &dir.join("release"));
    for (from, to) in extra {
        std::fs::copy(sigs(from), dir.join("release").join(to)).unwrap();
    }
    dir
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn import_with_the_release_key_says_it_only_proves_self_consistency() {
    let dir = release(
        "selfkey",
        &[
            ("ed25519.sig", "sha256sum.sig"),
            ("ed25519.pub.gpg", "aboutus.gpg"),
        ],
    );
    let models = dir.join("models");
    let o = easel()
        .args(["import", "--copy", "--require-signature", "--models"])
        .arg(&models)
        .arg(dir.join("release"))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    let (fpr, uid) = key("ed25519");
    assert!(
        out.contains("signature: good signature") && out.contains(&fpr) && out.contains(&uid),
        "{out}\n{err}"
    );
    assert!(
        err.contains("self-consistent") && err.contains(&fpr),
        "{err}"
    );
    // The release fixture carries one wrong hash on purpose: the import reports it (non-zero
    // exit) but places the files that verified.
    assert!(
        models.join("hypernetworks/anime.pt").is_file(),
        "{out}\n{err}"
    );
    assert!(out.contains("MISMATCH"), "{out}");

    // Pinned to the published fingerprint, the caveat goes away.
    std::fs::remove_dir_all(&models).unwrap();
    let o = easel()
        .args(["import", "--signer-fingerprint", &fpr, "--models"])
        .arg(&models)
        .arg(dir.join("release"))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(
        out.contains("good signature") && !err.contains("self-consistent"),
        "{out}\n{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// (fixture files laid into the release as (from, to), extra flags, words the error must hold)
type BadCase<'a> = (&'a [(&'a str, &'a str)], Vec<&'a str>, Vec<&'a str>);

#[test]
fn import_fails_on_every_bad_signature_and_writes_nothing() {
    let (rsa_fpr, rsa_uid) = key("rsa");
    let (other_fpr, _) = key("other");
    let (exp_fpr, exp_uid) = key("expired");
    let rsa_key = sigs("rsa.pub.asc").display().to_string();
    let cases: [BadCase; 6] = [
        (
            &[
                ("sha256sum.tampered", "sha256sum"),
                ("rsa.sig", "sha256sum.sig"),
            ],
            vec!["--signer-key", &rsa_key],
            vec!["sha256sum.sig", "BAD signature", &rsa_fpr, &rsa_uid],
        ),
        (
            &[("other.sig", "sha256sum.sig")],
            vec!["--signer-key", &rsa_key],
            vec!["sha256sum.sig", "another key", &other_fpr, &rsa_fpr],
        ),
        (
            &[
                ("expired.sig", "sha256sum.sig"),
                ("expired.pub.asc", "aboutus.gpg"),
            ],
            vec![],
            vec!["sha256sum.sig", "expired", &exp_fpr, &exp_uid],
        ),
        (
            &[("truncated.sig", "sha256sum.asc")],
            vec!["--signer-key", &rsa_key],
            vec!["sha256sum.asc", "signature"],
        ),
        (
            &[("rsa.sig", "sha256sum.sig"), ("garbage.gpg", "aboutus.gpg")],
            vec![],
            vec!["aboutus.gpg", "public key"],
        ),
        (
            &[],
            vec!["--require-signature"],
            vec!["sha256sum", "no signature"],
        ),
    ];
    for (i, (files, flags, words)) in cases.iter().enumerate() {
        let dir = release(&format!("bad{i}"), files);
        let models = dir.join("models");
        let o = easel()
            .arg("import")
            .args(flags)
            .arg("--models")
            .arg(&models)
            .arg(dir.join("release"))
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(!o.status.success(), "case {i}: {out}\n{err}");
        for w in words {
            assert!(err.contains(w), "case {i}: `{w}` not in\n{err}");
        }
        assert!(err.contains("nothing was imported"), "case {i}: {err}");
        assert!(!models.exists(), "case {i}: the models folder was created");

        // With --allow-unsigned the same release is imported, with a loud warning.
        let o = easel()
            .arg("import")
            .args(flags.iter().filter(|f| **f != "--require-signature"))
            .arg("--allow-unsigned")
            .arg("--models")
            .arg(&models)
            .arg(dir.join("release"))
            .output()
            .unwrap();
        let (out, err) = text(&o);
        if !flags.contains(&"--require-signature") {
            assert!(
                err.contains("SIGNATURE CHECK FAILED"),
                "case {i}: {out}\n{err}"
            );
        }
        assert!(
            models.join("hypernetworks/anime.pt").is_file(),
            "case {i}: {out}\n{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn hash_check_verifies_the_signature_first() {
    let dir = release("hash", &[]);
    let list = dir.join("release/sha256sum");
    let run = |sig: &str, key: &str| {
        easel()
            .args(["hash", "--check"])
            .arg(&list)
            .arg("--signature")
            .arg(sigs(sig))
            .arg("--signer-key")
            .arg(sigs(key))
            .output()
            .unwrap()
    };
    let (fpr, uid) = key("rsa");
    let o = run("rsa.asc", "rsa.pub.gpg");
    let (out, err) = text(&o);
    assert!(
        out.contains("good signature") && out.contains(&fpr) && out.contains(&uid),
        "{out}"
    );
    assert!(out.contains("SHA-512") && out.contains("RSA 4096"), "{out}");
    assert!(out.contains("stableckpt/animevae.pt: OK"), "{out}\n{err}");

    let o = run("ed25519.sig", "rsa.pub.gpg");
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("ed25519.sig") && err.contains("another key"),
        "{err}"
    );
    assert!(
        !out.contains(": OK"),
        "no file is checked after a failed signature: {out}"
    );

    let o = run("rsa.sig", "garbage.gpg");
    let (_, err) = text(&o);
    assert!(!o.status.success() && err.contains("garbage.gpg"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
