//! The Instagram channel (Instagram API with Instagram Login): the OAuth code exchange, long-lived
//! tokens, the account's profile and webhook subscription ([`login`]), and the worker that keeps
//! those tokens alive ([`token_refresh`]). Sending goes through the Send API adapter it shares
//! with Messenger, [`crate::channels::meta::send::PageAdapter`].

pub mod login;
pub mod token_refresh;
