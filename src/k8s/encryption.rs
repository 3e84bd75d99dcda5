//! Encryption at rest: the apiserver's `EncryptionConfiguration` file and
//! decryption of `k8s:enc:` values exactly as the apiserver reads them
//! (`k8s.io/apiserver/pkg/storage/value/encrypt`):
//!
//! ```text
//! k8s:enc:aescbc:v1:<key>:    IV(16) ‖ AES-CBC(plaintext ‖ PKCS#7), no AAD
//! k8s:enc:aesgcm:v1:<key>:    nonce(12) ‖ AES-GCM ciphertext ‖ tag(16), AAD = etcd key
//! k8s:enc:secretbox:v1:<key>: nonce(24) ‖ XSalsa20-Poly1305 (tag first), no AAD
//! k8s:enc:kms:v1|v2:<name>:   needs the KMS plugin to unwrap the data key
//! ```
//!
//! Keys never leave this module: `Debug` shows key names only, and errors
//! name the provider and key, never the material.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
use yaml_rust2::{Yaml, YamlLoader};

use super::envelope::EncryptedPrefix;

/// A key's bytes.
#[derive(Clone)]
struct Key {
    secret: Vec<u8>,
}

/// The keys of an EncryptionConfiguration.
#[derive(Clone, Default)]
pub struct Keyring {
    /// (provider, key name) → candidate keys (a name can repeat across resources).
    keys: BTreeMap<(String, String), Vec<Key>>,
    /// KMS provider names (and their API version) the configuration lists.
    kms: Vec<(String, String)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("kms", &self.kms)
            .finish()
    }
}

/// Why a configuration file is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML or JSON.
    #[error("not valid YAML: {0}")]
    Syntax(String),
    /// Valid YAML, wrong shape.
    #[error("{0}")]
    Shape(String),
}

/// Why a value does not decrypt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// No `--encryption-config` was given.
    #[error("encrypted with {provider} key {key_name}; pass --encryption-config to decrypt")]
    NoConfig {
        /// Provider.
        provider: String,
        /// Key name.
        key_name: String,
    },
    /// The configuration has no key of that name.
    #[error("encrypted with {provider} key {key_name}, which the encryption config does not have")]
    NoKey {
        /// Provider.
        provider: String,
        /// Key name.
        key_name: String,
    },
    /// KMS needs the plugin.
    #[error(
        "encrypted with KMS {version} provider {name}: the data key is wrapped by the KMS plugin, which etcd-rescue cannot call"
    )]
    Kms {
        /// v1 or v2.
        version: String,
        /// Provider name.
        name: String,
    },
    /// A provider we do not know.
    #[error("unknown encryption provider {provider} (key {key_name})")]
    UnknownProvider {
        /// Provider.
        provider: String,
        /// Key name.
        key_name: String,
    },
    /// The key did not open the value.
    #[error("{provider} key {key_name} does not decrypt this value: {why}")]
    Failed {
        /// Provider.
        provider: String,
        /// Key name.
        key_name: String,
        /// What failed (never key material).
        why: &'static str,
    },
}

fn shape(what: impl Into<String>) -> ConfigError {
    ConfigError::Shape(what.into())
}

