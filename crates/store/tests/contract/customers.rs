//! Customers: import, read back, opt-outs, pages, the generation counter, deletion.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
use outagecast_core::incident::IncidentId;
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_store::{ImportSummary, IvrPoll, Outcome, Store};

use crate::contract;
use crate::support::{customer, declare_with, seed};

contract!(
    import_then_read_back,
    reimport_updates_instead_of_duplicating_and_keeps_opt_outs,
    deleting_a_customer_withdraws_their_unsent_notices_and_disarms_their_numbers,
    a_deleted_number_outside_every_area_is_disarmed_and_a_notice_on_the_wire_finishes,
    a_new_customer_reusing_a_deleted_row_id_inherits_nothing,
    customers_page_by_account_id_and_the_generation_follows_imports,
    a_large_import_with_repeats_keeps_each_accounts_last_row,
);

/// More customers than one statement writes, with accounts repeated inside the import and
/// across statements: each account ends as its last row, ids follow first appearance, and
/// the counts say inserted once then updated per repeat.
async fn a_large_import_with_repeats_keeps_each_accounts_last_row(store: &Store) {
    const N: usize = 1_500;
    let mut rows: Vec<Customer> = (0..N)
        .map(|i| {
            customer(
                &format!("L{i:05}"),
                &format!("+35848{:07}", 2_000_000 + i),
                "",
            )
        })
        .collect();
    // L00000 again far down the file (another statement), with a new number and an email;
    // L00001 again right after itself.
    rows.push(customer("L00000", "+358487777777", "l0@example.com"));
    rows.insert(2, customer("L00001", "+358486666666", ""));
    let summary = store
        .upsert_customers(&rows, "test", "big.csv", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            inserted: N,
            updated: 2
        }
    );
    assert_eq!(store.customer_count().await.unwrap(), N as u64);
    let (first_id, first) = store
        .customer_by_account(&AccountId::parse("L00000").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.phones()[0].e164(), "+358487777777");
    assert_eq!(first.emails()[0].as_str(), "l0@example.com");
    let (second_id, second) = store
        .customer_by_account(&AccountId::parse("L00001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.phones().len(), 1);
    assert_eq!(second.phones()[0].e164(), "+358486666666");
    assert!(first_id.0 < second_id.0, "ids follow first appearance");

    // A second import of the same file replaces everything and inserts nothing.
    let again = store
        .upsert_customers(&rows, "test", "big.csv", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        again,
        ImportSummary {
            inserted: 0,
            updated: N + 2
        }
    );
    let (_, first) = store
        .customer_by_account(&AccountId::parse("L00000").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.phones().len(), 1, "contacts replaced, not added");
}

async fn import_then_read_back(store: &Store) {
    let loaded = seed(
        store,
        &[
            customer("A", "+358481111111", "a@example.com"),
            customer("B", "+358481111112", ""),
        ],
    )
    .await;
    assert_eq!(loaded.len(), 2);
    assert_eq!(store.customer_count().await.unwrap(), 2);
    let before = store.customers_generation().await.unwrap();
    let again = store
        .upsert_customers(
            &[customer("C", "+358481111113", "")],
            "test",
            "t.csv",
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(again.inserted, 1, "{again:?}");
    assert!(store.customers_generation().await.unwrap() > before);
}

async fn reimport_updates_instead_of_duplicating_and_keeps_opt_outs(store: &Store) {
    let now = Utc::now();
    let first = vec![customer("A", "+358481111111", "a@example.com")];
    let s = store
        .upsert_customers(&first, "test", "a.csv", now)
        .await
        .unwrap();
    assert_eq!(
        s,
        ImportSummary {
            inserted: 1,
            updated: 0
        }
    );
    store
        .opt_out(Channel::Sms, "+358481111111", "test", now)
        .await
        .unwrap();

    let second = vec![customer("A", "+358482222222;+358481111111", "")];
    let later = now + chrono::Duration::seconds(1);
    let s = store
        .upsert_customers(&second, "test", "a.csv", later)
        .await
        .unwrap();
    assert_eq!(
        s,
        ImportSummary {
            inserted: 0,
            updated: 1
        }
    );
    assert_eq!(store.customer_count().await.unwrap(), 1);

    let (id, c) = store
        .customer_by_account(&account("A"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.phones().len(), 2);
    assert_eq!(c.phones()[0].e164(), "+358482222222", "in the order given");
    assert!(c.emails().is_empty());
    assert_eq!(store.customers(&[id]).await.unwrap()[0].1, c);
    assert!(
        store
            .opt_outs()
            .await
            .unwrap()
            .contains(&(Channel::Sms, "+358481111111".to_string()))
    );
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].action, "customers.import");
    assert_eq!(log[1].action, "contact.opt_out");
    assert_eq!(log[1].details, serde_json::json!({ "channel": "sms" }));
    // Opting out again changes nothing but is recorded.
    store
        .opt_out(Channel::Sms, "+358481111111", "test", now)
        .await
        .unwrap();
    assert_eq!(store.opt_outs().await.unwrap().len(), 1);
    assert_eq!(store.audit_log(10).await.unwrap().len(), 4);
}

fn account(a: &str) -> AccountId {
    AccountId::parse(a).unwrap()
}

/// Declares one incident affecting every customer in `loaded`.
async fn declared(store: &Store, loaded: &[(CustomerId, Customer)]) -> IncidentId {
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    declare_with(store, loaded, &plan, Utc::now())
        .await
        .unwrap()
        .incident
        .id
}

/// (channel, address) → status of the incident's notices.
async fn statuses(store: &Store, id: IncidentId) -> HashMap<(String, String), NoticeStatus> {
    store
        .notice_report(id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| ((r.channel.as_str().to_string(), r.address), r.status))
        .collect()
}

fn status_of(
    s: &HashMap<(String, String), NoticeStatus>,
    channel: &str,
    address: &str,
) -> NoticeStatus {
    s[&(channel.to_string(), address.to_string())]
}

async fn armed(store: &Store, phone: &str) -> usize {
    store.armed_for(phone, Utc::now()).await.unwrap().len()
}

/// Sends the email to `address` (and gives the other claimed emails back untouched).
async fn send_email(store: &Store, address: &str) {
    let claimed = store
        .claim(
            "w-email",
            &[Channel::Email],
            100,
            Duration::from_secs(60),
            Utc::now(),
        )
        .await
        .unwrap();
    let outcomes: Vec<(i64, Outcome)> = claimed
        .iter()
        .map(|n| {
            let outcome = if n.address == address {
                Outcome::Sent {
                    provider_id: "EM1".into(),
                    segments: 1,
                }
            } else {
                Outcome::Released
            };
            (n.id, outcome)
        })
        .collect();
    assert!(
        outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Sent { .. }))
    );
    store
        .complete("w-email", &outcomes, Utc::now())
        .await
        .unwrap();
}

