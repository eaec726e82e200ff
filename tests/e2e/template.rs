//! template.yaml grants least privilege over the keys: only the functions that sign read the private key secret;
//! the functions that verify tokens or serve the JWKS read the public key set alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

/// The functions that sign access tokens (every flow that ends in `session::token_response`) and the rotation.
const SIGNING: [&str; 15] = [
    "auth-register-verify",
    "auth-login",
    "auth-login-root",
    "auth-login-service",
    "auth-session-database",
    "auth-otp-login",
    "auth-magic-link-login",
    "auth-refresh",
    "key-rotation",
    "auth-invitations-accept",
    "auth-2fa-verify",
    "auth-passkey-login-verify",
    "oauth-token",
    "auth-google",
    "auth-sso",
];

/// What a function's statements allow on one resource, by the resource's logical id.
#[derive(Debug, Default)]
struct Grants {
    /// Logical id (from `!Ref`) → the Secrets Manager actions granted on it.
    secrets: BTreeMap<String, BTreeSet<String>>,
}

impl Grants {
    fn can(&self, secret: &str, action: &str) -> bool {
        self.secrets.get(secret).is_some_and(|actions| actions.contains(action))
    }

    fn references(&self, secret: &str) -> bool {
        self.secrets.contains_key(secret)
    }
}

fn template() -> Value {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The logical ids a `Resource` names with `!Ref` (or `{Ref: ...}`); other forms name none.
fn refs(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().flat_map(refs).collect(),
        Value::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == "Ref" => strings(&tagged.value),
        Value::Mapping(map) => map.get("Ref").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Every function of the template, by binary name, with its Secrets Manager grants.
fn functions() -> BTreeMap<String, Grants> {
    let template = template();
    let mut functions = BTreeMap::new();
    for resource in template["Resources"].as_mapping().unwrap().values() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut grants = Grants::default();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<String> = strings(&statement["Action"])
                    .into_iter()
                    .filter(|a| a.starts_with("secretsmanager:"))
                    .collect();
                if actions.is_empty() {
                    continue;
                }
                assert_eq!(statement["Effect"], "Allow", "{binary}: {statement:?}");
                assert!(
                    !actions.iter().any(|a| a.contains('*')),
                    "{binary}: wildcard Secrets Manager action {actions:?}"
                );
                let named = refs(&statement["Resource"]);
                assert!(
                    !named.is_empty() && strings(&statement["Resource"]).is_empty(),
                    "{binary}: Secrets Manager statements name their secrets with !Ref, not {:?}",
                    statement["Resource"]
                );
                for secret in named {
                    grants
                        .secrets
                        .entry(secret)
                        .or_default()
                        .extend(actions.iter().cloned());
                }
            }
        }
        functions.insert(binary, grants);
    }
    assert!(functions.len() >= 20, "found {} functions", functions.len());
    functions
}

