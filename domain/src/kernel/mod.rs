//! The kernel: value types every feature shares. More of the shared types (ids, phone numbers,
//! actors, permissions, stream ids) move here as features are reorganised.

pub mod channel;
