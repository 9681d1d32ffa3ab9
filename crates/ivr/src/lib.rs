//! The IVR: what the phone system tells a caller before the menu.
//!
//! Pure, synchronous Rust with no I/O, like the core. The adapters in `outagecast-server`
//! feed it from the store and put it on the wire.
//!
//! - [`CallerIndex`]: E.164 caller number → the incidents armed for it, in memory, looked up
//!   in well under a microsecond while the store's changes are applied beside the lookups.
//! - [`CallerKey`]: a caller number as the index keys it, read from whatever a phone system
//!   sends.
//! - [`agi`]: the Asterisk FastAGI protocol over byte lines (environment block, commands,
//!   replies), as a reader and formatter without sockets.
//! - [`twiml`]: the Twilio voice webhook's answer.

pub mod agi;
mod error;
mod index;
mod key;
mod table;
pub mod twiml;

pub use error::IvrError;
pub use index::{
    Announced, Announcements, CallerIndex, Changes, FlagInput, IncidentInfo, IndexSettings, Lookup,
};
pub use key::CallerKey;

/// Result alias for the IVR crate.
pub type Result<T, E = IvrError> = std::result::Result<T, E>;
