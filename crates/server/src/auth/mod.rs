//! Who may call, in one place for every HTTP route: bearer tokens ([`Auth`], [`Caller`]) for
//! the API and the IVR lookup, Twilio's signature ([`TwilioSigner`]) for what Twilio calls, and
//! the guards built from both: [`ivr_guard`] (the lookup), [`webhook_token`] (a `webhook`
//! token, Bearer or the Basic password, instead of a signature) and [`TwilioGuard`] (the SMS webhooks and the voice webhook).

mod bearer;
mod twilio;

pub use bearer::{Auth, CACHE_TTL, Caller, Credentials, ivr_guard, webhook_token};
pub use twilio::{
    BearerAuthorized, INSECURE_WARNING, Refused, TwilioGuard, TwilioSigner, Unsigned,
    twilio_signature,
};
