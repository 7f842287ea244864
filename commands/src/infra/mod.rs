//! Infrastructure the features share: sealing and signing secrets ([`secrets`]), the media store
//! and its signed links ([`media`]), and per-key send pacing ([`pacing`]).

pub mod media;
pub mod pacing;
pub mod secrets;
