//! The migrator's side of the header stamp (see `ledger::stamp` for what it
//! is and why it is safe): the no-op start-up that reads two header fields,
//! and writing the stamp after an apply found everything in order.

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::{Migrator, Report};
use crate::apply::attest::{self, SchemaState};
use crate::error::Result;
use crate::ledger::{self, stamp};

impl Migrator {
    /// The stamp this migrator's set (and required release) has under
    /// schema cookie `cookie`. The release number is part of it because
    /// the full path's rollback check compares it with the ledger: a stamp
    /// written under release R (checked then to be no older than the
    /// ledger's, which has not changed since) only matches release R.
    fn stamp_for(&self, cookie: i64) -> i32 {
        let release = self.release().map(|r| r.release);
        stamp::stamp_of(self.plugins.iter().map(|p| (p.id(), p.digest.as_str())), release, cookie)
    }

    /// True when the header stamp shows that the ledger records exactly
    /// this set, unchanged, and that the schema has not changed since that
    /// was verified: nothing to apply, and nothing the full path would
    /// report. Reads only the header.
    pub(super) fn stamp_says_unchanged(&self, conn: &Connection) -> Result<bool> {
        if self.plugins.is_empty() {
            return Ok(false);
        }
        Ok(stamp::read_header(conn)?
            .is_some_and(|(user, cookie)| user != 0 && user == self.stamp_for(cookie)))
    }

    /// The report of a no-op start-up the stamp answered.
    pub(super) fn stamped_report(&self) -> Report {
        Report {
            already_applied: self.plugins.iter().map(|p| p.id()).collect(),
            header_stamp_matched: true,
            ..Report::default()
        }
    }

    /// After an apply that succeeded: writes the stamp when the database is
    /// in stamp mode (or [`super::Options::stamp_user_version`] asks for
    /// it), the stamp is not current, and, inside one write transaction,
    /// the ledger records exactly this set without a problem and the schema
    /// is the one it attested. Otherwise leaves the header alone. Best
    /// effort: the migrations are committed whatever happens here, so a
    /// failure (a busy database, say) is only logged and the next start-up
    /// takes the full path.
    pub(super) fn restamp(&self, conn: &Connection) {
        if let Err(e) = self.try_restamp(conn) {
            tracing::warn!(error = %e, "could not write the header stamp; the next start-up reads the ledger");
        }
    }

    fn try_restamp(&self, conn: &Connection) -> Result<()> {
        if self.plugins.is_empty() || !(self.options.stamp_user_version || stamp::is_stamp_mode(conn)?) {
            return Ok(());
        }
        if let Some((user, cookie)) = stamp::read_header(conn)?
            && user == self.stamp_for(cookie)
        {
            return Ok(());
        }
        ledger::in_immediate_tx(conn, || {
            let rows = ledger::read_all(conn)?;
            let ids: BTreeSet<i64> = self.plugins.iter().map(|p| p.id()).collect();
            let exact = rows.keys().copied().eq(ids.iter().copied());
            if !exact || !self.ledger_problems(&rows).is_empty() {
                return Ok(());
            }
            if attest::check_schema(conn)?.state != SchemaState::Unchanged {
                return Ok(());
            }
            // Recording stamp mode may create the audit table, which moves
            // the cookie: read it after.
            stamp::enter_mode(conn)?;
            let cookie = ledger::schema_version(conn)?;
            stamp::set(conn, self.stamp_for(cookie))
        })
    }
}
