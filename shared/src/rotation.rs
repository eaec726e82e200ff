//! Secrets Manager's four-step rotation protocol for the private key secret, and the public key set it
//! publishes. The rotation Lambda calls these steps one per invocation; `keygate-local setup` calls
//! [`rotate_now`] to store the first keys with the same code.
//!
//! The schedule ([`KeyVersion::successor`]): each version holds a `signing` and a `next` key, and a rotation
//! makes the old `next` key sign, so a key is published for a whole rotation period before any token carries it.

use aws_sdk_secretsmanager::Client as SecretsClient;
use secrecy::ExposeSecret as _;

use crate::clock::UnixTime;
use crate::keys::{fetch_stage, secret_string, KeyMaterial, KeySet, KeyVersion, PublicKeys};
use crate::tokens::{self, AccessClaims};
use crate::Error;

/// The two secrets a rotation works on.
#[derive(Debug, Clone, Copy)]
pub struct Secrets<'a> {
    /// The private key secret, whose versions the protocol rotates.
    pub private: &'a str,
    /// The public-key secret, which `finishSecret` rewrites from the private one.
    pub public: &'a str,
}

/// One step of the rotation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Store the next version (the old `next` key signs, a fresh key is next) as AWSPENDING under the token.
    CreateSecret,
    /// Push the secret to the service that uses it; keygate reads keys directly, so there is nothing to push.
    SetSecret,
    /// Prove both pending keys sign tokens that verify.
    TestSecret,
    /// Promote the pending version to AWSCURRENT, then publish the public key set. Run for the version that
    /// is already AWSCURRENT, it only publishes again.
    FinishSecret,
}

impl Step {
    /// Parses the `Step` field of a rotation event.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "createSecret" => Some(Self::CreateSecret),
            "setSecret" => Some(Self::SetSecret),
            "testSecret" => Some(Self::TestSecret),
            "finishSecret" => Some(Self::FinishSecret),
            _ => None,
        }
    }
}

/// Runs one step for the version named by `token`.
pub async fn run_step(client: &SecretsClient, secrets: Secrets<'_>, token: &str, step: Step) -> Result<(), Error> {
    // An event naming the public-key secret would write private keys into it.
    if secrets.private == secrets.public {
        return Err(rotation_failure("the public-key secret is not rotated"));
    }
    match step {
        Step::CreateSecret => create_secret(client, secrets.private, token).await,
        Step::SetSecret => Ok(()),
        Step::TestSecret => test_secret(client, secrets.private, token).await,
        Step::FinishSecret => finish_secret(client, secrets, token).await,
    }
}

/// Runs all four steps with a fresh token: what a rotation does, in one call.
pub async fn rotate_now(client: &SecretsClient, secrets: Secrets<'_>, token: &str) -> Result<(), Error> {
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        run_step(client, secrets, token, step).await?;
    }
    Ok(())
}

/// Writes the public key set (both keys of AWSCURRENT and of AWSPREVIOUS) to the public-key secret, unless it
/// already holds exactly that. Safe to run at any time, for example to publish for a deployment that predates
/// the public-key secret. Round trips: two reads of the private secret, one of the public one, and a write
/// when the set changed.
pub async fn publish(client: &SecretsClient, secrets: Secrets<'_>) -> Result<(), Error> {
    let (current, previous) = tokio::join!(
        fetch_stage(client, secrets.private, "AWSCURRENT", None),
        fetch_stage(client, secrets.private, "AWSPREVIOUS", None),
    );
    let current = current?.ok_or_else(|| rotation_failure("AWSCURRENT holds no key material to publish"))?;
    let previous = previous?;
    let json = PublicKeys::of_versions(std::iter::once(&current).chain(previous.as_ref())).to_json()?;
    let published = secret_string(client, secrets.public, "AWSCURRENT", None).await?;
    if published.is_some_and(|p| p.expose_secret() == json) {
        return Ok(());
    }
    // Without VersionStages, the new version becomes AWSCURRENT.
    client
        .put_secret_value()
        .secret_id(secrets.public)
        .secret_string(json)
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager PutSecretValue", e))?;
    tracing::info!(kid = %current.signing.kid, "published the public signing keys");
    Ok(())
}

