//! The outbox: notices waiting, claimed under a lease, recorded by the lease holder.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::backend::{Backend, Sql};

/// A permanently failed SMS (a failed send here, or a failed delivery receipt in `receipts.rs`):
/// tell the same accounts by email instead, where they have one, have not opted out, and are
/// not already being emailed for this event. The early-receipt trigger in `0005_receipts.sql`
/// repeats this rule in SQL, since a trigger cannot call Rust.
pub(crate) async fn fall_back_to_email<B: Backend>(
    c: &mut B::Conn,
    notice_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    B::execute(
        c,
        Sql::new(
            "INSERT INTO notices (incident_id, event_id, channel, address, language, priority,
                                  subject, body, created_at, updated_at)
             SELECT DISTINCT n.incident_id, n.event_id, 'email', c.value, n.language, n.priority,
                    n.subject, n.body, $2, $2
               FROM notices n
               JOIN notice_customers nc ON nc.notice_id = n.id
               JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
              WHERE n.id = $1 AND n.channel = 'sms'
                AND NOT EXISTS (SELECT 1 FROM opt_outs o
                                 WHERE o.channel = 'email' AND o.address = c.value)
             ON CONFLICT (incident_id, event_id, channel, address) DO NOTHING",
        )
        .arg(notice_id)
        .arg(now),
    )
    .await?;
    Ok(())
}