impl Keyring {
    /// Parses an `EncryptionConfiguration` (YAML or JSON).
    pub fn parse(text: &str) -> Result<Keyring, ConfigError> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let doc = docs.first().ok_or_else(|| shape("the file is empty"))?;
        let kind = doc["kind"].as_str().unwrap_or("");
        if !kind.is_empty() && kind != "EncryptionConfiguration" && kind != "EncryptionConfig" {
            return Err(shape(format!("kind is {kind}, not EncryptionConfiguration")));
        }
        let resources = doc["resources"]
            .as_vec()
            .ok_or_else(|| shape("no `resources` list: not an EncryptionConfiguration"))?;
        let mut ring = Keyring::default();
        for (ri, r) in resources.iter().enumerate() {
            let providers = r["providers"]
                .as_vec()
                .ok_or_else(|| shape(format!("resources[{ri}] has no `providers` list")))?;
            for (pi, p) in providers.iter().enumerate() {
                let Some(h) = p.as_hash() else {
                    return Err(shape(format!("resources[{ri}].providers[{pi}] is not a mapping")));
                };
                for (name, body) in h {
                    let name = name.as_str().unwrap_or("");
                    match name {
                        "aescbc" | "aesgcm" | "secretbox" => {
                            let keys = body["keys"].as_vec().ok_or_else(|| {
                                shape(format!(
                                    "resources[{ri}].providers[{pi}].{name} has no `keys` list"
                                ))
                            })?;
                            for (ki, k) in keys.iter().enumerate() {
                                let at = format!("resources[{ri}].providers[{pi}].{name}.keys[{ki}]");
                                ring.add(name, &at, k)?;
                            }
                        }
                        "kms" => ring.kms.push((
                            body["name"].as_str().unwrap_or("").to_string(),
                            body["apiVersion"].as_str().unwrap_or("v1").to_string(),
                        )),
                        _ => {}
                    }
                }
            }
        }
        Ok(ring)
    }

    fn add(&mut self, provider: &str, at: &str, k: &Yaml) -> Result<(), ConfigError> {
        let name = k["name"]
            .as_str()
            .ok_or_else(|| shape(format!("{at} has no name")))?;
        let secret = k["secret"]
            .as_str()
            .ok_or_else(|| shape(format!("{at} ({name}) has no secret")))?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| shape(format!("{at} ({name}): the secret is not base64")))?;
        let ok = match provider {
            "secretbox" => secret.len() == 32,
            _ => matches!(secret.len(), 16 | 24 | 32),
        };
        if !ok {
            return Err(shape(format!(
                "{at} ({name}): a {provider} key must be {} bytes, this one is {}",
                if provider == "secretbox" {
                    "32"
                } else {
                    "16, 24 or 32"
                },
                secret.len()
            )));
        }
        self.keys
            .entry((provider.to_string(), name.to_string()))
            .or_default()
            .push(Key { secret });
        Ok(())
    }

    /// How many keys it holds (for messages; never the keys).
    pub fn key_count(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Decrypts `payload` (the bytes after the prefix) of a value stored at
    /// `etcd_key`.
    pub fn decrypt(
        &self,
        p: &EncryptedPrefix,
        payload: &[u8],
        etcd_key: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        decrypt(Some(self), p, payload, etcd_key)
    }
}

/// Decrypts with `ring`, or explains why not when there is none.
pub fn decrypt(
    ring: Option<&Keyring>,
    p: &EncryptedPrefix,
    payload: &[u8],
    etcd_key: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let (provider, key_name) = (p.provider.clone(), p.key_name.clone());
    if provider == "kms" {
        return Err(DecryptError::Kms {
            version: p.version.clone(),
            name: key_name,
        });
    }
    if !matches!(provider.as_str(), "aescbc" | "aesgcm" | "secretbox") {
        return Err(DecryptError::UnknownProvider { provider, key_name });
    }
    let Some(ring) = ring else {
        return Err(DecryptError::NoConfig { provider, key_name });
    };
    let Some(keys) = ring.keys.get(&(provider.clone(), key_name.clone())) else {
        return Err(DecryptError::NoKey { provider, key_name });
    };
    let mut why = "no key";
    for k in keys {
        let r = match provider.as_str() {
            "aescbc" => aes_cbc(&k.secret, payload),
            "aesgcm" => aes_gcm(&k.secret, payload, etcd_key),
            _ => secretbox(&k.secret, payload),
        };
        match r {
            Ok(v) => return Ok(v),
            Err(w) => why = w,
        }
    }
    Err(DecryptError::Failed {
        provider,
        key_name,
        why,
    })
}

fn aes_cbc(key: &[u8], data: &[u8]) -> Result<Vec<u8>, &'static str> {
    if data.len() < 16 {
        return Err("the stored data is shorter than one block");
    }
    let (iv, ct) = data.split_at(16);
    if ct.len() % 16 != 0 {
        return Err("the stored data is not a multiple of the block size");
    }
    let mut buf = ct.to_vec();
    let out = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| "bad key")?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map(<[u8]>::len),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| "bad key")?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map(<[u8]>::len),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| "bad key")?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map(<[u8]>::len),
    }
    .map_err(|_| "bad block size")?;
    buf.truncate(out);
    // PKCS#7 as the apiserver checks it: 1 <= p <= len, the last p bytes all p.
    let p = *buf.last().ok_or("invalid PKCS7 data (empty or not padded)")? as usize;
    if p == 0 || p > buf.len() {
        return Err("invalid PKCS7 data (empty or not padded): wrong key?");
    }
    if buf[buf.len() - p..].iter().any(|&b| b as usize != p) {
        return Err("invalid padding on input: wrong key?");
    }
    buf.truncate(buf.len() - p);
    Ok(buf)
}

