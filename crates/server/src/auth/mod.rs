//! Who may call, in one place for every HTTP route: bearer tokens ([`Auth`], [`Caller`]) for
//! the API and the IVR lookup, Twilio's signature ([`TwilioSigner`]) for what Twilio calls, and
//! the guards built from both: [`ivr_guard`] (the lookup), [`webhook_bearer`] (a `webhook`
//! token instead of a signature) and [`TwilioGuard`] (the SMS webhooks and the voice webhook).

mod bearer;
mod twilio;

pub use bearer::{Auth, CACHE_TTL, Caller, ivr_guard, webhook_bearer};
pub use twilio::{BadSignature, BearerAuthorized, TwilioGuard, TwilioSigner, twilio_signature};
