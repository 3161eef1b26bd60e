//! The id each tool's version gets: a fixed rule per tool, so ids never
//! change when a directory is imported again, chosen so that ids sort as
//! the tool sorts its migrations.
//!
//! - sqlx, refinery, goose, golang-migrate order versions as numbers: the
//!   id is the version (1 or more; a version 0 cannot be a wasmig id).
//! - diesel orders versions as strings (its version is the folder name up
//!   to the first `_`, dashes removed). The id is a fixed-width normal
//!   form: the version's digits padded on the right with `0` to 16 digits,
//!   then its length as two digits. `20240101120000` becomes
//!   `2024010112000000` `14` = 202401011200000014; `20240101` becomes
//!   202401010000000008, so it runs where diesel runs it: after
//!   `20231231235959`, before `20240101000000`. A shorter version sorts
//!   before a longer one it begins, as strings do.
//! - dbmate orders files by name, and its version is the leading digits.
//!   With the usual `_` after them, a longer version sorts *before* a
//!   shorter one it begins (`10_b.sql` before `1_a.sql`: `0` < `_`), so the
//!   digits are padded with `9` instead, then 16 minus the length as two
//!   digits: `1` becomes 199999999999999915 and `10` 109999999999999914.
//!
//! Versions of more than 16 digits, or with other characters, have no id
//! under the string rules and are refused naming the file.

use super::Tool;

const WIDTH: usize = 16;

/// The id for `version` (as the tool records it) under `tool`'s rule.
pub(super) fn id_for(tool: Tool, version: &str) -> Result<i64, String> {
    match tool {
        Tool::Diesel => padded(version, b'0', |len| len),
        Tool::Dbmate => padded(version, b'9', |len| WIDTH - len),
        Tool::Sqlx | Tool::Refinery | Tool::Goose | Tool::GolangMigrate => match version.parse::<i64>() {
            Ok(v) if v >= 1 => Ok(v),
            Ok(v) => Err(format!("version {v} cannot be a wasmig id (ids start at 1)")),
            Err(_) => Err(format!("version {version:?} does not fit a wasmig id (1 to {})", i64::MAX)),
        },
    }
}

fn padded(version: &str, pad: u8, suffix: impl Fn(usize) -> usize) -> Result<i64, String> {
    if version.is_empty() || version.len() > WIDTH || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "version {version:?} must be 1 to {WIDTH} digits to get a wasmig id that sorts as the tool sorts"
        ));
    }
    let mut digits = version.as_bytes().to_vec();
    digits.resize(WIDTH, pad);
    let head: i64 = std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok()).ok_or("unreachable")?;
    // At most 9999999999999999 * 100 + 16, well inside i64.
    Ok(head * 100 + suffix(version.len()) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids sort exactly as the strings do, for every pair of a set that
    /// has prefixes, equal lengths, zeros and nines.
    #[test]
    fn string_rules_sort_as_the_tools_sort() {
        let versions = [
            "0",
            "00",
            "000",
            "1",
            "10",
            "100",
            "19",
            "199",
            "2",
            "20231231235959",
            "20240101",
            "202401010",
            "20240101000000",
            "20240101000001",
            "2024010100000",
            "9",
            "99",
            "9999999999999999",
        ];
        for a in versions {
            for b in versions {
                let (da, db) = (id_for(Tool::Diesel, a).unwrap(), id_for(Tool::Diesel, b).unwrap());
                assert_eq!(da.cmp(&db), a.cmp(b), "diesel {a} vs {b}");
                // dbmate sorts file names `<version>_<name>.sql`.
                let (fa, fb) = (format!("{a}_x.sql"), format!("{b}_x.sql"));
                let (ma, mb) = (id_for(Tool::Dbmate, a).unwrap(), id_for(Tool::Dbmate, b).unwrap());
                assert_eq!(ma.cmp(&mb), fa.cmp(&fb), "dbmate {fa} vs {fb}");
                assert!(da >= 1 && ma >= 1);
            }
        }
        assert_eq!(id_for(Tool::Diesel, "20240101120000"), Ok(202401011200000014));
        assert_eq!(id_for(Tool::Dbmate, "1"), Ok(199999999999999915));
        assert!(id_for(Tool::Diesel, "12345678901234567").is_err());
        assert!(id_for(Tool::Diesel, "v1").is_err());
    }

    #[test]
    fn numeric_rules_are_the_version() {
        assert_eq!(id_for(Tool::Sqlx, "20240101120000"), Ok(20240101120000));
        assert_eq!(id_for(Tool::GolangMigrate, "7"), Ok(7));
        assert!(id_for(Tool::Refinery, "0").unwrap_err().contains("start at 1"));
        assert!(id_for(Tool::GolangMigrate, "18446744073709551615").is_err());
    }
}