fn aes_gcm(key: &[u8], data: &[u8], aad: &[u8]) -> Result<Vec<u8>, &'static str> {
    if data.len() < 12 + 16 {
        return Err("the stored data is shorter than nonce and tag");
    }
    let (nonce, ct) = data.split_at(12);
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    let msg = Payload { msg: ct, aad };
    let r = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(|_| "bad key")?
            .decrypt(nonce, msg),
        24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(key)
            .map_err(|_| "bad key")?
            .decrypt(nonce, msg),
        _ => aes_gcm::Aes256Gcm::new_from_slice(key)
            .map_err(|_| "bad key")?
            .decrypt(nonce, msg),
    };
    r.map_err(|_| "authentication failed (wrong key, or the value was moved from another etcd key)")
}

fn secretbox(key: &[u8], data: &[u8]) -> Result<Vec<u8>, &'static str> {
    use crypto_secretbox::XSalsa20Poly1305;
    if data.len() < 24 + 16 {
        return Err("the stored data is shorter than nonce and tag");
    }
    let (nonce, ct) = data.split_at(24);
    let cipher = XSalsa20Poly1305::new_from_slice(key).map_err(|_| "bad key")?;
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(nonce), ct)
        .map_err(|_| "authentication failed (wrong key)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::envelope::encrypted_prefix;
    use cbc::cipher::{BlockEncryptMut, block_padding::Pkcs7};

    const K32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef0123456789abcdef"

    fn ring() -> Keyring {
        Keyring::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: k1\n              secret: {K32}\n      - aesgcm:\n          keys:\n            - name: g1\n              secret: {K32}\n      - secretbox:\n          keys:\n            - name: s1\n              secret: {K32}\n      - kms:\n          name: vault\n          apiVersion: v2\n      - identity: {{}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn debug_never_shows_keys() {
        let d = format!("{:?}", ring());
        assert!(d.contains("k1") && !d.contains("0123456789abcdef") && !d.contains(K32));
    }

    #[test]
    fn decrypts_all_three_providers() {
        let key = b"0123456789abcdef0123456789abcdef";
        let etcd_key = b"/registry/secrets/default/s";
        let plain = b"k8s\0hello";
        let r = ring();
        // aescbc
        let iv = [7u8; 16];
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plain);
        let v = [b"k8s:enc:aescbc:v1:k1:".as_slice(), &iv, &ct].concat();
        let p = encrypted_prefix(&v).unwrap();
        assert_eq!(r.decrypt(&p, &v[p.len..], etcd_key).unwrap(), plain);
        // aesgcm, with the etcd key as AAD
        let c = aes_gcm::Aes256Gcm::new_from_slice(key).unwrap();
        let nonce = [9u8; 12];
        let ct = c
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: etcd_key,
                },
            )
            .unwrap();
        let v = [b"k8s:enc:aesgcm:v1:g1:".as_slice(), &nonce, &ct].concat();
        let p = encrypted_prefix(&v).unwrap();
        assert_eq!(r.decrypt(&p, &v[p.len..], etcd_key).unwrap(), plain);
        assert!(matches!(
            r.decrypt(&p, &v[p.len..], b"/registry/secrets/other/s"),
            Err(DecryptError::Failed { .. })
        ));
        // secretbox
        let sb = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key).unwrap();
        let n = [3u8; 24];
        let ct = sb
            .encrypt(crypto_secretbox::Nonce::from_slice(&n), plain.as_slice())
            .unwrap();
        let v = [b"k8s:enc:secretbox:v1:s1:".as_slice(), &n, &ct].concat();
        let p = encrypted_prefix(&v).unwrap();
        assert_eq!(r.decrypt(&p, &v[p.len..], etcd_key).unwrap(), plain);
        // kms and unknown names
        let p = encrypted_prefix(b"k8s:enc:kms:v2:vault:xx").unwrap();
        assert!(matches!(
            r.decrypt(&p, b"xx", etcd_key),
            Err(DecryptError::Kms { .. })
        ));
        let p = encrypted_prefix(b"k8s:enc:aescbc:v1:nope:xx").unwrap();
        assert!(matches!(
            r.decrypt(&p, b"xx", etcd_key),
            Err(DecryptError::NoKey { .. })
        ));
    }

    #[test]
    fn bad_configs_are_explained() {
        assert!(Keyring::parse("kind: Pod\n").is_err());
        let e = Keyring::parse(
            "resources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: YWJj\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("16, 24 or 32"), "{e}");
    }
}
