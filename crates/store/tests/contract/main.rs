//! The store contract: one suite that both backends pass. Every test is an `async fn(&Store)`
//! listed in a `contract!` block, which runs it once on a fresh SQLite file and once on a
//! fresh PostgreSQL schema (on the cluster named by `OUTAGECAST_TEST_PG_URL`, which
//! `scripts/test` starts; without it the PostgreSQL half is skipped with a line saying so,
//! unless `OUTAGECAST_REQUIRE_PG=1`, which `scripts/test` sets, makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod audit;
mod call_log;
mod counters;
mod customers;
mod incidents;
mod ivr;
mod network;
mod outage_reports;
mod outbox;
mod provenance;
mod receipts;
mod tokens;
mod zones;
