//! The infotext entries A1111 writes for hypernetworks: `Hypernet` (the hypernetwork's
//! stored name, else its stem), `Hypernet hash` (legacy hash of the file) and
//! `Hypernet strength` (A1111 writes it only below 1, its slider's maximum; Easel writes it
//! whenever it is not 1, so a strength above 1 from a prompt tag or `--hypernet` also reads
//! back, and a missing entry still means 1 as A1111's parser assumes).
//!
//! A1111 had one hypernetwork at a time. With several, each entry lists the values of all
//! of them in order, separated by `, ` (the infotext writer quotes such a value).

use crate::hypernetwork::Hypernetwork;
use crate::library::hypernet_hash;
use easel_core::Result;

/// `(key, value)` infotext entries for the hypernetworks applied, in A1111's key order
/// (`Hypernet`, `Hypernet hash`, `Hypernet strength`); empty when none was applied.
/// The hash is left out for hypernetworks not read from a file.
pub fn infotext_fields(applied: &[(&Hypernetwork, f32)]) -> Result<Vec<(String, String)>> {
    if applied.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = applied.iter().map(|(h, _)| h.name.as_str()).collect();
    let mut out = vec![("Hypernet".to_string(), names.join(", "))];
    let hashes = applied
        .iter()
        .filter_map(|(h, _)| h.path.as_deref())
        .map(hypernet_hash)
        .collect::<Result<Vec<_>>>()?;
    if hashes.len() == applied.len() {
        out.push(("Hypernet hash".to_string(), hashes.join(", ")));
    }
    if applied.iter().any(|(_, s)| *s != 1.0) {
        let strengths: Vec<String> = applied.iter().map(|(_, s)| format!("{s}")).collect();
        out.push(("Hypernet strength".to_string(), strengths.join(", ")));
    }
    Ok(out)
}
