//! End-to-end tests: the real application over HTTP, real PostgreSQL, real NATS.

mod activity;
mod agents;
mod api_keys;
mod auth;
mod delivery_faults;
mod devstack;
mod divisions;
mod email;
mod email_media;
mod errors;
mod event_log;
mod faults;
mod fuzz;
mod inbox;
mod integrations;
mod isolation;
mod limits;
mod media;
mod messaging;
mod oauth;
mod observability;
mod relay;
mod roles;
mod webhook_receivers;
mod webhooks;
mod whatsapp;
