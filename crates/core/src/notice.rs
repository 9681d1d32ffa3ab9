//! Who is told, over which channel: turning an affected set of customers into notices.
//!
//! A notice's identity is `(incident, event, channel, address)`: one SMS per phone number and
//! one email per mailbox per event, however many affected accounts share it. That uniqueness,
//! enforced by the store, is what makes re-runs and crash recovery safe.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contact::{Channel, Language, PhoneKind};
use crate::customer::{Customer, CustomerId};
use crate::error::{CoreError, Result};

/// The store's id for one incident event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a notice is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeStatus {
    /// Waiting in the outbox.
    Pending,
    /// Waiting in the outbox and unable to go now: its channel's provider refuses this node
    /// (the circuit is open: refused credentials, an unknown account, no connection) or the
    /// channel is not configured. The reason is the notice's last error. It is stored as a
    /// pending notice with its `held` mark, so every rule for pending notices (claims,
    /// follow-ups, withdrawals) holds for it too; it goes back to pending by itself when the
    /// cause goes away.
    Held,
    /// Accepted by the provider.
    Sent,
    /// Confirmed delivered by a receipt.
    Delivered,
    /// Gave up, with the provider's reason.
    Failed,
    /// Withdrawn before it was sent, because the incident moved on (restored or cancelled):
    /// "restored" must not reach someone who never heard of the outage.
    Superseded,
}

impl NoticeStatus {
    /// Every status.
    pub const ALL: [NoticeStatus; 6] = [
        NoticeStatus::Pending,
        NoticeStatus::Held,
        NoticeStatus::Sent,
        NoticeStatus::Delivered,
        NoticeStatus::Failed,
        NoticeStatus::Superseded,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Pending => "pending",
            NoticeStatus::Held => "held",
            NoticeStatus::Sent => "sent",
            NoticeStatus::Delivered => "delivered",
            NoticeStatus::Failed => "failed",
            NoticeStatus::Superseded => "superseded",
        }
    }

    /// The inverse of [`NoticeStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        NoticeStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| CoreError::invalid("notice status", format!("{s:?} is unknown")))
    }

    /// Whether the customer has been told (the message left for their phone or inbox).
    pub fn reached(self) -> bool {
        matches!(self, NoticeStatus::Sent | NoticeStatus::Delivered)
    }

    /// Whether the notice is still to go out (pending or held).
    pub fn waiting(self) -> bool {
        matches!(self, NoticeStatus::Pending | NoticeStatus::Held)
    }
}

impl fmt::Display for NoticeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One contact to tell: a phone number or a mailbox, with the accounts that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// SMS, email or voice.
    pub channel: Channel,
    /// E.164 number or email address.
    pub address: String,
    /// The language of the first (most important) account that listed this contact.
    pub language: Language,
    /// Whether any of its accounts is a priority customer.
    pub priority: bool,
    /// Every affected account that listed this contact.
    pub customers: Vec<CustomerId>,
}

/// A phone number to arm in the IVR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedNumber {
    /// E.164.
    pub e164: String,
    /// The caller's language, from their first account.
    pub language: Language,
}

/// Who an event reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientPlan {
    /// One entry per (channel, address), priority customers' contacts first.
    pub recipients: Vec<Recipient>,
    /// Every phone number of every affected account (mobile and landline: both call in).
    pub armed: Vec<ArmedNumber>,
    /// Affected accounts with no channel left to reach them (no phone, no email, or all
    /// opted out): they only hear the IVR announcement if they call.
    pub unreachable: Vec<CustomerId>,
    /// Contacts skipped because they opted out of that channel.
    pub opted_out: usize,
}

impl RecipientPlan {
    /// How many recipients use `channel`.
    pub fn count(&self, channel: Channel) -> usize {
        self.recipients
            .iter()
            .filter(|r| r.channel == channel)
            .count()
    }
}

