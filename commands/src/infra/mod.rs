//! Infrastructure the features share: sealing and signing secrets ([`secrets`]), the media store
//! and its signed links ([`media`]), per-key send pacing ([`pacing`]), wake-ups for the stages
//! that wait for work ([`wakeup`]) and the time spent between those stages ([`stages`]).

pub mod media;
pub mod pacing;
pub mod secrets;
pub mod stages;
pub mod wakeup;
