//! Secrets Manager's four-step rotation protocol for the signing-key secret. The rotation Lambda calls these
//! steps one per invocation; `make dev` calls [`rotate_now`] to store the first key with the same code.

use aws_sdk_secretsmanager::Client as SecretsClient;

use crate::clock::UnixTime;
use crate::keys::{fetch_stage, KeyMaterial, KeySet};
use crate::tokens::{self, AccessClaims};
use crate::Error;

/// One step of the rotation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Generate a key and store it as AWSPENDING under the rotation token.
    CreateSecret,
    /// Push the secret to the service that uses it; keygate reads keys directly, so there is nothing to push.
    SetSecret,
    /// Prove the pending key signs tokens that verify.
    TestSecret,
    /// Promote the pending version to AWSCURRENT.
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
pub async fn run_step(client: &SecretsClient, secret_id: &str, token: &str, step: Step) -> Result<(), Error> {
    match step {
        Step::CreateSecret => create_secret(client, secret_id, token).await,
        Step::SetSecret => Ok(()),
        Step::TestSecret => test_secret(client, secret_id, token).await,
        Step::FinishSecret => finish_secret(client, secret_id, token).await,
    }
}

/// Runs all four steps with a fresh token: what a rotation does, in one call.
pub async fn rotate_now(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        run_step(client, secret_id, token, step).await?;
    }
    Ok(())
}

async fn create_secret(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    // Idempotent: Secrets Manager may retry a step.
    if fetch_stage(client, secret_id, "AWSPENDING", Some(token))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let material = KeyMaterial::generate()?;
    client
        .put_secret_value()
        .secret_id(secret_id)
        .client_request_token(token)
        .secret_string(material.to_secret_string()?)
        .version_stages("AWSPENDING")
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager PutSecretValue", e))?;
    tracing::info!(kid = %material.kid, "created pending signing key");
    Ok(())
}

async fn test_secret(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    let material = fetch_stage(client, secret_id, "AWSPENDING", Some(token))
        .await?
        .ok_or_else(|| rotation_failure("the pending version holds no key material"))?;
    let keys = KeySet::from_materials(Some(&material), &[], 0);
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
        tenant: None,
    };
    let jwt = tokens::sign_access_token(&keys, &claims)?;
    tokens::verify_access_token(&keys, &jwt, &claims.iss, &claims.aud, 1)
        .map(|_| ())
        .map_err(|_| rotation_failure("the pending key does not verify its own signature"))
}

async fn finish_secret(client: &SecretsClient, secret_id: &str, token: &str) -> Result<(), Error> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager DescribeSecret", e))?;
    let current = described.version_ids_to_stages().and_then(|versions| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.clone())
    });
    if current.as_deref() == Some(token) {
        return Ok(());
    }
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .move_to_version_id(token)
        .set_remove_from_version_id(current)
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager UpdateSecretVersionStage", e))?;
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage("AWSPENDING")
        .remove_from_version_id(token)
        .send()
        .await
        .map_err(|e| Error::dependency("secretsmanager UpdateSecretVersionStage", e))?;
    tracing::info!("promoted the pending signing key to AWSCURRENT");
    Ok(())
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
}
