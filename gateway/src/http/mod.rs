//! What every endpoint shares: the one error type, the extractors (validated bodies, queries,
//! paths, pagination), authentication and typed permissions, the OpenAPI document, and who the
//! client is (its address, its connection slots).

pub mod auth;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod peer;
pub mod slots;
