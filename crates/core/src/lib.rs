//! The domain of outagecast: who the customers are, where an outage is, what happened to it,
//! who must be told and what a caller hears.
//!
//! Everything here is pure, synchronous Rust with no I/O: values are built through validating
//! constructors (an invalid value cannot exist), and the planning functions are plain
//! functions from values to values. Storage, transports and front ends are adapters elsewhere.

pub mod area;
pub mod auth;
pub mod contact;
pub mod customer;
pub mod error;
pub mod incident;
pub mod ivr;
pub mod message;
pub mod notice;
pub mod secret;
pub mod sms;
pub mod template;
pub mod validity;
pub mod when;

pub use error::{CoreError, Result};
