//! The transaction scripts, written once over [`Backend`](crate::backend::Backend): each
//! function is one store operation with its domain rules and its order of statements; the
//! backend only says how a statement is bound and read.

pub(crate) mod audit;
pub(crate) mod call_log;
pub(crate) mod calls;
pub(crate) mod customers;
pub(crate) mod incidents;
pub(crate) mod ivr;
pub(crate) mod network;
pub(crate) mod outage_reports;
pub(crate) mod outbox;
pub(crate) mod provenance;
pub(crate) mod receipts;
pub(crate) mod tokens;
pub(crate) mod zones;
