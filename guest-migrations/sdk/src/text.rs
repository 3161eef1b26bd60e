//! Error text built by hand: `format!` and `to_string` link `core::fmt`
//! (several KiB of a guest's code), which a migration that never formats
//! anything itself should not pay for.

/// Appends the decimal digits of `n`.
pub(crate) fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let v = n.unsigned_abs();
    // The largest power of ten not above `v` (at least 1), then one digit per
    // power: no buffer, so no index that could panic.
    let mut scale: u64 = 1;
    while v / scale >= 10 {
        scale *= 10;
    }
    while scale > 0 {
        out.push(char::from(b'0' + (v / scale % 10) as u8));
        scale /= 10;
    }
}

/// `n` in decimal.
pub(crate) fn int(n: i64) -> String {
    let mut out = String::new();
    push_int(&mut out, n);
    out
}

/// The pieces joined.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}
