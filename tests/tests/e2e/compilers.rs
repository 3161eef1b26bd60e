//! The same sandbox under both of wasmtime's compilers: fuel is counted
//! alike, every limit stops guest code the same way and is named the same,
//! a guest's own `Err` stays distinct from a trap, and compiled code is
//! cached per compiler. (The corpus cases of `sandbox.rs` also run under
//! both; this module holds what only makes sense side by side.)

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{Compiler, Limits, Migrator, Options, testing};
use wasmig_test_support::*;

use crate::sandbox::same_under_each_compiler;

fn expect(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in:\n{text}");
    }
}

fn under(compiler: Compiler) -> Limits {
    Limits { compiler, direct_sql: false, ..Limits::default() }
}

/// The examples in order, each as the next migration of one database;
/// returns the fuel each one burnt.
fn fuel_of_examples(limits: Limits) -> Vec<u64> {
    let mut conn = Connection::open_in_memory().unwrap();
    ["example-baseline", "example-add-index", "example-backfill", "example-rebuild"]
        .iter()
        .map(|g| testing::run_component_with(&guest_bytes(g), &mut conn, limits).unwrap().stats.fuel_used)
        .collect()
}

#[test]
fn fuel_is_counted_alike_and_the_limit_falls_at_the_same_point() {
    let [cranelift, winch] = Compiler::ALL.map(|c| fuel_of_examples(under(c)));
    assert!(cranelift.iter().all(|&f| f > 0), "every example burns fuel: {cranelift:?}");
    assert_eq!(cranelift, winch, "fuel used per example, Cranelift then Winch");
    // A guest that loops 100k times building each row's text copies bytes
    // with `memory.copy`, which Winch charges less for (see the next test):
    // it never charges more.
    let bulk = Compiler::ALL.map(|c| {
        let mut conn = Connection::open_in_memory().unwrap();
        let applied = testing::run_component_with(&guest_bytes("testing-bulk-insert"), &mut conn, under(c));
        applied.unwrap().stats.fuel_used
    });
    assert!(bulk[1] <= bulk[0] && bulk[1] > 0, "Cranelift {}, Winch {}", bulk[0], bulk[1]);

    // Exactly the fuel it needs is enough under both; half of it stops both
    // at the same limit.
    let baseline = guest_bytes("example-baseline");
    let needed = cranelift[0];
    for c in Compiler::ALL {
        let mut conn = Connection::open_in_memory().unwrap();
        let limits = Limits { fuel: needed, ..under(c) };
        let applied = testing::run_component_with(&baseline, &mut conn, limits)
            .unwrap_or_else(|e| panic!("{c}: {needed} units should be enough: {e}"));
        assert_eq!(applied.stats.fuel_used, needed, "{c}");
    }
    let half = Limits { fuel: needed / 2, ..under(Compiler::Cranelift) };
    let texts = same_under_each_compiler(half, |limits| {
        let mut conn = Connection::open_in_memory().unwrap();
        testing::assert_fails_unchanged_with(&baseline, &mut conn, limits)
    });
    for t in texts {
        expect(&t, &[&format!("fuel limit exhausted ({} units)", needed / 2)]);
    }
}

/// A component whose `up` grows its table by 200 elements, then returns `Ok`.
const TABLE_GROWER: &str = r#"(component
    (core module $m
        (memory (export "memory") 1)
        (table 1 funcref)
        (func (export "up") (result i32)
            (drop (table.grow 0 (ref.null func) (i32.const 200)))
            i32.const 16))
    (core instance $i (instantiate $m))
    (type $outcome (result (error string)))
    (func $up (result $outcome) (canon lift (core func $i "up") (memory (core memory $i "memory"))))
    (export "up" (func $up)))"#;

#[test]
fn table_growth_hits_the_table_limit_under_both() {
    let component = wat::parse_str(TABLE_GROWER).unwrap();
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    conn.execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);").unwrap();
    let tight = Limits { max_table_elements: 100, ..Limits::default() };
    let texts = same_under_each_compiler(tight, |limits| {
        testing::assert_fails_unchanged_with(&component, &mut conn, limits)
    });
    for t in texts {
        expect(&t, &["table limit exceeded (100 elements)", "growing to 201 elements"]);
    }
    // With room, the same component applies under both.
    for c in Compiler::ALL {
        let roomy = Limits { max_table_elements: 1000, ..under(c) };
        testing::run_component_with(&component, &mut conn, roomy).unwrap();
    }
}

/// A component with `n` extra core instances of an empty module besides the
/// one that exports `up`.
fn many_instances(n: usize) -> Vec<u8> {
    let extra = "(core instance (instantiate $empty))\n".repeat(n);
    wat::parse_str(format!(
        r#"(component
            (core module $empty)
            (core module $m
                (memory (export "memory") 1)
                (func (export "up") (result i32) i32.const 16))
            {extra}
            (core instance $i (instantiate $m))
            (type $outcome (result (error string)))
            (func $up (result $outcome) (canon lift (core func $i "up") (memory (core memory $i "memory"))))
            (export "up" (func $up)))"#
    ))
    .unwrap()
}

