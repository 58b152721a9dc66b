//! `wasmhost:platform/crypto`: key derivation the guest's Python lacks
//! (componentize-py's CPython has no OpenSSL, so no `hashlib.pbkdf2_hmac`;
//! the SDK puts this import in its place). Runs natively with `ring` on
//! tokio's blocking pool, bounded per call ([`MAX_ITERATIONS`],
//! [`MAX_LENGTH`]); a guest waits for its call, so an instance runs one at a
//! time, and a call is refused once its request's time is up.

use std::num::NonZeroU32;
use std::time::Instant;

use anyhow::Result;
use ring::pbkdf2;
use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::store::StoreData;
use wasmhost_spec::AppSpec;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:crypto-host;

            world crypto-host {
                import wasmhost:platform/crypto@0.1.0;
            }
        ",
        world: "wasmhost:crypto-host/crypto-host",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });
}

use bindings::wasmhost::platform::crypto;

/// Most PBKDF2 rounds one call may ask for (Django 5.2 uses 1 000 000;
/// 10 000 000 SHA-256 rounds take about 3 s).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Longest key one call may ask for, in bytes.
pub const MAX_LENGTH: u32 = 1024;

/// The crypto capability: stateless.
pub struct Crypto;

impl Capability for Crypto {
    type App = ();
    type Instance = ();

    fn app(_spec: &AppSpec, _previous: Option<&()>) -> Result<()> {
        Ok(())
    }

    fn instance(_app: &()) -> Result<()> {
        Ok(())
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        crypto::add_to_linker::<StoreData, CryptoData>(linker, |data| CryptoView { deadline: data.deadline })
            .map_err(|err| anyhow::Error::from(err).context("cannot add wasmhost:platform/crypto to the linker"))
    }
}

struct CryptoView {
    /// When the guest's time for its request runs out.
    deadline: Instant,
}

struct CryptoData;

impl HasData for CryptoData {
    type Data<'a> = CryptoView;
}

/// The PBKDF2 algorithm of the hash named `digest`.
fn algorithm(digest: &str) -> Option<pbkdf2::Algorithm> {
    match digest.to_ascii_lowercase().as_str() {
        "sha1" => Some(pbkdf2::PBKDF2_HMAC_SHA1),
        "sha256" => Some(pbkdf2::PBKDF2_HMAC_SHA256),
        "sha384" => Some(pbkdf2::PBKDF2_HMAC_SHA384),
        "sha512" => Some(pbkdf2::PBKDF2_HMAC_SHA512),
        _ => None,
    }
}

/// PBKDF2-HMAC of `password` and `salt`, its arguments checked.
fn pbkdf2_hmac(digest: &str, password: &[u8], salt: &[u8], iterations: u32, length: u32) -> Result<Vec<u8>, String> {
    let algorithm = algorithm(digest).ok_or_else(|| format!("unsupported hash type {digest}"))?;
    let rounds = NonZeroU32::new(iterations)
        .filter(|rounds| rounds.get() <= MAX_ITERATIONS)
        .ok_or_else(|| format!("iterations must be 1 to {MAX_ITERATIONS}, not {iterations}"))?;
    if !(1..=MAX_LENGTH).contains(&length) {
        return Err(format!("the key length must be 1 to {MAX_LENGTH} bytes, not {length}"));
    }
    let mut key = vec![0; length as usize];
    pbkdf2::derive(algorithm, rounds, salt, password, &mut key);
    Ok(key)
}

impl crypto::Host for CryptoView {
    async fn pbkdf2_hmac(
        &mut self,
        digest: String,
        password: Vec<u8>,
        salt: Vec<u8>,
        iterations: u32,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if Instant::now() >= self.deadline {
            return Ok(Err("the request's time ran out".to_owned()));
        }
        let derived = tokio::task::spawn_blocking(move || pbkdf2_hmac(&digest, &password, &salt, iterations, length))
            .await
            .map_err(|err| wasmtime::Error::msg(format!("the key derivation thread failed: {err}")))?;
        Ok(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_rfc_6070_and_7914_test_vectors() {
        // RFC 6070, PBKDF2-HMAC-SHA1, "password"/"salt", 4096 rounds.
        let key = pbkdf2_hmac("sha1", b"password", b"salt", 4096, 20).expect("valid");
        assert_eq!(hex::encode(key), "4b007901b765489abead49d926f721d065a429c1");
        // RFC 7914 §11, PBKDF2-HMAC-SHA256, "passwd"/"salt", 1 round, 64 bytes.
        let key = pbkdf2_hmac("SHA256", b"passwd", b"salt", 1, 64).expect("valid");
        assert!(hex::encode(key).starts_with("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"));
    }

    #[test]
    fn refuses_arguments_out_of_range() {
        assert!(pbkdf2_hmac("md5", b"p", b"s", 1, 16).unwrap_err().contains("unsupported hash type md5"));
        assert!(pbkdf2_hmac("sha256", b"p", b"s", 0, 16).unwrap_err().contains("iterations"));
        assert!(pbkdf2_hmac("sha256", b"p", b"s", MAX_ITERATIONS + 1, 16).unwrap_err().contains("iterations"));
        assert!(pbkdf2_hmac("sha256", b"p", b"s", 1, 0).unwrap_err().contains("length"));
        assert!(pbkdf2_hmac("sha256", b"p", b"s", 1, MAX_LENGTH + 1).unwrap_err().contains("length"));
    }
}
