//! OpenPGP signatures over a release's checksum list, against GnuPG.
//!
//! Every key and signature in `fixtures/signatures/` was made by GnuPG
//! (`make_signature_fixtures.sh`), and `expected.json` holds what GnuPG itself reports for
//! them (fingerprints, user ids, creation and expiry times, hash algorithms): the verdicts
//! and identities Easel reports are checked against those, never against Easel's own output.
//! The import cases use a copy of `fixtures/tools/release/` with a signature beside its list,
//! and check that a failed signature leaves the target folder exactly as it was.

use easel_core::convert::checksum::{verify_checksum_list, verify_signed_checksum_list};
use easel_core::convert::import::{import_release, FileStatus, ImportOptions};
use easel_core::convert::signature::{
    check_list_signature, verify_detached, Failure, SignatureError, SignaturePolicy,
    SignatureStatus, VerifiedSignature,
};
use easel_tests::fixtures_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn sigs(name: &str) -> PathBuf {
    fixtures_dir().join("signatures").join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(sigs("expected.json")).unwrap()).unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Verifies fixture signature `sig` over fixture list `list` with fixture key `key`.
fn verify(
    list: &str,
    sig: &str,
    key: &str,
    pin: Option<&str>,
    now: SystemTime,
) -> Result<VerifiedSignature, SignatureError> {
    verify_detached(
        &std::fs::read(sigs(list)).unwrap(),
        &sigs(sig),
        &std::fs::read(sigs(sig)).unwrap(),
        &sigs(key),
        &std::fs::read(sigs(key)).unwrap(),
        pin,
        now,
    )
}

/// GnuPG's hash algorithm number as Easel names it (RFC 9580 table 23).
fn hash_label(id: u64) -> &'static str {
    match id {
        8 => "SHA-256",
        9 => "SHA-384",
        10 => "SHA-512",
        other => panic!("fixture uses hash algorithm {other}"),
    }
}