#[test]
fn too_many_instances_hit_the_instance_limit_under_both() {
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    let tight = Limits { max_instances: 4, ..Limits::default() };
    let component = many_instances(8);
    let texts = same_under_each_compiler(tight, |limits| {
        testing::assert_fails_unchanged_with(&component, &mut conn, limits)
    });
    for t in texts {
        expect(&t, &["instance limit exceeded (4 instances", "instance count too high at 5"]);
    }
    let fits = many_instances(2);
    for c in Compiler::ALL {
        testing::run_component_with(&fits, &mut conn, Limits { max_instances: 4, ..under(c) }).unwrap();
    }
}

#[test]
fn a_guest_err_stays_an_err_and_a_panic_a_trap_under_both() {
    let run = |guest: &'static str| {
        move |limits: Limits| {
            let mut conn = Connection::open_in_memory().unwrap();
            testing::assert_fails_unchanged_with(&guest_bytes(guest), &mut conn, limits)
        }
    };
    let [c, w] = Compiler::ALL.map(|compiler| run("faulty-custom-error")(under(compiler)));
    for e in [&c, &w] {
        assert!(matches!(e, wasmig::Error::GuestFailed { .. }), "{e:?}");
        expect(
            &e.to_string(),
            &["failed and was rolled back", "custom error type: custom_scratch has 2 row(s)"],
        );
    }
    assert_eq!(c.to_string(), w.to_string());
    for t in same_under_each_compiler(Limits::default(), run("faulty-panic")) {
        expect(&t, &["trapped and was rolled back", "guest panicked", "faulty_panic::explode"]);
    }
}

#[test]
fn compiled_code_is_cached_per_compiler() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_examples(&dir, 2);
    let cache = tmp.path().join("cache");
    let entries = || {
        let mut names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cwasm"))
            .collect();
        names.sort();
        names
    };
    let apply = |compiler: Compiler, db: &str| {
        let options = Options { cache_dir: Some(cache.clone()), limits: under(compiler), ..options() };
        let mut conn = Connection::open(tmp.path().join(db)).unwrap();
        let report = Migrator::from_dir_with(&dir, options).unwrap().apply(&mut conn).unwrap();
        assert_eq!(report.applied.len(), 2, "{compiler}");
        snapshot(&tmp.path().join(db))
    };
    let with_winch = apply(Compiler::Winch, "w.db");
    let winch_entries = entries();
    assert_eq!(winch_entries.len(), 2, "one entry per file: {winch_entries:?}");
    // Cranelift finds none of Winch's entries usable and writes its own.
    let with_cranelift = apply(Compiler::Cranelift, "c.db");
    let all = entries();
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(winch_entries.iter().all(|n| all.contains(n)), "Winch's entries are left as they were");
    // Both the same migrations, both the same result (the ledger's
    // timestamps and durations aside).
    let user = |mut s: wasmig::Snapshot| {
        s.rows.remove("schema_migrations");
        s
    };
    assert_eq!(user(with_winch), user(with_cranelift));
    // Winch again loads its own entries and writes nothing new.
    apply(Compiler::Winch, "w2.db");
    assert_eq!(entries(), all);
}

/// A component whose `up` runs `body` (which may call `$f` directly or
/// through table slot 0 with type `$t`) and returns `Ok`.
fn with_up_body(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (type $t (func))
                (table 1 funcref)
                (elem (i32.const 0) $f)
                (func $f (nop))
                (func (export "up") (result i32) (local $i i32) {body} i32.const 16))
            (core instance $i (instantiate $m))
            (type $outcome (result (error string)))
            (func $up (result $outcome) (canon lift (core func $i "up") (memory (core memory $i "memory"))))
            (export "up" (func $up)))"#
    ))
    .unwrap()
}

/// `body` 1000 times in a counted loop.
fn looped(body: &str) -> String {
    format!(
        "(local.set $i (i32.const 1000)) (loop $l {body} \
         (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))"
    )
}

#[test]
fn fuel_differs_only_by_the_per_byte_charge_of_bulk_operations() {
    let fuel = |body: &str| {
        let component = with_up_body(&looped(body));
        Compiler::ALL.map(|c| {
            let mut conn = Connection::open_in_memory().unwrap();
            testing::run_component_with(&component, &mut conn, under(c)).unwrap().stats.fuel_used
        })
    };
    // Control flow and calls: every operator costs the same under both.
    for body in [
        "(nop)",
        "(if (i32.and (local.get $i) (i32.const 1)) (then (nop)) (else (call $f)))",
        "(block $a (block $b (br_table $a $b (i32.and (local.get $i) (i32.const 1)))))",
        "(call_indirect (type $t) (i32.const 0))",
        "(drop (block (result i32) (br_if 0 (i32.const 7) (local.get $i)) (drop) (i32.const 9)))",
    ] {
        let [c, w] = fuel(body);
        assert_eq!(c, w, "{body}");
    }
    // memory.fill and memory.copy: Cranelift also charges one unit per byte
    // (wasmtime's default variable cost); Winch charges the flat cost only.
    let bulk = "(memory.fill (i32.const 100) (i32.const 0) (i32.const 50)) \
                (memory.copy (i32.const 200) (i32.const 100) (i32.const 50))";
    let [c, w] = fuel(bulk);
    assert_eq!(c - w, 1000 * (50 + 50), "Cranelift {c}, Winch {w}");
    // The same for table elements (`table.fill` of the one-slot table).
    let [c, w] = fuel("(table.fill 0 (i32.const 0) (ref.func $f) (i32.const 1))");
    assert_eq!(c - w, 1000, "Cranelift {c}, Winch {w}");
}