async fn deleting_a_customer_withdraws_their_unsent_notices_and_disarms_their_numbers(
    store: &Store,
) {
    const P1: &str = "+358481111111";
    const P2: &str = "+358482222222";
    // A alone behind P1 and a@; B and C share P2; C alone behind c@.
    let loaded = seed(
        store,
        &[
            customer("A", P1, "a@example.com"),
            customer("B", P2, ""),
            customer("C", P2, "c@example.com"),
        ],
    )
    .await;
    let id = declared(store, &loaded).await;
    // A's email already went out; a later "restored" still reaches it.
    send_email(store, "a@example.com").await;
    store
        .opt_out(Channel::Sms, P1, "test", Utc::now())
        .await
        .unwrap();
    let generation = store.customers_generation().await.unwrap();
    let cursor = store
        .ivr_snapshot(Utc::now(), Utc::now())
        .await
        .unwrap()
        .cursor;
    assert_eq!((armed(store, P1).await, armed(store, P2).await), (1, 1));

    assert!(
        store
            .delete_customer(&account("A"), "cli:alice", Utc::now())
            .await
            .unwrap()
    );
    let s = statuses(store, id).await;
    assert_eq!(status_of(&s, "sms", P1), NoticeStatus::Superseded);
    assert_eq!(status_of(&s, "email", "a@example.com"), NoticeStatus::Sent);
    assert_eq!(status_of(&s, "sms", P2), NoticeStatus::Pending);
    assert_eq!((armed(store, P1).await, armed(store, P2).await), (0, 1));
    // A running server's follower is told about exactly that number.
    let IvrPoll::Changed(c) = store.ivr_changes(cursor).await.unwrap() else {
        panic!("the disarm is in the change log");
    };
    assert_eq!(c.phones, [(id, P1.to_string())]);
    assert!(c.flags[0].disarmed_at.is_some());
    assert_eq!(store.customers_generation().await.unwrap(), generation + 1);
    assert_eq!(store.customer_count().await.unwrap(), 2);
    assert!(
        store
            .customer_by_account(&account("A"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.affected_accounts(id).await.unwrap(),
        [account("B"), account("C")]
    );
    // Opt-outs are keyed by contact: they stay.
    assert!(
        store
            .opt_outs()
            .await
            .unwrap()
            .contains(&(Channel::Sms, P1.to_string()))
    );
    let entry = &store.audit_log(1).await.unwrap()[0];
    assert_eq!(entry.action, "customer.delete");
    assert_eq!(entry.actor, "cli:alice");
    assert_eq!(entry.subject.as_deref(), Some("customer:A"));
    assert_eq!(entry.details["before"]["account_id"], "A");
    assert_eq!(entry.details["before"]["phones"], 1);
    assert_eq!(entry.details["before"]["emails"], 1);
    assert_eq!(entry.details["before"]["priority"], false);
    assert_eq!(entry.details["withdrawn_notices"], 1);
    assert_eq!(entry.details["disarmed_numbers"], 1);
    assert!(
        !entry.details.to_string().contains(P1),
        "no numbers in the audit log"
    );

    // B shares P2 with C, who is still affected: nothing changes for P2.
    assert!(
        store
            .delete_customer(&account("B"), "cli:alice", Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(
        status_of(&statuses(store, id).await, "sms", P2),
        NoticeStatus::Pending
    );
    assert_eq!(armed(store, P2).await, 1);
    assert_eq!(
        store.audit_log(1).await.unwrap()[0].details["withdrawn_notices"],
        0
    );

    // E is imported after the declaration, inside the area: not in the affected set, so it
    // keeps no notice alive, but its number keeps the IVR flag armed.
    store
        .upsert_customers(&[customer("E", P2, "")], "test", "e.csv", Utc::now())
        .await
        .unwrap();
    assert!(
        store
            .delete_customer(&account("C"), "cli:alice", Utc::now())
            .await
            .unwrap()
    );
    let s = statuses(store, id).await;
    assert_eq!(status_of(&s, "sms", P2), NoticeStatus::Superseded);
    assert_eq!(
        status_of(&s, "email", "c@example.com"),
        NoticeStatus::Superseded
    );
    assert_eq!(armed(store, P2).await, 1, "E is in the area and has P2");
    assert_eq!(store.customers_generation().await.unwrap(), generation + 4);

    // Unknown: nothing written.
    let log = store.audit_log(100).await.unwrap().len();
    assert!(
        !store
            .delete_customer(&account("nobody"), "cli:alice", Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(store.audit_log(100).await.unwrap().len(), log);
    assert_eq!(store.customers_generation().await.unwrap(), generation + 4);
}

async fn a_deleted_number_outside_every_area_is_disarmed_and_a_notice_on_the_wire_finishes(
    store: &Store,
) {
    const P: &str = "+358481111111";
    let loaded = seed(store, &[customer("A", P, "")]).await;
    let id = declared(store, &loaded).await;
    // A worker has handed A's SMS to the provider right now (claimed, then handed over).
    let leased = store
        .claim(
            "w1",
            &[Channel::Sms],
            10,
            Duration::from_secs(60),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let handed = store
        .round_trip(outagecast_store::RoundTrip {
            owner: "w1",
            outcomes: &[],
            hand: &[leased[0].id],
            renew: false,
            claim: None,
            lease: Duration::from_secs(60),
            now: Utc::now(),
        })
        .await
        .unwrap()
        .handed;
    assert_eq!(handed.len(), 1);
    // Another account with the same number, far away (Tampere), not affected.
    let far = Customer::new(CustomerParts {
        account_id: account("F"),
        location: LonLat::parse(23.76, 61.50).unwrap(),
        address: "Hämeenkatu 1, Tampere".into(),
        phones: customer("x", P, "").phones().to_vec(),
        emails: vec![],
        language: Language::Fi,
        priority: false,
        channel: None,
    });
    store
        .upsert_customers(&[far], "test", "f.csv", Utc::now())
        .await
        .unwrap();
    store
        .delete_customer(&account("A"), "test", Utc::now())
        .await
        .unwrap();
    assert_eq!(armed(store, P).await, 0);
    assert_eq!(
        status_of(&statuses(store, id).await, "sms", P),
        NoticeStatus::Pending
    );
    let entry = &store.audit_log(1).await.unwrap()[0];
    assert_eq!(entry.details["withdrawn_notices"], 0);
    assert_eq!(entry.details["disarmed_numbers"], 1);
}

async fn a_new_customer_reusing_a_deleted_row_id_inherits_nothing(store: &Store) {
    let loaded = seed(
        store,
        &[
            customer("A", "+358481111111", ""),
            customer("B", "+358482222222", "b@example.com"),
        ],
    )
    .await;
    let id = declared(store, &loaded).await;
    let (b_id, _) = loaded[1];
    store
        .delete_customer(&account("B"), "test", Utc::now())
        .await
        .unwrap();
    store
        .upsert_customers(
            &[customer("N", "+358483333333", "n@example.com")],
            "test",
            "n.csv",
            Utc::now(),
        )
        .await
        .unwrap();
    let (n_id, _) = store
        .customer_by_account(&account("N"))
        .await
        .unwrap()
        .unwrap();
    // SQLite hands out the freed id again; PostgreSQL's identity never does, and then the
    // rest holds trivially.
    if store.backend() == "sqlite" {
        assert_eq!(n_id, b_id, "SQLite hands out the freed id again");
    }
    assert_eq!(store.affected_ids(id).await.unwrap(), [loaded[0].0]);
    assert!(
        store
            .notice_report(id)
            .await
            .unwrap()
            .iter()
            .all(|r| !r.accounts.contains('N')),
        "B's notices are not N's"
    );
}

async fn customers_page_by_account_id_and_the_generation_follows_imports(store: &Store) {
    assert_eq!(store.customers_generation().await.unwrap(), 0);
    // Bytewise order: upper case before lower case, "A1" before "A10" before "B1".
    let accounts = ["B2", "A1", "C3", "A10", "B1", "a0"];
    let all: Vec<Customer> = accounts
        .iter()
        .map(|a| customer(a, "+358481111111", ""))
        .collect();
    store
        .upsert_customers(&all, "test", "t.csv", Utc::now())
        .await
        .unwrap();
    assert_eq!(store.customers_generation().await.unwrap(), 1);
    store
        .upsert_customers(&all[..1], "test", "t.csv", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        store.customers_generation().await.unwrap(),
        2,
        "updates count too"
    );

    let names = |page: &[(CustomerId, Customer)]| {
        page.iter()
            .map(|(_, c)| c.account_id().as_str().to_string())
            .collect::<Vec<_>>()
    };
    let first = store.customers_page(None, 2).await.unwrap();
    assert_eq!(names(&first), ["A1", "A10"]);
    assert_eq!(first[0].1.phones().len(), 1, "with their contacts");
    let second = store.customers_page(Some("A10"), 2).await.unwrap();
    assert_eq!(names(&second), ["B1", "B2"]);
    let third = store.customers_page(Some("B2"), 2).await.unwrap();
    assert_eq!(names(&third), ["C3", "a0"]);
    assert!(
        store
            .customers_page(Some("a0"), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.customers_page(None, 0).await.unwrap().is_empty());
    assert_eq!(store.customers_page(None, u32::MAX).await.unwrap().len(), 6);
}
