//! `keygate-local idp put FILE.json [--secret-id ID]` validates an identity-provider configuration and stores it in
//! its Secrets Manager secret; `keygate-local idp show [--secret-id ID]` prints the stored one with its secrets
//! redacted. Both go through the normal SDK configuration (credentials, region, `AWS_ENDPOINT_URL`): the local
//! services under `make dev`, AWS itself with real credentials. Without `--secret-id`, the secret is keygate's own
//! (`KEYGATE_IDP_SECRET_ID`, as the API reads it).

use std::process::ExitCode;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use keygate::federation::config::IdpDocument;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str =
    "usage: keygate-local idp put FILE.json [--secret-id ID] | keygate-local idp show [--secret-id ID] | keygate-local idp demo";

/// Stands in for every secret value `show` prints.
const REDACTED: &str = "<redacted>";

/// Runs `idp <args>`: exit 0 when done, 2 for a document that does not validate or a usage error.
pub async fn run(args: &[String], aws: &aws_config::SdkConfig) -> Result<ExitCode, BoxError> {
    let Some((command, mut rest)) = args.split_first().map(|(c, r)| (c.as_str(), r.to_vec())) else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let secret_id = match take_option(&mut rest, "--secret-id") {
        Ok(Some(id)) => id,
        Ok(None) => keygate::Config::from_env()?.idp_secret_id,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    let client = aws_sdk_secretsmanager::Client::new(aws);
    match (command, rest.as_slice()) {
        ("put", [file]) => put(&client, &secret_id, file).await,
        ("show", []) => show(&client, &secret_id).await,
        ("demo", []) => demo(aws, &client, &secret_id).await,
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Removes `--name VALUE` (or `--name=VALUE`) from `args`.
fn take_option(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let Some(at) = args
        .iter()
        .position(|a| a == name || a.starts_with(&format!("{name}=")))
    else {
        return Ok(None);
    };
    let flag = args.remove(at);
    let value = match flag.split_once('=') {
        Some((_, value)) => value.to_owned(),
        None if at < args.len() => args.remove(at),
        None => return Err(format!("{name} needs a value")),
    };
    if value.trim().is_empty() {
        return Err(format!("{name} needs a value"));
    }
    Ok(Some(value))
}

async fn put(client: &aws_sdk_secretsmanager::Client, secret_id: &str, file: &str) -> Result<ExitCode, BoxError> {
    let raw = std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?;
    let document = match IdpDocument::parse(&raw) {
        Ok(document) => document,
        Err(reason) => {
            eprintln!("{file} is not a valid identity-provider configuration: {reason}");
            return Ok(ExitCode::from(2));
        }
    };
    store_secret(client, secret_id, &raw).await?;
    println!(
        "stored {} identity provider(s) in {secret_id}: {}",
        document.idps.len(),
        document
            .idps
            .iter()
            .map(|entry| entry.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `raw` as the secret's new AWSCURRENT version, creating the secret if it does not exist yet (the local
/// services; in AWS the stack creates it empty).
async fn store_secret(client: &aws_sdk_secretsmanager::Client, secret_id: &str, raw: &str) -> Result<(), BoxError> {
    let put = client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(raw)
        .send()
        .await;
    match put {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            client
                .create_secret()
                .name(secret_id)
                .description("keygate identity-provider configuration")
                .secret_string(raw)
                .send()
                .await
                .map_err(|e| format!("creating {secret_id}: {}", DisplayErrorContext(&e)))?;
            Ok(())
        }
        Err(err) => Err(format!("writing {secret_id}: {}", DisplayErrorContext(&err)).into()),
    }
}

/// The id of `make dev`'s demo directory entry.
const DEMO_ID: &str = "demo-directory";

/// `idp demo` (run by `make dev`): routes `corp.test` to the demo OpenLDAP directory that scripts/slapd.sh started
/// (its `KEYGATE_TEST_LDAP_*` variables), into a tenant of its own made the first time. The entry is rewritten at
/// every start, because the directory's CA is new each time; other entries of the document are kept.
async fn demo(
    aws: &aws_config::SdkConfig,
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<ExitCode, BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} must be set (scripts/slapd.sh sets it)"));
    let config = keygate::Config::from_env()?;
    let store = keygate::store::Store::new(aws_sdk_dynamodb::Client::new(aws), config.table_name.clone());
    let raw = read(client, secret_id).await?;
    let mut document: Value = if raw.trim().is_empty() {
        serde_json::json!({ "idps": [] })
    } else {
        serde_json::from_str(&raw).map_err(|_| format!("{secret_id} does not hold JSON; fix it with `idp put`"))?
    };
    let entries = document["idps"]
        .as_array_mut()
        .ok_or_else(|| format!("{secret_id} has no \"idps\" array; fix it with `idp put`"))?;
    let previous = entries
        .iter()
        .position(|entry| entry["id"] == DEMO_ID)
        .map(|at| entries.remove(at));
    let now = keygate::clock::Clock::system().now();
    let tenant_id = match previous.as_ref().and_then(|entry| entry["tenant_id"].as_str()) {
        Some(id) if keygate::store::tenants::get(&store, id).await?.is_some() => id.to_owned(),
        _ => {
            keygate::tenancy::tenants::create_unowned(&store, "Corp (demo directory)", now)
                .await?
                .id
        }
    };
    entries.push(serde_json::json!({
        "id": DEMO_ID,
        "type": "ldap",
        "description": "make dev's OpenLDAP directory (scripts/slapd.sh)",
        "tenant_id": tenant_id,
        "domains": ["corp.test"],
        "default_role": "backend",
        "url": var("KEYGATE_TEST_LDAP_URL")?,
        "start_tls": true,
        "ca_pem": std::fs::read_to_string(var("KEYGATE_TEST_LDAP_CA")?)?,
        "bind_dn": var("KEYGATE_TEST_LDAP_BIND_DN")?,
        "bind_password": var("KEYGATE_TEST_LDAP_BIND_PASSWORD")?,
        "user_base_dn": var("KEYGATE_TEST_LDAP_BASE_DN")?,
    }));
    let raw = document.to_string();
    if let Err(reason) = IdpDocument::parse(&raw) {
        eprintln!("the demo entry does not validate: {reason}");
        return Ok(ExitCode::from(2));
    }
    store_secret(client, secret_id, &raw).await?;
    println!("corp.test signs in through the demo directory (tenant {tenant_id})");
    Ok(ExitCode::SUCCESS)
}

/// The secret's current string; empty when the secret does not exist.
async fn read(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> Result<String, BoxError> {
    match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(output) => Ok(output.secret_string.unwrap_or_default()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(String::new())
        }
        Err(err) => Err(format!("reading {secret_id}: {}", DisplayErrorContext(&err)).into()),
    }
}

async fn show(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> Result<ExitCode, BoxError> {
    let raw = read(client, secret_id).await?;
    if raw.trim().is_empty() {
        println!("{secret_id} holds no identity-provider configuration");
        return Ok(ExitCode::SUCCESS);
    }
    match serde_json::from_str::<Value>(&raw) {
        Ok(mut document) => {
            redact(&mut document);
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        // Not JSON: printing it could print a secret.
        Err(_) => println!("{secret_id} holds {} bytes that are not JSON", raw.len()),
    }
    if let Err(reason) = IdpDocument::parse(&raw) {
        eprintln!("this configuration is not valid: {reason}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces the value of every member whose name speaks of a secret or a password, at any depth.
fn redact(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                let name = name.to_ascii_lowercase();
                if ["secret", "password", "credential", "private"]
                    .iter()
                    .any(|word| name.contains(word))
                {
                    *member = Value::String(REDACTED.to_owned());
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_redacts_secrets_at_any_depth() {
        let mut document = serde_json::json!({ "idps": [
            { "id": "contoso", "client_id": "abc", "client_secret": "s3cret" },
            { "id": "ldap", "bind": { "dn": "cn=svc", "bind_password": "hunter2" } },
        ]});
        redact(&mut document);
        let printed = document.to_string();
        assert!(!printed.contains("s3cret") && !printed.contains("hunter2"), "{printed}");
        assert_eq!(document["idps"][0]["client_id"], "abc");
        assert_eq!(document["idps"][1]["bind"]["dn"], "cn=svc");
    }

    #[test]
    fn the_secret_id_option_is_taken_out() {
        let mut args = vec!["a.json".to_owned(), "--secret-id".to_owned(), "prod-idp".to_owned()];
        assert_eq!(take_option(&mut args, "--secret-id"), Ok(Some("prod-idp".to_owned())));
        assert_eq!(args, vec!["a.json".to_owned()]);
        let mut args = vec!["--secret-id=x".to_owned()];
        assert_eq!(take_option(&mut args, "--secret-id"), Ok(Some("x".to_owned())));
        let mut args = vec!["a.json".to_owned(), "--secret-id".to_owned()];
        assert!(take_option(&mut args, "--secret-id").is_err());
        let mut args = vec!["a.json".to_owned()];
        assert_eq!(take_option(&mut args, "--secret-id"), Ok(None));
    }
}
