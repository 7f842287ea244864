//! Password hashing with argon2id (default parameters), off the async runtime, a bounded number
//! at a time.
//!
//! One argon2 computation holds ~19 MiB and a core for tens of milliseconds, and login and
//! registration are unauthenticated: at most one hash per core runs at once, a bounded queue waits
//! for them, and a request that finds the queue full gets 503 `service_unavailable` at once.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::http::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::http::error::{ApiError, Result};

/// Requests that may wait for a hashing slot, per core.
const QUEUED_PER_CORE: usize = 16;

struct HashingSlots {
    running: Semaphore,
    admitted: Semaphore,
}

fn slots() -> &'static HashingSlots {
    static SLOTS: OnceLock<HashingSlots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashingSlots {
            running: Semaphore::new(cores),
            admitted: Semaphore::new(cores * (QUEUED_PER_CORE + 1)),
        }
    })
}

/// Runs `work` on the blocking pool once a hashing slot is free; 503 when too many wait.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    bounded_on(slots(), work).await
}

async fn bounded_on<T: Send + 'static>(
    slots: &HashingSlots,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    let _admitted: SemaphorePermit<'_> = slots.admitted.try_acquire().map_err(|_| busy())?;
    let _running = slots
        .running
        .acquire()
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("hashing slots closed")))?;
    let outcome = tokio::task::spawn_blocking(work)
        .await
        .map_err(anyhow::Error::from)??;
    Ok(outcome)
}

fn busy() -> ApiError {
    ApiError::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "service_unavailable",
        message: "too many sign-ins are being checked; retry in a moment".into(),
    }
}

/// Hashes `password` into a PHC string.
pub async fn hash(password: String) -> Result<String> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("hashing failed: {error}"))
    })
    .await
}

/// Whether `password` matches `stored` (a PHC string). With `None`, a dummy hash is checked so
/// that unknown emails take as long as wrong passwords.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    bounded(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&phc)
            .map_err(|error| anyhow::anyhow!("stored hash is malformed: {error}"))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"timing-equaliser", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_instead_of_hashing_without_bound() {
        let slots = HashingSlots {
            running: Semaphore::new(1),
            admitted: Semaphore::new(2),
        };
        let held = slots.admitted.try_acquire_many(2).unwrap();
        let refused = bounded_on(&slots, || Ok(())).await.unwrap_err();
        assert!(matches!(
            refused,
            ApiError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..
            }
        ));
        drop(held);
        assert!(bounded_on(&slots, || Ok(())).await.is_ok());
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(!verify("timing-equaliser".into(), None).await.unwrap());
    }
}
