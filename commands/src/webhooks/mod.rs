//! Outgoing webhooks: the wire protocol ([`wire`]: signatures, the SSRF guard, one attempt),
//! the fan-out of stored events to subscribed endpoints ([`fanout`], read from NATS by the
//! [`dispatcher`]), their delivery
//! ([`sender`]), and the administration calls behind the API ([`admin`]: test events,
//! redeliveries, replays).

pub mod admin;
pub mod dispatcher;
pub mod fanout;
pub mod sender;
pub mod wire;
