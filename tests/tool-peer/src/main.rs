//! `wasmig-tool-peer diesel|sqlx|refinery DIR DB`: applies DIR to the SQLite
//! file DB with the real tool, as an application using it would, leaving
//! the tool's own ledger behind.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tool, dir, db] = args.as_slice() else {
        eprintln!("usage: wasmig-tool-peer diesel|sqlx|refinery DIR DB");
        std::process::exit(2);
    };
    let result = match tool.as_str() {
        "diesel" => diesel_run(dir, db),
        "sqlx" => sqlx_run(dir, db),
        "refinery" => refinery_run(dir, db),
        other => Err(format!("unknown tool {other}")),
    };
    if let Err(e) = result {
        eprintln!("{tool}: {e}");
        std::process::exit(1);
    }
}

fn diesel_run(dir: &str, db: &str) -> Result<(), String> {
    use diesel::Connection;
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};
    let mut conn = diesel::SqliteConnection::establish(db).map_err(|e| e.to_string())?;
    let source = FileBasedMigrations::from_path(dir).map_err(|e| e.to_string())?;
    conn.run_pending_migrations(source).map(drop).map_err(|e| e.to_string())
}

fn sqlx_run(dir: &str, db: &str) -> Result<(), String> {
    use sqlx::ConnectOptions;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db).create_if_missing(true);
        let mut conn = opts.connect().await.map_err(|e| e.to_string())?;
        let migrator =
            sqlx::migrate::Migrator::new(std::path::Path::new(dir)).await.map_err(|e| e.to_string())?;
        migrator.run(&mut conn).await.map_err(|e| e.to_string())
    })
}

fn refinery_run(dir: &str, db: &str) -> Result<(), String> {
    // refinery's config opens the file without creating it; an empty file
    // is an empty SQLite database.
    if !std::path::Path::new(db).exists() {
        std::fs::File::create(db).map_err(|e| e.to_string())?;
    }
    let mut conn = refinery::config::Config::new(refinery::config::ConfigDbType::Sqlite).set_db_path(db);
    let migrations = refinery::load_sql_migrations(dir).map_err(|e| e.to_string())?;
    refinery::Runner::new(&migrations).run(&mut conn).map(drop).map_err(|e| e.to_string())
}
