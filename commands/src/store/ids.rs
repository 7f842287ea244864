//! Deterministic identifiers: the same facts always give the same id, so concurrent webhooks
//! for a new customer agree on one contact and one conversation without a lookup race.

use omnistream_domain::{Channel, TenantId};
use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_7374_7265_616d_0000_0000_0001);

/// The contact with `external_id` (wa_id, IGSID, PSID, email) on `channel`.
pub fn contact(tenant: TenantId, channel: Channel, external_id: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("contact:{tenant}:{channel}:{external_id}").as_bytes(),
    )
}

/// The one conversation of `contact` on integration account `account`.
pub fn conversation(tenant: TenantId, account: Uuid, contact: Uuid) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("conversation:{tenant}:{account}:{contact}").as_bytes(),
    )
}

/// The email conversation of `contact` on `account` whose thread starts at the message
/// `thread_root` (the first of its `References`, else what it replies to, else itself):
/// email has one conversation per thread, not per contact.
pub fn email_conversation(
    tenant: TenantId,
    account: Uuid,
    contact: Uuid,
    thread_root: &str,
) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("email-conversation:{tenant}:{account}:{contact}:{thread_root}").as_bytes(),
    )
}

/// The message a provider delivered with id `provider_message_id` on `account`.
pub fn inbound_message(tenant: TenantId, account: Uuid, provider_message_id: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("message:{tenant}:{account}:{provider_message_id}").as_bytes(),
    )
}