async fn create_secret(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    // Idempotent: Secrets Manager may retry a step, and a second fresh key would replace the one written first.
    if fetch_stage(client, secret_id, "AWSPENDING", Some(token))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let current = fetch_stage(client, secret_id, "AWSCURRENT", None).await?;
    let version = KeyVersion::successor(current.as_ref())?;
    client
        .put_secret_value()
        .secret_id(secret_id)
        .client_request_token(token)
        .secret_string(version.to_secret_string()?)
        .version_stages("AWSPENDING")
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager PutSecretValue", e))?;
    tracing::info!(
        signing = %version.signing.kid,
        next = ?version.next.as_ref().map(|k| &k.kid),
        "created the pending key version"
    );
    Ok(())
}

async fn test_secret(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    let version = fetch_stage(client, secret_id, "AWSPENDING", Some(token))
        .await?
        .ok_or_else(|| rotation_failure("the pending version holds no key material"))?;
    let next = version
        .next
        .as_ref()
        .ok_or_else(|| rotation_failure("the pending version has no next key"))?;
    prove_signs(&version.signing)?;
    prove_signs(next)
}

/// Signs a token with `key` and verifies it with the public half alone, as the verifying functions will.
fn prove_signs(key: &KeyMaterial) -> Result<(), Error> {
    let claims = AccessClaims {
        iss: "keygate-rotation-test".to_owned(),
        sub: "rotation-test".to_owned(),
        aud: "keygate-rotation-test".to_owned(),
        exp: UnixTime::MAX / 2,
        iat: 0,
        jti: "rotation-test".to_owned(),
        sid: "rotation-test".to_owned(),
        scope: String::new(),
        amr: Vec::new(),
        auth_time: 0,
        ..AccessClaims::default()
    };
    let jwt = tokens::sign_access_token(&KeySet::from_materials(Some(key), &[], 0), &claims)?;
    let public = KeySet::from_jwks(&[key.jwk()], 0);
    tokens::verify_access_token(&public, &jwt, &claims.iss, &claims.aud, 1)
        .map(|_| ())
        .map_err(|_| rotation_failure("a pending key does not verify its own signature"))
}

async fn finish_secret(client: &SecretsClient, secrets: Secrets<'_>, token: &str) -> Result<(), Error> {
    let described = client
        .describe_secret()
        .secret_id(secrets.private)
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager DescribeSecret", e))?;
    let versions = described.version_ids_to_stages();
    let has_stage = |id: &str, stage: &str| {
        versions
            .and_then(|v| v.get(id))
            .is_some_and(|stages| stages.iter().any(|s| s == stage))
    };
    let current = versions.and_then(|versions| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.clone())
    });
    if current.as_deref() != Some(token) {
        client
            .update_secret_version_stage()
            .secret_id(secrets.private)
            .version_stage("AWSCURRENT")
            .move_to_version_id(token)
            .set_remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| Error::dependency("secretsmanager UpdateSecretVersionStage", e))?;
        tracing::info!("promoted the pending key version to AWSCURRENT");
    }
    // Also on a retry that finds the version already current: the first attempt may have stopped here.
    if has_stage(token, "AWSPENDING") {
        client
            .update_secret_version_stage()
            .secret_id(secrets.private)
            .version_stage("AWSPENDING")
            .remove_from_version_id(token)
            .send()
            .await
            .map_err(|e| Error::dependency("secretsmanager UpdateSecretVersionStage", e))?;
    }
    publish(client, secrets).await
}

fn rotation_failure(reason: &'static str) -> Error {
    Error::dependency("signing-key rotation", std::io::Error::other(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_steps_only() {
        assert_eq!(Step::parse("createSecret"), Some(Step::CreateSecret));
        assert_eq!(Step::parse("finishSecret"), Some(Step::FinishSecret));
        assert_eq!(Step::parse("deleteSecret"), None);
    }

    #[test]
    fn the_test_step_refuses_a_key_whose_public_half_is_another_keys() {
        let good = KeyMaterial::generate().unwrap();
        prove_signs(&good).unwrap();
        let other = KeyMaterial::generate().unwrap();
        let mismatched = KeyMaterial {
            n: other.n,
            e: other.e,
            ..good
        };
        assert_eq!(prove_signs(&mismatched).err().map(|e| e.status()), Some(503));
    }
}