/// The contacts a customer is told at, each with its channel. By default every contact:
/// mobiles are texted, landlines called, emails mailed, whatever is configured now (a channel
/// that is not waits, held, until a dispatcher serves it). A customer who asked for one
/// channel is told only by it when they have a contact for it (`voice` calls every phone,
/// mobiles too; `sms` texts the mobiles; `email` mails), else by default.
fn contacts_to_tell(customer: &Customer) -> Vec<(Channel, &str)> {
    let phones = customer.phones().iter();
    let emails = customer
        .emails()
        .iter()
        .map(|e| (Channel::Email, e.as_str()));
    let asked: Vec<(Channel, &str)> = match customer.channel() {
        None => Vec::new(),
        Some(Channel::Voice) => phones.clone().map(|p| (Channel::Voice, p.e164())).collect(),
        Some(Channel::Sms) => phones
            .clone()
            .filter(|p| p.kind() == PhoneKind::Mobile)
            .map(|p| (Channel::Sms, p.e164()))
            .collect(),
        Some(Channel::Email) => emails.clone().collect(),
    };
    if !asked.is_empty() {
        return asked;
    }
    phones
        .map(|p| match p.kind() {
            PhoneKind::Mobile => (Channel::Sms, p.e164()),
            PhoneKind::Landline => (Channel::Voice, p.e164()),
        })
        .chain(emails)
        .collect()
}

