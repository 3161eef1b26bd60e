//! Starts the real application against an old database and checks that it
//! comes up migrated, and that it refuses to start on an untrusted file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use wasmig_test_support::*;

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory with the earlier runner's database in it.
fn old_database() -> Scratch {
    let s = scratch();
    load_fixture(&s.db, "legacy-versioned.sql");
    s
}

/// The application, pointed at `s`'s database and migrations.
fn app(s: &Scratch) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inventory-app"));
    c.arg("--db").arg(&s.db).arg("--migrations").arg(&s.dir).args(["--listen", "127.0.0.1:0"]);
    c
}

fn get(addr: &str, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

#[test]
fn starts_against_an_old_database_and_comes_up_migrated() {
    let s = old_database();
    pack_examples(&s.dir, 4);
    let mut child =
        app(&s).env("INVENTORY_TRUSTED_KEYS", test_pub("dev")).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let app = App(child);
    let migrated = lines.next().unwrap().unwrap();
    assert!(migrated.contains("3 applied, 1 already applied"), "{migrated}");
    let listening = lines.next().unwrap().unwrap();
    let addr = listening.strip_prefix("listening on ").unwrap().to_owned();
    assert_eq!(get(&addr, "/health"), "ok");
    let ids: Vec<i64> =
        get(&addr, "/migrations").as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let images = get(&addr, "/images");
    assert_eq!(images[0]["id"], "img-1");
    assert_eq!(images[0]["vm_count"], 1, "the backfill ran before the first request");
    drop(app);
}

#[test]
fn refuses_to_start_when_a_migration_is_not_trusted() {
    let s = old_database();
    let before = std::fs::read(&s.db).unwrap();
    pack_examples(&s.dir, 2);
    pack_with(&s.dir, "example-backfill", 3, "backfill", &["other"]);
    let out = app(&s).args(["--trust", test_pub("dev").to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not starting") && err.contains("0003_backfill.wasm"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    assert_eq!(std::fs::read(&s.db).unwrap(), before);
}
