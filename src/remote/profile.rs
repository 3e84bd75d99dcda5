//! The AWS CLI's shared files, which object_store does not read:
//! `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`
//! and `AWS_CONFIG_FILE`), profile `AWS_PROFILE` (default `default`).
//! Environment variables win over the files, as with the AWS CLI.

use std::path::PathBuf;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

/// An S3 builder with the environment's settings, then the profile's for
/// what the environment leaves unset.
pub(super) fn s3_builder() -> AmazonS3Builder {
    let mut b = AmazonS3Builder::from_env();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from);
    let creds_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let creds = creds_file.map(|f| section(&f, &profile)).unwrap_or_default();
    // In the config file every profile but the default is `[profile NAME]`.
    let config_name = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let config = config_file.map(|f| section(&f, &config_name)).unwrap_or_default();
    let get = |k: &str| {
        creds
            .iter()
            .chain(config.iter())
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let keyed = env("AWS_ACCESS_KEY_ID").is_some()
        || env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    if !keyed && let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
        b = b
            .with_config(AmazonS3ConfigKey::AccessKeyId, id)
            .with_config(AmazonS3ConfigKey::SecretAccessKey, secret);
        if let Some(t) = get("aws_session_token") {
            b = b.with_config(AmazonS3ConfigKey::Token, t);
        }
    }
    if env("AWS_REGION").is_none()
        && env("AWS_DEFAULT_REGION").is_none()
        && let Some(r) = get("region")
    {
        b = b.with_config(AmazonS3ConfigKey::Region, r);
    }
    if env("AWS_ENDPOINT_URL").is_none()
        && env("AWS_ENDPOINT").is_none()
        && let Some(e) = get("endpoint_url")
    {
        b = b.with_config(AmazonS3ConfigKey::Endpoint, e);
    }
    b
}

/// The `key = value` lines of section `[name]` of an INI file (nothing
/// when the file or the section is missing).
fn section(file: &std::path::Path, name: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    parse_section(&text, name)
}

fn parse_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = h.trim() == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_section;

    #[test]
    fn profiles_are_read_by_section() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile prod]\nregion=eu-west-1\n[prod]\naws_access_key_id=B\n";
        assert_eq!(
            parse_section(text, "default"),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(
            parse_section(text, "profile prod"),
            vec![("region".into(), "eu-west-1".into())]
        );
        assert_eq!(
            parse_section(text, "prod"),
            vec![("aws_access_key_id".into(), "B".into())]
        );
        assert!(parse_section(text, "none").is_empty());
    }
}