/// Plans who hears about a newly declared incident.
///
/// `affected` may come in any order; priority customers are put first (then by account id), so
/// the outbox sends to them first. `is_opted_out(channel, address)` is the opt-out register.
///
/// ```
/// use outagecast_core::area::LonLat;
/// use outagecast_core::contact::{Channel, Language, PhoneNumber};
/// use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
/// use outagecast_core::notice::plan_recipients;
/// let phone = PhoneNumber::parse("+358481234567", None).unwrap();
/// let flat = |id: &str, priority| Customer::new(CustomerParts {
///     account_id: AccountId::parse(id).unwrap(),
///     location: LonLat::parse(24.94, 60.17).unwrap(),
///     address: "Kaivokatu 1".into(),
///     phones: vec![phone.clone()],
///     emails: vec![],
///     language: Language::Fi,
///     priority,
///     channel: None,
/// });
/// let (a, b) = (flat("A", false), flat("B", true));
/// // One person, two flats: one SMS, marked priority because flat B is.
/// let plan = plan_recipients(&[(CustomerId(1), &a), (CustomerId(2), &b)], |_, _| false);
/// assert_eq!(plan.count(Channel::Sms), 1);
/// assert!(plan.recipients[0].priority);
/// assert_eq!(plan.recipients[0].customers, vec![CustomerId(2), CustomerId(1)]);
/// ```
pub fn plan_recipients(
    affected: &[(CustomerId, &Customer)],
    is_opted_out: impl Fn(Channel, &str) -> bool,
) -> RecipientPlan {
    let mut ordered: Vec<&(CustomerId, &Customer)> = affected.iter().collect();
    ordered.sort_by(|(_, a), (_, b)| {
        b.priority()
            .cmp(&a.priority())
            .then_with(|| a.account_id().cmp(b.account_id()))
    });

    let mut plan = RecipientPlan::default();
    let mut by_contact: HashMap<(Channel, &str), usize> = HashMap::new();
    let mut armed_seen: HashMap<&str, ()> = HashMap::new();
    let mut opted_out_seen: HashMap<(Channel, &str), ()> = HashMap::new();

    for (id, customer) in ordered {
        let mut reachable = false;
        for (channel, address) in contacts_to_tell(customer) {
            if is_opted_out(channel, address) {
                if opted_out_seen.insert((channel, address), ()).is_none() {
                    plan.opted_out += 1;
                }
                continue;
            }
            reachable = true;
            match by_contact.get(&(channel, address)) {
                Some(&i) => {
                    let r = &mut plan.recipients[i];
                    if !r.customers.contains(id) {
                        r.customers.push(*id);
                    }
                }
                None => {
                    by_contact.insert((channel, address), plan.recipients.len());
                    plan.recipients.push(Recipient {
                        channel,
                        address: address.to_string(),
                        language: customer.language(),
                        priority: customer.priority(),
                        customers: vec![*id],
                    });
                }
            }
        }
        for phone in customer.phones() {
            if armed_seen.insert(phone.e164(), ()).is_none() {
                plan.armed.push(ArmedNumber {
                    e164: phone.e164().to_string(),
                    language: customer.language(),
                });
            }
        }
        if !reachable {
            plan.unreachable.push(*id);
        }
    }
    plan
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::area::LonLat;
    use crate::contact::{EmailAddress, PhoneNumber};
    use crate::customer::{AccountId, CustomerParts};

    fn customer(id: &str, phones: &[&str], emails: &[&str], priority: bool) -> Customer {
        customer_asking(id, phones, emails, priority, None)
    }

    fn customer_asking(
        id: &str,
        phones: &[&str],
        emails: &[&str],
        priority: bool,
        channel: Option<Channel>,
    ) -> Customer {
        Customer::new(CustomerParts {
            account_id: AccountId::parse(id).unwrap(),
            location: LonLat::parse(24.94, 60.17).unwrap(),
            address: "Kaivokatu 1".into(),
            phones: phones
                .iter()
                .map(|p| PhoneNumber::parse(p, None).unwrap())
                .collect(),
            emails: emails
                .iter()
                .map(|e| EmailAddress::parse(e).unwrap())
                .collect(),
            language: Language::En,
            priority,
            channel,
        })
    }

    #[test]
    fn landlines_are_called_not_texted_and_opt_outs_are_skipped() {
        let a = customer("A", &["+35893101641"], &[], false);
        let b = customer("B", &["+358481111111"], &["b@example.com"], false);
        let c = customer("C", &["+358482222222"], &[], false);
        let d = customer("D", &["+35852123456"], &[], false);
        let plan = plan_recipients(
            &[
                (CustomerId(1), &a),
                (CustomerId(2), &b),
                (CustomerId(3), &c),
                (CustomerId(4), &d),
            ],
            |ch, addr| {
                (ch == Channel::Sms && addr == "+358482222222")
                    || (ch == Channel::Voice && addr == "+35852123456")
            },
        );
        assert_eq!(plan.count(Channel::Sms), 1);
        assert_eq!(plan.count(Channel::Email), 1);
        assert_eq!(plan.count(Channel::Voice), 1, "the landline is called");
        assert!(
            plan.recipients
                .iter()
                .all(|r| r.channel != Channel::Sms || r.address != "+35893101641"),
            "no SMS to a landline"
        );
        assert_eq!(
            plan.armed.len(),
            4,
            "every phone is armed, landline and opted-out included"
        );
        assert_eq!(plan.unreachable, vec![CustomerId(3), CustomerId(4)]);
        assert_eq!(plan.opted_out, 2, "opt-outs are per channel");
    }

    #[test]
    fn a_landline_on_two_accounts_is_called_once_priority_first() {
        let a = customer("A", &["+35893101641"], &[], false);
        let b = customer("B", &["+35893101641"], &[], true);
        let plan = plan_recipients(&[(CustomerId(1), &a), (CustomerId(2), &b)], |_, _| false);
        assert_eq!(plan.count(Channel::Voice), 1);
        assert!(plan.recipients[0].priority);
        assert_eq!(
            plan.recipients[0].customers,
            vec![CustomerId(2), CustomerId(1)]
        );
    }

    #[test]
    fn priority_customers_come_first() {
        let a = customer("A", &["+358481111111"], &[], false);
        let z = customer("Z", &["+358482222222"], &[], true);
        let plan = plan_recipients(&[(CustomerId(1), &a), (CustomerId(2), &z)], |_, _| false);
        assert_eq!(plan.recipients[0].address, "+358482222222");
        assert!(plan.recipients[0].priority);
        assert!(!plan.recipients[1].priority);
    }

    #[test]
    fn a_customer_who_asked_for_one_channel_is_told_only_by_it_when_they_can_be() {
        let told = |c: &Customer| {
            let plan = plan_recipients(&[(CustomerId(1), c)], |_, _| false);
            plan.recipients
                .iter()
                .map(|r| (r.channel, r.address.clone()))
                .collect::<Vec<_>>()
        };
        let both = |channel| {
            customer_asking(
                "A",
                &["+358481111111", "+35852123456"],
                &["a@example.com"],
                false,
                channel,
            )
        };
        assert_eq!(told(&both(None)).len(), 3, "by default every contact");
        assert_eq!(
            told(&both(Some(Channel::Voice))),
            vec![
                (Channel::Voice, "+358481111111".to_string()),
                (Channel::Voice, "+35852123456".to_string())
            ],
            "voice calls every phone, the mobile too"
        );
        assert_eq!(
            told(&both(Some(Channel::Sms))),
            vec![(Channel::Sms, "+358481111111".to_string())]
        );
        assert_eq!(
            told(&both(Some(Channel::Email))),
            vec![(Channel::Email, "a@example.com".to_string())]
        );
        // Asked for email with no address: told as by default rather than not at all.
        let no_email = customer_asking("B", &["+358482222222"], &[], false, Some(Channel::Email));
        assert_eq!(
            told(&no_email),
            vec![(Channel::Sms, "+358482222222".to_string())]
        );
        // Asked for SMS with only a landline: it cannot be texted, so it is called.
        let landline = customer_asking("C", &["+35852123456"], &[], false, Some(Channel::Sms));
        assert_eq!(
            told(&landline),
            vec![(Channel::Voice, "+35852123456".to_string())]
        );
    }
}
