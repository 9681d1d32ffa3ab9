//! The IVR statements SQLite says its own way. Under its single writer, change-log ids
//! become visible in id order, so a follower's cursor is simply the last change id it read.

use sqlx::sqlite::SqliteConnection;

use crate::Result;
use crate::backend::{Arming, Backend, Sql};
use crate::sqlite::SqliteStore;

/// The last change id and the id the log was pruned up to.
pub(super) const IVR_LAST: &str = "SELECT (SELECT COALESCE(MAX(id), 0) FROM ivr_changes),
                                         (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1)";

/// The change-log entries with ids in `($1, $2]`.
pub(super) const IVR_CHANGES_IN_RANGE: &str =
    "SELECT incident_id, phone FROM ivr_changes WHERE id > $1 AND id <= $2";

/// The last change id written before `$1`.
pub(super) const IVR_PRUNE_UPTO: &str = "SELECT MAX(id) FROM ivr_changes WHERE at < $1";

/// Deletes the change log up to the id `$1`.
pub(super) const IVR_PRUNE: &[&str] = &["DELETE FROM ivr_changes WHERE id <= $1"];

/// Flags per insert statement: 5 values a row.
const FLAG_CHUNK: usize = 1_000;

pub(super) async fn arm_flags(c: &mut SqliteConnection, a: Arming<'_>) -> Result<u64> {
    let mut written = 0;
    for part in a.numbers.chunks(FLAG_CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at) VALUES ",
        );
        for (i, (phone, lang)) in part.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.push_arg(*phone)
                .push(", ")
                .push_arg(a.incident.0)
                .push(", ");
            sql.push_arg(lang.code()).push(", ");
            sql.push_arg(a.texts.get(lang).map(String::as_str))
                .push(", ");
            sql.push_arg(a.now).push(")");
        }
        sql.push(a.conflict.clause());
        written += SqliteStore::execute(c, sql).await?;
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The contract suite (`tests/contract/ivr.rs`) covers the feed on both backends; this is
    //! what only SQLite has: several pools on one file.

    use chrono::Utc;
    use outagecast_core::incident::IncidentStatus;

    use crate::fixtures::{customer, declare_with, locale};
    use crate::ops::ivr::{ivr_changes, ivr_snapshot};
    use crate::sqlite::SqliteStore;
    use crate::sqlite::test_support::seeded;
    use crate::{IvrPoll, Transition};
    use outagecast_core::customer::{Customer, CustomerId};
    use outagecast_core::incident::{EventKind, IncidentChanges};
    use outagecast_core::notice::plan_recipients;

    #[tokio::test]
    async fn a_change_made_through_another_pool_on_the_same_file_is_followed() {
        let (store, dir, loaded) = seeded(&[customer("A", "+358481111111", "")]).await;
        let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
        let now = Utc::now();
        let plan = plan_recipients(&refs, |_, _| false);
        let id = declare_with(&store.clone().into(), &loaded, &plan, now)
            .await
            .unwrap()
            .incident
            .id;
        let cursor = ivr_snapshot(&store, None, now, now).await.unwrap().cursor;

        // Another process: its own pool on the same file.
        let other = SqliteStore::open(&dir.path().join("test.db"))
            .await
            .unwrap();
        let t = Transition {
            id,
            event: EventKind::Restored,
            changes: IncidentChanges::default(),
            actor: "test",
            now,
            growth: None,
            provenance: None,
        };
        crate::ops::incidents::transition(&other, t, &locale(now))
            .await
            .unwrap();
        let IvrPoll::Changed(c) = ivr_changes(&store, cursor).await.unwrap() else {
            panic!("the other pool's change is in the log");
        };
        assert_eq!((c.touched, c.reloaded), (vec![id], vec![id]));
        assert_eq!(c.incidents[0].status, IncidentStatus::Restored);
    }
}
