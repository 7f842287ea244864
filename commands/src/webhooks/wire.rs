//! Outgoing webhooks on the wire: Standard Webhooks signatures, the SSRF guard, the retry
//! schedule, and one delivery attempt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

use crate::infra::secrets::{DecryptError, SecretBox};

/// A new `whsec_` secret: base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Whether `secret` is `whsec_` + base64 of 24 to 64 bytes.
pub fn valid_secret(secret: &str) -> bool {
    secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` for each secret, space-separated.
pub fn sign(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            Some(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the URL is not a valid absolute http(s) URL")]
    Invalid,
    #[error("plain http is not allowed; use https")]
    PlainHttp,
    #[error("the host does not resolve")]
    Unresolvable,
    #[error("the host resolves to a private, loopback, link-local or metadata address")]
    PrivateAddress,
}

/// Whether `ip` is loopback, private, link-local, CGNAT, benchmarking, metadata, multicast or
/// otherwise not a public unicast address. IPv6 addresses that carry an IPv4 address (mapped,
/// translated, compatible, NAT64 and 6to4) are judged by that IPv4 address; Teredo is refused
/// outright (its client address is obfuscated and its relays reach anywhere).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_internal_v4(v4);
            }
            let segments = v6.segments();
            let first = segments[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Local-use NAT64 with a prefix shorter than /96: the operator picks where the
                // IPv4 address sits (RFC 6052), so it cannot be judged.
                || segments[..3] == [0x64, 0xff9b, 1]
                // Teredo, 2001::/32.
                || (first == 0x2001 && segments[1] == 0)
                // Discard-only, 100::/64.
                || segments[..4] == [0x100, 0, 0, 0]
                // Documentation, 2001:db8::/32.
                || (first == 0x2001 && segments[1] == 0xdb8)
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240
}

/// The IPv4 address an IPv6 address stands for, when it carries one: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), IPv4-compatible (`::/96`), NAT64
/// (`64:ff9b::/96`, and `64:ff9b:1::/96` inside the local-use `64:ff9b:1::/48`) and 6to4
/// (`2002::/16`, the IPv4 address in bits 16..48).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // Mapped and compatible (this also maps `::` and `::1` to 0.0.0.0 and 0.0.0.1, which
        // are internal as well).
        [0, 0, 0, 0, 0, 0xffff | 0, hi, lo] => Some(v4(hi, lo)),
        // Translated (SIIT).
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        // Local-use NAT64 with a /96 prefix; other prefix lengths are refused by the caller.
        [0x64, 0xff9b, 1, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// Checks `url` and resolves it; returns the host and the addresses to connect to (pinned, so a
/// second DNS answer cannot point the request elsewhere).
pub async fn resolve_allowed(
    url: &str,
    allow_private: bool,
) -> Result<(reqwest::Url, Vec<SocketAddr>), UrlRefused> {
    let parsed = reqwest::Url::parse(url).map_err(|_| UrlRefused::Invalid)?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(UrlRefused::PlainHttp),
        _ => return Err(UrlRefused::Invalid),
    }
    let host = parsed
        .host_str()
        .ok_or(UrlRefused::Invalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().ok_or(UrlRefused::Invalid)?;
    let addresses = resolve_host_allowed(&host, port, allow_private).await?;
    Ok((parsed, addresses))
}

/// Resolves `host` (a name or an IP literal) and returns its addresses on `port`, refusing the
/// host if any of them is internal (see [`is_internal`]) unless `allow_private`. Callers must
/// connect only to the addresses returned, so a second DNS answer cannot point elsewhere.
pub async fn resolve_host_allowed(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, UrlRefused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| UrlRefused::Unresolvable)?
        .collect();
    if addresses.is_empty() {
        return Err(UrlRefused::Unresolvable);
    }
    if !allow_private && addresses.iter().any(|a| is_internal(a.ip())) {
        return Err(UrlRefused::PrivateAddress);
    }
    Ok(addresses)
}

/// Parses a retry schedule such as `5s,5m,30m,2h` (units ms, s, m, h).
pub fn parse_schedule(raw: &str) -> Option<Vec<Duration>> {
    raw.split(',')
        .map(|item| {
            let item = item.trim();
            let (number, unit) = item.split_at(item.find(|c: char| !c.is_ascii_digit())?);
            let n: u64 = number.parse().ok()?;
            Some(match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                _ => return None,
            })
        })
        .collect()
}

/// The default schedule: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub fn default_schedule() -> Vec<Duration> {
    parse_schedule("5s,5m,30m,2h,5h,10h,10h").unwrap_or_default()
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status: Option<u16>,
    /// The first 2 KB of the body.
    pub body: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
    pub retry_after: Option<Duration>,
}

impl AttemptOutcome {
    /// 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Clients kept for reuse (their connection pools), at most this many.
const CLIENT_CACHE_SIZE: usize = 256;

type ClientKey = (String, Vec<SocketAddr>);

static CLIENTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
> = std::sync::LazyLock::new(Default::default);

/// A client that connects `host` only to the vetted `addresses` (the SSRF guard's answer), with
/// a 15 s timeout and no redirects. Clients are cached per host and address set so that
/// connections are reused: building one per attempt cost a TLS setup and a new connection each
/// time, and capped deliveries at a few hundred per second.
fn pinned_client(host: String, mut addresses: Vec<SocketAddr>) -> reqwest::Result<reqwest::Client> {
    addresses.sort();
    let key = (host, addresses);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .resolve_to_addrs(&key.0, &key.1)
        .build()?;
    if clients.len() >= CLIENT_CACHE_SIZE {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// One signed POST: 15 s timeout, redirects not followed (they count as failures).
pub async fn attempt(
    url: &str,
    allow_private: bool,
    secrets: &[&str],
    event_id: &str,
    event_type: &str,
    extra_headers: &[(String, String)],
    body: &[u8],
) -> AttemptOutcome {
    let started = Instant::now();
    let failure = |error: String, started: Instant| AttemptOutcome {
        status: None,
        body: None,
        error: Some(error),
        duration: started.elapsed(),
        retry_after: None,
    };
    let (parsed, addresses) = match resolve_allowed(url, allow_private).await {
        Ok(resolved) => resolved,
        Err(refused) => return failure(refused.to_string(), started),
    };
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let client = match pinned_client(host, addresses) {
        Ok(client) => client,
        Err(error) => return failure(error.to_string(), started),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            sign(secrets, event_id, timestamp, body),
        )
        .header("x-omnistream-event", event_type)
        .body(body.to_vec());
    for (name, value) in extra_headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Only the first 2 KB is kept, and no more is read: a receiver cannot make us buffer
            // an endless body.
            let mut response = response;
            let mut bytes = Vec::new();
            while bytes.len() < 2048 {
                match response.chunk().await {
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            bytes.truncate(2048);
            let body: String = String::from_utf8_lossy(&bytes).replace('\0', "");
            let error = (!(200..300).contains(&status)).then(|| {
                if (300..400).contains(&status) {
                    format!("redirect ({status}) not followed")
                } else {
                    format!("receiver answered {status}")
                }
            });
            AttemptOutcome {
                status: Some(status),
                body: Some(body),
                error,
                duration: started.elapsed(),
                retry_after,
            }
        }
        Err(error) => failure(
            if error.is_timeout() {
                "timed out after 15 s".into()
            } else {
                error.without_url().to_string()
            },
            started,
        ),
    }
}

/// The field an endpoint's signing secret (and its previous one) is sealed for.
pub const WEBHOOK_SECRET_FIELD: &str = "outgoing_webhook.secret";

/// The field a custom header's value is sealed for.
fn header_field(name: &str) -> String {
    format!("outgoing_webhook.header.{name}")
}

/// Custom headers as stored: every value encrypted for `tenant` (they often carry credentials).
pub fn seal_headers(
    secrets: &SecretBox,
    tenant: Uuid,
    headers: &serde_json::Value,
) -> serde_json::Value {
    let sealed: serde_json::Map<String, serde_json::Value> = headers
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(name, value)| {
                    let sealed = secrets.encrypt(tenant, &header_field(name), value.as_str()?);
                    Some((name.clone(), serde_json::Value::String(sealed)))
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::Value::Object(sealed)
}

/// Stored custom headers, decrypted, for sending (values that cannot be decrypted are dropped).
pub fn open_headers(
    secrets: &SecretBox,
    tenant: Uuid,
    stored: &serde_json::Value,
) -> Vec<(String, String)> {
    stored
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(name, value)| {
                    let plain = secrets.decrypt(tenant, &header_field(name), value.as_str()?);
                    Some((name.clone(), plain.ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Stored custom headers with every value masked, for responses.
pub fn mask_headers(
    secrets: &SecretBox,
    tenant: Uuid,
    stored: &serde_json::Value,
) -> serde_json::Value {
    let masked: serde_json::Map<String, serde_json::Value> = open_headers(secrets, tenant, stored)
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                serde_json::Value::String(crate::infra::secrets::mask(&value)),
            )
        })
        .collect();
    serde_json::Value::Object(masked)
}

/// The plain secrets a delivery is signed with: the current one and, while a rotation settles,
/// the previous one (so receivers verify with either). The sender, a test delivery and a
/// replay all sign through it; a secret that cannot be opened fails the attempt rather than
/// sending it signed with anything else.
pub fn signing_secrets(
    secrets: &SecretBox,
    tenant: Uuid,
    current: &str,
    previous: Option<&str>,
) -> Result<Vec<String>, DecryptError> {
    let mut plain = vec![secrets.decrypt(tenant, WEBHOOK_SECRET_FIELD, current)?];
    if let Some(previous) = previous {
        plain.push(secrets.decrypt(tenant, WEBHOOK_SECRET_FIELD, previous)?);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_signs_with_the_new_secret_then_the_previous_one() {
        let secrets = SecretBox::new("a development key");
        let tenant = Uuid::new_v4();
        let seal = |plain: &str| secrets.encrypt(tenant, WEBHOOK_SECRET_FIELD, plain);
        let (new, old) = (seal("whsec_new"), seal("whsec_old"));
        assert_eq!(
            signing_secrets(&secrets, tenant, &new, Some(&old)).unwrap(),
            ["whsec_new", "whsec_old"]
        );
        assert_eq!(
            signing_secrets(&secrets, tenant, &new, None).unwrap(),
            ["whsec_new"]
        );
        assert!(signing_secrets(&secrets, Uuid::new_v4(), &new, None).is_err());
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The specification's own example (standard-webhooks, spec test vector).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let (a, b) = (generate_secret(), generate_secret());
        let signature = sign(&[&a, &b], "id", 1, b"{}");
        assert_eq!(signature.split(' ').count(), 2);
        assert!(valid_secret(&a));
        assert!(!valid_secret("whsec_short"));
        assert!(!valid_secret("not-a-secret-at-all-but-long"));
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "fec0::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn addresses_wrapping_ipv4_are_judged_by_the_ipv4_address() {
        for ip in [
            // Benchmarking, 198.18.0.0/15.
            "198.18.0.1",
            "198.19.255.254",
            // IPv4-mapped and IPv4-translated.
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.1.2.3",
            // NAT64, well-known and local-use prefixes.
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1::127.0.0.1",
            "64:ff9b:1:7f00:0:100::",
            "64:ff9b:1:808:8:800::",
            // 6to4 wrapping private space.
            "2002:a00:1::1",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::",
            // Teredo, whatever it wraps.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:0:0:0:0:80ff:fffe",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "198.17.255.255",
            "198.20.0.1",
            "::ffff:8.8.8.8",
            "::ffff:0:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn schedules_parse_with_units() {
        assert_eq!(
            parse_schedule("500ms,1s,2m,1h"),
            Some(vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ])
        );
        assert_eq!(parse_schedule("5x"), None);
        assert_eq!(default_schedule().len(), 7);
    }

    #[tokio::test]
    async fn private_and_plain_http_urls_are_refused_unless_allowed() {
        assert_eq!(
            resolve_allowed("https://127.0.0.1/hook", false)
                .await
                .unwrap_err(),
            UrlRefused::PrivateAddress
        );
        assert_eq!(
            resolve_allowed("https://localhost/hook", false)
                .await
                .unwrap_err(),
            UrlRefused::PrivateAddress
        );
        assert_eq!(
            resolve_allowed("http://example.com/hook", false)
                .await
                .unwrap_err(),
            UrlRefused::PlainHttp
        );
        assert_eq!(
            resolve_allowed("ftp://example.com", false)
                .await
                .unwrap_err(),
            UrlRefused::Invalid
        );
        for wrapped in [
            "https://[::ffff:0:7f00:1]/hook",
            "https://[64:ff9b::a9fe:a9fe]/hook",
            "https://[64:ff9b:1::a00:1]/hook",
            "https://[2002:c0a8:101::1]/hook",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
            "https://198.18.0.1/hook",
        ] {
            assert_eq!(
                resolve_allowed(wrapped, false).await.unwrap_err(),
                UrlRefused::PrivateAddress,
                "{wrapped}"
            );
        }
        assert!(resolve_allowed("http://127.0.0.1:9/hook", true)
            .await
            .is_ok());
    }
}
