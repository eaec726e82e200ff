//! template.yaml, openapi.yaml and the local router describe the same routes.

use std::collections::BTreeSet;

use serde_yaml::Value;

fn read(file: &str) -> Value {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn template_routes() -> BTreeSet<(String, String)> {
    let template = read("template.yaml");
    let mut routes = BTreeSet::new();
    for resource in template["Resources"].as_mapping().unwrap().values() {
        for event in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.values())
        {
            // The `$default` route (api-fallback) answers what no route matches: checked below.
            if event["Type"] == "HttpApi" && event["Properties"]["Path"] != "$default" {
                let method = event["Properties"]["Method"].as_str().unwrap().to_uppercase();
                routes.insert((method, event["Properties"]["Path"].as_str().unwrap().to_owned()));
            }
        }
    }
    routes
}

fn openapi_routes() -> BTreeSet<(String, String)> {
    let spec = read("openapi.yaml");
    let mut routes = BTreeSet::new();
    for (path, operations) in spec["paths"].as_mapping().unwrap() {
        for method in operations
            .as_mapping()
            .unwrap()
            .keys()
            .filter(|k| k.as_str() != Some("parameters"))
        {
            routes.insert((
                method.as_str().unwrap().to_uppercase(),
                path.as_str().unwrap().to_owned(),
            ));
        }
    }
    routes
}

fn local_routes() -> BTreeSet<(String, String)> {
    keygate::routes::ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

#[test]
fn template_openapi_and_local_router_agree() {
    let local = local_routes();
    assert!(local.len() >= 12);
    assert_eq!(template_routes(), local, "template.yaml vs the local router");
    assert_eq!(openapi_routes(), local, "openapi.yaml vs the local router");
}

#[test]
fn what_no_route_matches_goes_to_the_fallback_function() {
    let template = read("template.yaml");
    let fallback = &template["Resources"]["ApiFallbackFunction"];
    assert_eq!(fallback["Metadata"]["BuildProperties"]["Binary"], "api-fallback");
    let event = &fallback["Properties"]["Events"]["Api"]["Properties"];
    assert_eq!((&event["Method"], &event["Path"]), (&"ANY".into(), &"$default".into()));
    // Not behind the authorizer: a 405 or 404 says nothing about the caller.
    assert!(
        event["Auth"].is_null()
            && template["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"].is_null()
    );
}

#[test]
fn every_route_has_its_own_function_crate() {
    let template = read("template.yaml");
    for (_, _, function) in keygate::routes::ROUTES {
        let binary = function.replace('_', "-");
        let found = template["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .any(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary.as_str()));
        assert!(found, "no template function builds {binary}");
        let manifest = format!("{}/../functions/{binary}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        assert!(std::path::Path::new(&manifest).exists(), "{manifest}");
    }
}

#[test]
fn every_error_code_is_documented() {
    let spec = read("openapi.yaml");
    let documented: BTreeSet<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let io = || keygate::error::DependencyError::new("x", std::io::Error::other("x"));
    for err in [
        keygate::Error::MalformedJson,
        keygate::Error::InvalidRequest(String::new()),
        keygate::Error::PayloadTooLarge(0),
        keygate::Error::InvalidEmail,
        keygate::Error::InvalidField(String::new()),
        keygate::Error::WeakPassword(""),
        keygate::Error::BreachedPassword,
        keygate::Error::WrongPassword,
        keygate::Error::InvalidCredentials,
        keygate::Error::EmailNotVerified,
        keygate::Error::AccountLocked,
        keygate::Error::AccountDisabled,
        keygate::Error::InsufficientRole(""),
        keygate::Error::ReauthenticationRequired,
        keygate::Error::MfaAlreadyEnabled,
        keygate::Error::MfaNotEnabled,
        keygate::Error::MfaSetupRequired,
        keygate::Error::InvalidScope(String::new()),
        keygate::Error::InsufficientScope(""),
        keygate::Error::Conflict(""),
        keygate::Error::LimitReached(""),
        keygate::Error::PasswordManagedExternally,
        keygate::Error::TransferRootFirst,
        keygate::Error::AccountExists,
        keygate::Error::InvalidPasskey(""),
        keygate::Error::PasskeyAlreadyRegistered,
        keygate::Error::InvalidCode,
        keygate::Error::InvalidToken(""),
        keygate::Error::SessionRevoked,
        keygate::Error::RefreshConflict,
        keygate::Error::NotFound,
        keygate::Error::MethodNotAllowed(String::new()),
        keygate::Error::RateLimited { retry_after: 1 },
        keygate::Error::Unavailable(io()),
    ] {
        assert!(documented.contains(err.code()), "{} is not in openapi.yaml", err.code());
    }
}
