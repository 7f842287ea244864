//! What the Meta channels (WhatsApp, Messenger, Instagram) share: the Graph API client and its
//! errors, Facebook Login, inbound media, and the Send API adapter of Messenger and Instagram.
//! Each channel's own calls are in its folder (`channels::{whatsapp, messenger, instagram}`).

pub mod errors;
pub mod graph;
pub mod login;
pub mod media;
pub mod send;

pub use errors::GraphError;
pub use graph::GraphClient;