#[test]
fn the_signed_list_is_the_release_list() {
    assert_eq!(
        std::fs::read(sigs("sha256sum")).unwrap(),
        std::fs::read(fixtures_dir().join("tools/release/sha256sum")).unwrap(),
        "re-run make_signature_fixtures.sh after changing the release fixture"
    );
    let (a, b) = (
        std::fs::read(sigs("sha256sum")).unwrap(),
        std::fs::read(sigs("sha256sum.tampered")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    assert_eq!(a.iter().zip(&b).filter(|(x, y)| x != y).count(), 1);
}

#[test]
fn good_signatures_report_gnupgs_key_identity() {
    let want = expected();
    let now = SystemTime::now();
    for (sig, key, name) in [
        ("rsa.sig", "rsa.pub.gpg", "rsa"),
        ("rsa.asc", "rsa.pub.asc", "rsa"),
        ("ed25519.sig", "ed25519.pub.asc", "ed25519"),
        ("ed25519.asc", "ed25519.pub.gpg", "ed25519"),
        ("other.sig", "other.pub.asc", "other"),
    ] {
        let k = &want["keys"][name];
        let s = &want["signatures"][sig];
        assert!(
            s["gpg_status"]
                .as_array()
                .unwrap()
                .contains(&Value::from("GOODSIG")),
            "{sig}: GnuPG itself must call it good"
        );
        let v = verify("sha256sum", sig, key, None, now)
            .unwrap_or_else(|e| panic!("{sig} with {key}: {e}"));
        assert_eq!(
            v.key.fingerprint,
            k["fingerprint"].as_str().unwrap(),
            "{sig}"
        );
        assert_eq!(
            v.key.fingerprint,
            s["primary_fingerprint"].as_str().unwrap()
        );
        assert_eq!(v.key.user_id.as_deref(), k["uid"].as_str(), "{sig}");
        let signing = s["signing_fingerprint"].as_str().unwrap();
        if signing == v.key.fingerprint {
            assert_eq!(v.signing_subkey, None, "{sig}");
        } else {
            assert_eq!(v.signing_subkey.as_deref(), Some(signing), "{sig}");
        }
        assert_eq!(
            v.hash,
            hash_label(s["hash_algo"].as_u64().unwrap()),
            "{sig}"
        );
        let algo = match s["pubkey_algo"].as_u64().unwrap() {
            1 => format!("RSA {}", k["bits"]),
            22 => "Ed25519".to_string(),
            other => panic!("{other}"),
        };
        assert_eq!(v.algorithm, algo, "{sig}");
        assert_eq!(
            u64::from(v.created),
            s["created"].as_u64().unwrap(),
            "{sig}"
        );
        assert!(!v.key_from_release);
        let shown = v.to_string();
        assert!(
            shown.contains(sig) && shown.contains(&v.key.fingerprint),
            "{shown}"
        );
    }
    // Both RSA sizes GnuPG made and both hashes are covered.
    assert_eq!(want["keys"]["rsa"]["bits"], 4096);
    assert_eq!(want["keys"]["other"]["bits"], 2048);
}

#[test]
fn pinned_fingerprints() {
    let want = expected();
    let now = SystemTime::now();
    let rsa = want["keys"]["rsa"]["fingerprint"].as_str().unwrap();
    // As GnuPG prints it: groups of four, lower case is accepted too.
    let spaced: String = rsa
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    verify("sha256sum", "rsa.sig", "rsa.pub.asc", Some(&spaced), now).unwrap();
    // A subkey signature matches the primary fingerprint or the subkey's own.
    let ed = &want["keys"]["ed25519"];
    for pin in [
        ed["fingerprint"].as_str().unwrap(),
        ed["subkeys"][0]["fingerprint"].as_str().unwrap(),
    ] {
        verify(
            "sha256sum",
            "ed25519.sig",
            "ed25519.pub.asc",
            Some(pin),
            now,
        )
        .unwrap();
    }
    let other = want["keys"]["other"]["fingerprint"].as_str().unwrap();
    let e = verify("sha256sum", "rsa.sig", "rsa.pub.asc", Some(other), now).unwrap_err();
    assert_eq!(e.failure, Failure::FingerprintMismatch, "{e}");
    assert!(
        e.to_string().contains(other) && e.to_string().contains(rsa),
        "{e}"
    );
    let e = verify("sha256sum", "rsa.sig", "rsa.pub.asc", Some("C9E48CE2"), now).unwrap_err();
    assert_eq!(e.failure, Failure::FingerprintMismatch, "{e}");
}

/// (list, signature, key, expected failure, file named, key reported, words in the message)
type FailureCase = (
    &'static str,
    &'static str,
    &'static str,
    Failure,
    &'static str,
    Option<&'static str>,
    &'static str,
);

#[test]
fn every_failure_is_named_with_file_and_key() {
    let want = expected();
    let now = SystemTime::now();
    let fpr = |name: &str| {
        want["keys"][name]["fingerprint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let uid = |name: &str| want["keys"][name]["uid"].as_str().unwrap().to_string();
    let cases: [FailureCase; 13] = [
        (
            "sha256sum.tampered",
            "rsa.sig",
            "rsa.pub.asc",
            Failure::BadSignature,
            "rsa.sig",
            Some("rsa"),
            "BAD signature",
        ),
        (
            "sha256sum.tampered",
            "ed25519.asc",
            "ed25519.pub.gpg",
            Failure::BadSignature,
            "ed25519.asc",
            Some("ed25519"),
            "BAD signature",
        ),
        (
            "sha256sum",
            "other.sig",
            "rsa.pub.asc",
            Failure::OtherKey,
            "other.sig",
            None,
            "another key",
        ),
        (
            "sha256sum",
            "expired.sig",
            "expired.pub.asc",
            Failure::Expired,
            "expired.sig",
            Some("expired"),
            "expired on 2020-01-02 12:00:00 UTC",
        ),
        (
            "sha256sum",
            "revoked.sig",
            "revoked.pub.asc",
            Failure::Revoked,
            "revoked.sig",
            Some("revoked"),
            "REVOKED",
        ),
        (
            "sha256sum",
            "dsa.sig",
            "dsa.pub.asc",
            Failure::Unsupported,
            "dsa.sig",
            Some("dsa"),
            "unsupported key algorithm DSA",
        ),
        (
            "sha256sum",
            "rsa1024.sig",
            "rsa1024.pub.gpg",
            Failure::Unsupported,
            "rsa1024.sig",
            Some("rsa1024"),
            "RSA 1024",
        ),
        (
            "sha256sum",
            "rsa-sha1.sig",
            "rsa.pub.asc",
            Failure::Unsupported,
            "rsa-sha1.sig",
            Some("rsa"),
            "unsupported signature hash SHA-1",
        ),
        (
            "sha256sum",
            "truncated.sig",
            "rsa.pub.asc",
            Failure::MalformedSignature,
            "truncated.sig",
            None,
            "signature",
        ),
        (
            "sha256sum",
            "rsa.pub.asc",
            "rsa.pub.asc",
            Failure::MalformedSignature,
            "rsa.pub.asc",
            None,
            "signature",
        ),
        (
            "sha256sum",
            "rsa.sig",
            "garbage.gpg",
            Failure::MalformedKey,
            "garbage.gpg",
            None,
            "public key",
        ),
        (
            "sha256sum",
            "rsa.sig",
            "truncated.pub.asc",
            Failure::MalformedKey,
            "truncated.pub.asc",
            None,
            "public key",
        ),
        (
            "sha256sum",
            "rsa.sig",
            "rsa.sig",
            Failure::MalformedKey,
            "rsa.sig",
            None,
            "public key",
        ),
    ];
    for (list, sig, key, failure, file, who, words) in cases {
        let e = verify(list, sig, key, None, now)
            .map(|v| panic!("{sig} with {key} over {list} verified: {v}"))
            .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.failure, failure, "{sig}/{key}: {text}");
        assert_eq!(e.file, sigs(file), "{sig}/{key}: {text}");
        assert!(
            text.contains(file) && text.contains(words),
            "{sig}/{key}: {text}"
        );
        if let Some(name) = who {
            let k = e.key.as_ref().unwrap_or_else(|| panic!("{text}"));
            assert_eq!(k.fingerprint, fpr(name), "{text}");
            assert_eq!(k.user_id.as_deref(), Some(uid(name).as_str()), "{text}");
            assert!(
                text.contains(&fpr(name)) && text.contains(&uid(name)),
                "{text}"
            );
        }
    }
    // Another key's signature reports that key's fingerprint (from the signature) and the
    // expected key's identity.
    let e = verify("sha256sum", "other.sig", "rsa.pub.asc", None, now).unwrap_err();
    assert_eq!(e.key.unwrap().fingerprint, fpr("other"));
    assert!(e.message.contains(&fpr("rsa")) && e.message.contains(&uid("rsa")));
}

#[test]
fn expiry_is_judged_by_time() {
    let want = expected();
    let k = &want["keys"]["expired"];
    let expires = k["expires"].as_u64().unwrap();
    assert_eq!(
        want["signatures"]["expired.sig"]["gpg_status"][0],
        "EXPKEYSIG"
    );
    // While the key was valid, its signature is good; from its expiry on, refused.
    let v = verify(
        "sha256sum",
        "expired.sig",
        "expired.pub.gpg",
        None,
        at(expires - 1),
    )
    .unwrap();
    assert_eq!(v.key.fingerprint, k["fingerprint"].as_str().unwrap());
    let e = verify(
        "sha256sum",
        "expired.sig",
        "expired.pub.gpg",
        None,
        at(expires),
    )
    .unwrap_err();
    assert_eq!(e.failure, Failure::Expired);
    // The same verdicts hold for a signature that does not match, whatever the date.
    let e = verify(
        "sha256sum.tampered",
        "expired.sig",
        "expired.pub.gpg",
        None,
        at(expires - 1),
    );
    assert_eq!(e.unwrap_err().failure, Failure::BadSignature);
}

/// A scratch folder for one test, emptied first.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easel-sig-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

/// Every file below `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn list_signature_policy() {
    let dir = scratch("policy");
    let list = dir.join("sha256sum");
    std::fs::copy(sigs("sha256sum"), &list).unwrap();
    let bytes = std::fs::read(&list).unwrap();
    let fpr = expected()["keys"]["rsa"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let check = |policy: &SignaturePolicy| check_list_signature(&list, &bytes, policy);

    // No signature: a warning by default, an error when one is asked for.
    let status = check(&SignaturePolicy::default()).unwrap();
    assert!(matches!(status, SignatureStatus::Absent { .. }));
    assert!(status.warning().unwrap().contains("sha256sum.sig"));
    let require = SignaturePolicy {
        require: true,
        ..Default::default()
    };
    assert_eq!(check(&require).unwrap_err().failure, Failure::Missing);

    // A signature but no key anywhere.
    std::fs::copy(sigs("rsa.sig"), dir.join("sha256sum.sig")).unwrap();
    let e = check(&SignaturePolicy::default()).unwrap_err();
    assert_eq!(e.failure, Failure::NoKey);
    assert!(e.to_string().contains("--signer-key"), "{e}");

    // The release's own key: good, but only self-consistent, and it says so.
    std::fs::copy(sigs("rsa.pub.asc"), dir.join("aboutus.gpg")).unwrap();
    let SignatureStatus::Verified(v) = check(&SignaturePolicy::default()).unwrap() else {
        panic!("expected a good signature");
    };
    assert!(v.key_from_release);
    assert_eq!(v.key_file, dir.join("aboutus.gpg"));
    let note = v.self_consistency_note().unwrap();
    assert!(
        note.contains("self-consistent") && note.contains(&fpr),
        "{note}"
    );
    // Pinned, the release key is as good as a given one.
    let pinned = SignaturePolicy {
        signer_fingerprint: Some(fpr.clone()),
        ..Default::default()
    };
    let SignatureStatus::Verified(v) = check(&pinned).unwrap() else {
        panic!()
    };
    assert!(!v.key_from_release && v.self_consistency_note().is_none());

    // Without aboutus.gpg, a single other key file is used; two are ambiguous.
    std::fs::remove_file(dir.join("aboutus.gpg")).unwrap();
    std::fs::copy(sigs("rsa.pub.gpg"), dir.join("publisher.gpg")).unwrap();
    assert!(matches!(
        check(&SignaturePolicy::default()).unwrap(),
        SignatureStatus::Verified(_)
    ));
    std::fs::copy(sigs("other.pub.asc"), dir.join("other.asc")).unwrap();
    let e = check(&SignaturePolicy::default()).unwrap_err();
    assert_eq!(e.failure, Failure::NoKey);
    assert!(e.to_string().contains("other.asc") && e.to_string().contains("publisher.gpg"));

    // A given key wins over the release's, and --allow-unsigned turns a failure into a status.
    let given_other = SignaturePolicy {
        signer_key: Some(sigs("other.pub.asc")),
        ..Default::default()
    };
    assert_eq!(check(&given_other).unwrap_err().failure, Failure::OtherKey);
    let allowed = SignaturePolicy {
        allow_unsigned: true,
        ..given_other
    };
    let status = check(&allowed).unwrap();
    assert!(
        matches!(&status, SignatureStatus::FailedButAllowed(e) if e.failure == Failure::OtherKey)
    );
    assert!(status.warning().unwrap().contains("FAILED"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hash_check_with_a_bad_signature_hashes_nothing() {
    let dir = scratch("hashcheck");
    let release = dir.join("release");
    copy_tree(&fixtures_dir().join("tools/release"), &release);
    let list = release.join("sha256sum");
    std::fs::copy(sigs("ed25519.asc"), release.join("sha256sum.asc")).unwrap();
    let policy = SignaturePolicy {
        signer_key: Some(sigs("ed25519.pub.asc")),
        ..Default::default()
    };
    let (status, results) = verify_signed_checksum_list(&list, &policy, &mut |_, _, _| {}).unwrap();
    assert!(matches!(status, SignatureStatus::Verified(_)));
    assert_eq!(
        results,
        verify_checksum_list(&list, &mut |_, _, _| {}).unwrap()
    );

    std::fs::copy(sigs("sha256sum.tampered"), &list).unwrap();
    let mut hashed = 0;
    let err = verify_signed_checksum_list(&list, &policy, &mut |_, _, _| hashed += 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sha256sum.asc") && err.contains("BAD signature"),
        "{err}"
    );
    assert_eq!(
        hashed, 0,
        "no file is read once the list is known to be forged"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_checks_the_signature_and_fails_without_touching_the_target() {
    let want = expected();
    let dir = scratch("import");
    let pristine = dir.join("pristine");
    copy_tree(&fixtures_dir().join("tools/release"), &pristine);

    // Good: a given key, then the release's own key.
    for (sig_name, sig, key_in_release, given) in [
        ("sha256sum.sig", "rsa.sig", None, Some("rsa.pub.gpg")),
        (
            "sha256sum.asc",
            "ed25519.asc",
            Some("ed25519.pub.asc"),
            None,
        ),
    ] {
        let src = dir.join("good");
        let _ = std::fs::remove_dir_all(&src);
        copy_tree(&pristine, &src);
        std::fs::copy(sigs(sig), src.join(sig_name)).unwrap();
        if let Some(k) = key_in_release {
            std::fs::copy(sigs(k), src.join("aboutus.gpg")).unwrap();
        }
        let models = dir.join("models-good");
        let _ = std::fs::remove_dir_all(&models);
        let opts = ImportOptions {
            signature: SignaturePolicy {
                signer_key: given.map(sigs),
                require: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let report = import_release(&src, &models, &opts, &mut |_, _, _| {}).unwrap();
        let SignatureStatus::Verified(v) = &report.signature else {
            panic!("{sig}: {:?}", report.signature)
        };
        let name = if sig.starts_with("rsa") {
            "rsa"
        } else {
            "ed25519"
        };
        assert_eq!(
            v.key.fingerprint,
            want["keys"][name]["fingerprint"].as_str().unwrap()
        );
        assert_eq!(v.key_from_release, key_in_release.is_some());
        // The same files are placed as in an unsigned import (checkpoint_tools.rs), and the
        // signature and key are not reported as stray files.
        let placed: Vec<&str> = report
            .files
            .iter()
            .filter(|f| matches!(f.status, FileStatus::Placed(_)))
            .map(|f| f.dest.as_str())
            .collect();
        let mut expected_placed: Vec<&str> = Vec::new();
        let release_expected: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures_dir().join("tools/release-expected.json")).unwrap(),
        )
        .unwrap();
        for dest in release_expected["placed"].as_object().unwrap().keys() {
            expected_placed.push(dest);
        }
        let mut placed_sorted = placed.clone();
        placed_sorted.sort();
        assert_eq!(placed_sorted, expected_placed);
        assert!(report
            .ignored
            .iter()
            .all(|(p, _)| !p.starts_with("sha256sum.") && p != "aboutus.gpg"));
    }

    // Failures: each leaves a models folder that already holds a file exactly as it was,
    // and a missing one missing.
    let rsa_key = Some(sigs("rsa.pub.asc"));
    let cases: Vec<(&str, &str, Option<&str>, SignaturePolicy, &str)> = vec![
        // (list replacement, signature, release key, policy, words)
        (
            "sha256sum.tampered",
            "rsa.sig",
            None,
            SignaturePolicy {
                signer_key: rsa_key.clone(),
                ..Default::default()
            },
            "BAD signature",
        ),
        (
            "",
            "other.sig",
            None,
            SignaturePolicy {
                signer_key: rsa_key.clone(),
                ..Default::default()
            },
            "another key",
        ),
        (
            "",
            "expired.sig",
            Some("expired.pub.asc"),
            SignaturePolicy::default(),
            "expired",
        ),
        (
            "",
            "revoked.sig",
            Some("revoked.pub.gpg"),
            SignaturePolicy::default(),
            "REVOKED",
        ),
        (
            "",
            "dsa.sig",
            Some("dsa.pub.asc"),
            SignaturePolicy::default(),
            "DSA",
        ),
        (
            "",
            "truncated.sig",
            None,
            SignaturePolicy {
                signer_key: rsa_key.clone(),
                ..Default::default()
            },
            "OpenPGP signature",
        ),
        (
            "",
            "rsa.sig",
            Some("garbage.gpg"),
            SignaturePolicy::default(),
            "aboutus.gpg",
        ),
        (
            "",
            "",
            None,
            SignaturePolicy {
                require: true,
                ..Default::default()
            },
            "no signature",
        ),
        (
            "",
            "rsa.sig",
            None,
            SignaturePolicy {
                signer_key: rsa_key.clone(),
                signer_fingerprint: Some(
                    want["keys"]["other"]["fingerprint"]
                        .as_str()
                        .unwrap()
                        .into(),
                ),
                ..Default::default()
            },
            "pinned",
        ),
    ];
    for (list, sig, release_key, policy, words) in cases {
        let src = dir.join("bad");
        let _ = std::fs::remove_dir_all(&src);
        copy_tree(&pristine, &src);
        if !list.is_empty() {
            std::fs::copy(sigs(list), src.join("sha256sum")).unwrap();
        }
        if !sig.is_empty() {
            std::fs::copy(sigs(sig), src.join("sha256sum.sig")).unwrap();
        }
        if let Some(k) = release_key {
            std::fs::copy(sigs(k), src.join("aboutus.gpg")).unwrap();
        }
        let existing = dir.join("models-existing");
        let _ = std::fs::remove_dir_all(&existing);
        std::fs::create_dir_all(existing.join("Stable-diffusion")).unwrap();
        std::fs::write(existing.join("Stable-diffusion/mine.ckpt"), b"keep me").unwrap();
        let before = snapshot(&existing);
        let absent = dir.join("models-absent");
        for (models, force) in [(&existing, true), (&absent, false)] {
            let opts = ImportOptions {
                signature: policy.clone(),
                force,
                ..Default::default()
            };
            let err = import_release(&src, models, &opts, &mut |_, _, _| {})
                .map(|r| panic!("{sig}/{list}: imported: {:?}", r.signature))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(words) && err.contains("nothing was imported"),
                "{sig}: {err}"
            );
        }
        assert_eq!(snapshot(&existing), before, "{sig}: target folder touched");
        assert!(!absent.exists(), "{sig}: target folder created");

        // --allow-unsigned imports anyway, and says the check failed.
        let models = dir.join("models-allowed");
        let _ = std::fs::remove_dir_all(&models);
        let opts = ImportOptions {
            signature: SignaturePolicy {
                allow_unsigned: true,
                ..policy
            },
            ..Default::default()
        };
        let report = import_release(&src, &models, &opts, &mut |_, _, _| {}).unwrap();
        assert!(
            matches!(report.signature, SignatureStatus::FailedButAllowed(_)),
            "{sig}: {:?}",
            report.signature
        );
        assert!(models.join("hypernetworks/anime.pt").is_file());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
