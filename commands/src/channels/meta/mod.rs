//! What the Meta channels (WhatsApp, Messenger, Instagram) share: the Graph API client and its
//! errors, Facebook Login and Page setup, Instagram Login, inbound media, and the Send API
//! adapter of Messenger and Instagram.

pub mod errors;
pub mod graph;
pub mod instagram;
pub mod login;
pub mod media;
pub mod page;

pub use errors::GraphError;
pub use graph::GraphClient;