/// Whether a function's own code verifies access tokens or serves the public keys.
fn verifies(binary: &str) -> bool {
    let dir = format!("{}/../functions/{binary}/src", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .any(|source| {
            [
                "auth::authenticate",
                "auth::bearer_claims",
                "auth::verify_jwt",
                "authorizer::decide",
                "state.keys.get",
                // The token endpoint verifies the subject token of a token exchange.
                "exchange::exchange",
            ]
            .iter()
            .any(|call| source.contains(call))
        })
}

#[test]
fn only_the_functions_that_sign_can_read_the_private_keys() {
    let private: BTreeSet<String> = functions()
        .into_iter()
        .filter(|(_, g)| g.references("SigningKeySecret"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(private, SIGNING.iter().map(|s| (*s).to_owned()).collect());
}

#[test]
fn only_the_second_factor_functions_can_read_the_data_key() {
    let readers: BTreeSet<String> = functions()
        .into_iter()
        .filter(|(_, g)| g.references("SecondFactorKeySecret"))
        .map(|(name, _)| name)
        .collect();
    let expected: BTreeSet<String> = [
        "auth-2fa-setup",
        "auth-2fa-enable",
        "auth-2fa-disable",
        "auth-2fa-verify",
        "auth-2fa-backup-codes-regenerate",
        "auth-passkey-login-options",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(readers, expected);
}

#[test]
fn only_the_functions_that_route_by_identity_provider_read_its_configuration() {
    let readers: BTreeSet<String> = functions()
        .into_iter()
        .filter(|(_, g)| g.can("IdpConfigSecret", "secretsmanager:GetSecretValue"))
        .map(|(name, _)| name)
        .collect();
    let expected: BTreeSet<String> = [
        // Entra ID single sign-on and linking.
        "auth-sso-start",
        "auth-sso",
        "auth-identities-link-start",
        "auth-identities-link",
        // Password sign-in routed to a directory, the refresh that re-checks it, and the mail it replaces.
        "auth-login",
        "auth-login-root",
        "auth-refresh",
        // Sign-ins the directory does not judge ask it before they start a directory account's session; Google
        // may not claim an address a directory is authoritative for.
        "auth-otp-login",
        "auth-magic-link-login",
        "auth-passkey-login-verify",
        "auth-google",
        // A session's database switch mints tokens as a refresh does, and re-checks as it does.
        "auth-session-database",
        // No local account with a password at an address a directory is authoritative for.
        "accounts-create-individual",
        "auth-invitations-accept",
        "auth-register",
        "auth-otp-send",
        "auth-magic-link-send",
        "auth-password-reset-request",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(readers, expected);
}

#[test]
fn every_function_that_reads_a_key_secret_reads_the_public_one_or_signs() {
    for (name, grants) in functions() {
        let reads_keys = ["SigningKeySecret", "PublicKeySecret"]
            .iter()
            .any(|s| grants.can(s, "secretsmanager:GetSecretValue"));
        if reads_keys {
            assert!(
                grants.can("PublicKeySecret", "secretsmanager:GetSecretValue") || SIGNING.contains(&name.as_str()),
                "{name} reads a key secret but neither signs nor reads the public key set"
            );
        }
    }
}

#[test]
fn the_functions_that_verify_read_the_public_key_set_and_nothing_else_does() {
    let functions = functions();
    let mut verifying = 0;
    for (name, grants) in &functions {
        let reads_public = grants.can("PublicKeySecret", "secretsmanager:GetSecretValue");
        if verifies(name) {
            verifying += 1;
            assert!(
                reads_public,
                "{name} verifies tokens but cannot read the public key set"
            );
            if !SIGNING.contains(&name.as_str()) {
                assert!(!grants.references("SigningKeySecret"), "{name} only verifies");
            }
        } else if name != "key-rotation" {
            assert!(
                !reads_public,
                "{name} neither verifies nor rotates, yet reads the public key set"
            );
        }
    }
    // authorizer, auth-me, auth-logout, auth-change-password, the sessions and api-tokens endpoints, the JWKS.
    assert!(verifying >= 13, "only {verifying} verifying functions found");
}

#[test]
fn only_the_rotation_writes_the_key_secrets() {
    let functions = functions();
    for (name, grants) in &functions {
        for secret in ["SigningKeySecret", "PublicKeySecret"] {
            for action in [
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ] {
                if grants.can(secret, action) {
                    assert_eq!(name, "key-rotation", "{name} may {action} on {secret}");
                }
            }
        }
    }
    let rotation = &functions["key-rotation"];
    assert!(rotation.can("PublicKeySecret", "secretsmanager:PutSecretValue"));
    assert!(rotation.can("SigningKeySecret", "secretsmanager:UpdateSecretVersionStage"));
    assert!(!rotation.can("PublicKeySecret", "secretsmanager:UpdateSecretVersionStage"));
}

#[test]
fn every_function_is_told_where_the_public_key_set_is() {
    let template = template();
    assert_eq!(
        template["Resources"]["PublicKeySecret"]["Type"],
        "AWS::SecretsManager::Secret"
    );
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(refs(&variables["KEYGATE_PUBLIC_KEYS_SECRET_ID"]), ["PublicKeySecret"]);
    assert_eq!(refs(&variables["KEYGATE_KEY_SECRET_ID"]), ["SigningKeySecret"]);
}

/// Every DynamoDB action a function made during the end-to-end run (recorded by `make test`, see
/// scripts/test.sh) is allowed by that function's IAM policy in template.yaml. moto does not enforce IAM, so
/// without this a missing action only shows on AWS, as a 503.
#[test]
#[ignore = "scripts/test.sh runs it after the suite, over the actions the suite recorded"]
fn iam_policies_allow_every_dynamodb_action_the_functions_make() {
    let path = std::env::var("KEYGATE_RECORD_DYNAMODB_ACTIONS").expect("the file the suite recorded to");
    let recorded = std::fs::read_to_string(path).unwrap();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in recorded.lines() {
        let (function, action) = line.split_once(' ').unwrap();
        used.entry(function.replace('_', "-"))
            .or_default()
            .insert(action.to_owned());
    }
    assert!(used.len() >= 20, "too few functions recorded: {:?}", used.keys());
    let template = template();
    for (binary, actions) in &used {
        let resource = template["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .unwrap_or_else(|| panic!("no function builds {binary}"));
        let mut allowed = BTreeSet::new();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                match &statement["Action"] {
                    Value::String(action) => {
                        allowed.insert(action.clone());
                    }
                    Value::Sequence(list) => allowed.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned))),
                    _ => {}
                }
            }
        }
        let missing: Vec<&String> = actions.difference(&allowed).collect();
        assert!(
            missing.is_empty(),
            "{binary} makes {missing:?} but its policy does not allow them"
        );
    }
}
