//! The kernel: the value types every feature shares — typed ids, the channel and its account
//! keys, message, email and phone value types, the permission catalogue and event-stream ids. Feature
//! modules (`conversation`, `contact`, …) build on these; the crate root re-exports the ones
//! every layer names.

pub mod channel;
pub mod email;
pub mod ids;
pub mod message;
pub mod permissions;
pub mod phone;
pub mod stream;
