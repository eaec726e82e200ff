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
fn iam_policies_allow_every_dynamodb_and_sqs_action_the_functions_make() {
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

/// A tagged value's function name and argument (`!Ref X` is `("Ref", X)`), or the long form `{Fn::If: ...}`.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value)),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next()?;
            let name = key.as_str()?;
            (name == "Ref" || name.starts_with("Fn::")).then(|| (name.trim_start_matches("Fn::").to_owned(), argument))
        }
        _ => None,
    }
}

/// The argument of `!<name> ...` when `value` is that intrinsic.
fn call<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    intrinsic(value).and_then(|(found, argument)| (found == name).then_some(argument))
}

/// The logical id `value` names with `!Ref`, if it is one.
fn ref_to(value: &Value) -> Option<&str> {
    call(value, "Ref").and_then(Value::as_str)
}

/// The template's resources of one type, by logical id.
fn resources_of(template: &Value, kind: &str) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

/// The function resource that builds `binary`.
fn function_building(template: &Value, binary: &str) -> Value {
    resources_of(template, "AWS::Serverless::Function")
        .into_values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

/// Whether `actions` holds `!If [condition, !Ref target, !Ref AWS::NoValue]`.
fn notifies(actions: &Value, condition: &str, target: &str) -> bool {
    actions.as_sequence().into_iter().flatten().any(|action| {
        let Some(Value::Sequence(branches)) = call(action, "If") else {
            return false;
        };
        branches.len() == 3
            && branches[0].as_str() == Some(condition)
            && ref_to(&branches[1]) == Some(target)
            && ref_to(&branches[2]) == Some("AWS::NoValue")
    })
}

/// The namespace every counter is written to, as the template spells it.
const METRICS_NAMESPACE: &str = "keygate/${AWS::StackName}";

#[test]
fn every_alarm_exists_explains_itself_and_notifies_the_alarm_topics() {
    let template = template();
    let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
    let expected: BTreeSet<&str> = [
        "ServerErrorAlarm",
        "RefreshReuseAlarm",
        "MailDeadLetterAlarm",
        "CleanupErrorAlarm",
        "ThrottleAlarm",
    ]
    .into_iter()
    .collect();
    assert_eq!(alarms.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected);
    for (id, alarm) in &alarms {
        let properties = &alarm["Properties"];
        let actions = &properties["AlarmActions"];
        assert!(
            notifies(actions, "HasAlarmEmail", "AlarmTopic"),
            "{id} does not notify AlarmTopic: {actions:?}"
        );
        assert!(
            notifies(actions, "HasAlarmTopic", "AlarmTopicArn"),
            "{id} does not notify AlarmTopicArn"
        );
        let description = properties["AlarmDescription"].as_str().unwrap_or_default();
        assert!(
            description.len() >= 200,
            "{id}: the description is the runbook, not {description:?}"
        );
        assert!(
            description.len() <= 1024,
            "{id}: CloudWatch takes 1024 characters of description"
        );
        assert_eq!(properties["TreatMissingData"], "notBreaching", "{id}");
        assert_eq!(properties["Period"].as_u64(), Some(300), "{id}");
    }

    // The topic exists exactly when AlarmEmail is set, and mails it.
    let condition = call(&template["Conditions"]["HasAlarmEmail"], "Not").unwrap();
    let equals = call(&condition[0], "Equals").unwrap();
    assert_eq!(ref_to(&equals[0]), Some("AlarmEmail"));
    assert_eq!(equals[1], "");
    assert_eq!(template["Parameters"]["AlarmEmail"]["Default"], "");
    let resources = &template["Resources"];
    assert_eq!(resources["AlarmTopic"]["Type"], "AWS::SNS::Topic");
    assert_eq!(resources["AlarmTopic"]["Condition"], "HasAlarmEmail");
    let subscriptions = resources_of(&template, "AWS::SNS::Subscription");
    assert_eq!(subscriptions.len(), 1);
    let subscription = subscriptions.values().next().unwrap();
    assert_eq!(subscription["Condition"], "HasAlarmEmail");
    assert_eq!(subscription["Properties"]["Protocol"], "email");
    assert_eq!(ref_to(&subscription["Properties"]["Endpoint"]), Some("AlarmEmail"));
    assert_eq!(ref_to(&subscription["Properties"]["TopicArn"]), Some("AlarmTopic"));
    let output = &template["Outputs"]["AlarmTopic"];
    assert_eq!(output["Condition"], "HasAlarmEmail");
    assert_eq!(ref_to(&output["Value"]), Some("AlarmTopic"));
}

#[test]
fn each_alarm_watches_the_right_metric() {
    let template = template();
    let alarm = |id: &str| template["Resources"][id]["Properties"].clone();
    let dimensions = |properties: &Value| -> Vec<(String, Value)> {
        properties["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| (d["Name"].as_str().unwrap().to_owned(), d["Value"].clone()))
            .collect()
    };

    // HTTP APIs (v2) publish 4xx and 5xx by ApiId, not REST's 5XXError by ApiName.
    let server = alarm("ServerErrorAlarm");
    assert_eq!(
        (&server["Namespace"], &server["MetricName"]),
        (&"AWS/ApiGateway".into(), &"5xx".into())
    );
    let dims = dimensions(&server);
    assert_eq!(dims.len(), 1);
    assert_eq!((dims[0].0.as_str(), ref_to(&dims[0].1)), ("ApiId", Some("HttpApi")));
    assert_eq!(server["Statistic"], "Sum");
    assert_eq!(ref_to(&server["Threshold"]), Some("ServerErrorAlarmThreshold"));
    assert_eq!(server["ComparisonOperator"], "GreaterThanThreshold");

    // The counter has no labels: an alarm with dimensions would watch a metric nobody writes.
    let reuse = alarm("RefreshReuseAlarm");
    assert_eq!(
        call(&reuse["Namespace"], "Sub").and_then(Value::as_str),
        Some(METRICS_NAMESPACE)
    );
    assert_eq!(reuse["MetricName"], "RefreshReuse");
    assert!(dimensions(&reuse).is_empty(), "RefreshReuse has no dimensions");
    assert_eq!(reuse["Statistic"], "Sum");
    assert_eq!(ref_to(&reuse["Threshold"]), Some("ReuseAlarmThreshold"));
    assert_eq!(reuse["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    let parameter = &template["Parameters"]["ReuseAlarmThreshold"];
    assert_eq!(
        (parameter["Type"].as_str(), parameter["Default"].as_u64()),
        (Some("Number"), Some(5))
    );

    let dead_letters = alarm("MailDeadLetterAlarm");
    assert_eq!(dead_letters["Namespace"], "AWS/SQS");
    assert_eq!(dead_letters["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(dead_letters["Statistic"], "Maximum");
    let dims = dimensions(&dead_letters);
    assert_eq!(dims[0].0, "QueueName");
    assert_eq!(
        call(&dims[0].1, "GetAtt").and_then(Value::as_str),
        Some("MailDeadLetterQueue.QueueName")
    );

    let cleanup = alarm("CleanupErrorAlarm");
    assert_eq!(
        (&cleanup["Namespace"], &cleanup["MetricName"]),
        (&"AWS/Lambda".into(), &"Errors".into())
    );
    let dims = dimensions(&cleanup);
    assert_eq!(
        (dims[0].0.as_str(), ref_to(&dims[0].1)),
        ("FunctionName", Some("TokenCleanupFunction"))
    );
    let cleanup_function = function_building(&template, "token-cleanup");
    assert_eq!(
        ref_to(&cleanup_function["Properties"]["Events"]["Schedule"]["Properties"]["ScheduleExpression"]),
        Some("CleanupSchedule")
    );

    // Account-wide: no keygate function reserves concurrency, so the shared pool is what throttles them.
    let throttles = alarm("ThrottleAlarm");
    assert_eq!(
        (&throttles["Namespace"], &throttles["MetricName"]),
        (&"AWS/Lambda".into(), &"Throttles".into())
    );
    assert!(dimensions(&throttles).is_empty());
    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        assert!(
            function["Properties"]["ReservedConcurrentExecutions"].is_null(),
            "{id} reserves concurrency: the account-wide ThrottleAlarm no longer covers it"
        );
    }
    for id in [
        "ServerErrorAlarm",
        "MailDeadLetterAlarm",
        "CleanupErrorAlarm",
        "ThrottleAlarm",
    ] {
        let properties = alarm(id);
        assert_eq!(properties["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        if id != "ServerErrorAlarm" {
            assert_eq!(properties["Threshold"].as_u64(), Some(0), "{id}");
        }
    }
}

#[test]
fn the_mail_configuration_set_suppresses_bounces_and_complaints() {
    let template = template();
    let sets = resources_of(&template, "AWS::SES::ConfigurationSet");
    assert_eq!(sets.keys().collect::<Vec<_>>(), ["MailConfigurationSet"]);
    let reasons: BTreeSet<String> =
        strings(&sets["MailConfigurationSet"]["Properties"]["SuppressionOptions"]["SuppressedReasons"])
            .into_iter()
            .collect();
    assert_eq!(
        reasons,
        ["BOUNCE", "COMPLAINT"].map(str::to_owned).into_iter().collect()
    );
    assert_eq!(
        ref_to(&template["Outputs"]["MailConfigurationSetName"]["Value"]),
        Some("MailConfigurationSet")
    );
}

#[test]
fn only_the_mailer_sends_email_and_it_sends_with_the_configuration_set() {
    let template = template();
    let mut senders = Vec::new();
    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                if strings(&statement["Action"]).iter().any(|a| a.starts_with("ses:")) {
                    senders.push((id.clone(), statement.clone()));
                }
            }
        }
    }
    assert_eq!(senders.len(), 1, "{senders:?}");
    let (id, statement) = &senders[0];
    let mailer = function_building(&template, "mailer");
    assert_eq!(template["Resources"][id.as_str()], mailer);
    assert_eq!(strings(&statement["Action"]), ["ses:SendEmail"]);
    assert_eq!(
        ref_to(&statement["Condition"]["StringEquals"]["ses:FromAddress"]),
        Some("MailFrom")
    );

    // SES v2 authorizes SendEmail on the configuration set too: without it every send is AccessDenied.
    let resources: Vec<String> = statement["Resource"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| call(r, "Sub").and_then(Value::as_str).unwrap_or_default().to_owned())
        .collect();
    assert!(resources.iter().any(|r| r.ends_with(":identity/*")), "{resources:?}");
    assert!(
        resources
            .iter()
            .any(|r| r.ends_with(":configuration-set/${MailConfigurationSet}")),
        "{resources:?}"
    );

    let variables = &mailer["Properties"]["Environment"]["Variables"];
    assert_eq!(
        ref_to(&variables["KEYGATE_SES_CONFIGURATION_SET"]),
        Some("MailConfigurationSet")
    );
}

#[test]
fn event_retention_and_the_other_settings_reach_every_function() {
    let template = template();
    let parameters = &template["Parameters"];
    let retention = &parameters["EventRetentionDays"];
    assert_eq!(retention["Type"], "Number");
    assert_eq!(
        [&retention["Default"], &retention["MinValue"], &retention["MaxValue"]].map(Value::as_u64),
        [Some(90), Some(1), Some(3650)]
    );
    let notify = &parameters["NotifyNewDevice"];
    assert_eq!(notify["Default"], "true");
    assert_eq!(strings(&notify["AllowedValues"]), ["true", "false"]);

    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        ref_to(&globals["KEYGATE_EVENT_RETENTION_DAYS"]),
        Some("EventRetentionDays")
    );
    assert_eq!(ref_to(&globals["KEYGATE_NOTIFY_NEW_DEVICE"]), Some("NotifyNewDevice"));
    assert_eq!(
        call(&globals["KEYGATE_METRICS_NAMESPACE"], "Sub").and_then(Value::as_str),
        Some(METRICS_NAMESPACE)
    );
    // A function's own Variables are merged over the Globals: none may shadow these.
    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        let own = &function["Properties"]["Environment"]["Variables"];
        for name in [
            "KEYGATE_EVENT_RETENTION_DAYS",
            "KEYGATE_NOTIFY_NEW_DEVICE",
            "KEYGATE_METRICS_NAMESPACE",
        ] {
            assert!(own[name].is_null(), "{id} overrides {name}");
        }
    }
}

/// Every KEYGATE_ variable the template sets is one the code reads: a misspelt name would silently leave the
/// default in force.
#[test]
fn every_variable_the_template_sets_is_read_by_the_code() {
    let template = template();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut collect = |variables: &Value| {
        for name in variables.as_mapping().into_iter().flat_map(|m| m.keys()) {
            names.insert(name.as_str().unwrap().to_owned());
        }
    };
    collect(&template["Globals"]["Function"]["Environment"]["Variables"]);
    for function in resources_of(&template, "AWS::Serverless::Function").values() {
        collect(&function["Properties"]["Environment"]["Variables"]);
    }
    assert!(names.len() >= 30, "{names:?}");
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    let mut dirs = vec![std::path::PathBuf::from(format!("{root}/shared/src"))];
    for entry in std::fs::read_dir(format!("{root}/functions")).unwrap() {
        dirs.push(entry.unwrap().path().join("src"));
    }
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    for name in &names {
        assert!(name.starts_with("KEYGATE_"), "{name}");
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "the template sets {name}, which no code reads"
        );
    }
}

/// What `!Sub` makes of `text`, with every `${Name}` replaced by `value(Name)`; `${!Literal}` stays `${Literal}`.
fn substitute(text: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|i| start + i).expect("an unclosed ${");
        let name = &rest[start + 2..end];
        match name.strip_prefix('!') {
            Some(literal) => out.push_str(&format!("${{{literal}}}")),
            None => out.push_str(&value(name)),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The metric schema and the MetricName of a `SEARCH('{namespace,dim,...} MetricName="Name"', ...)` expression.
fn search_schema(expression: &str) -> (Vec<String>, String) {
    let inner = expression
        .strip_prefix("SEARCH('")
        .unwrap_or_else(|| panic!("not a SEARCH: {expression}"));
    let open = inner.find('{').unwrap();
    let close = inner.find('}').unwrap();
    let schema = inner[open + 1..close]
        .split(',')
        .map(|part| part.trim().trim_matches('"').to_owned())
        .collect();
    let name = inner
        .split("MetricName=\"")
        .nth(1)
        .and_then(|after| after.split('"').next())
        .unwrap_or_else(|| panic!("no MetricName in {expression}"))
        .to_owned();
    (schema, name)
}

#[test]
fn the_dashboard_is_valid_json_and_shows_every_counter() {
    let template = template();
    let dashboard = &template["Resources"]["Dashboard"];
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    let body = call(&dashboard["Properties"]["DashboardBody"], "Sub")
        .and_then(Value::as_str)
        .expect("DashboardBody is a !Sub string");

    // Every placeholder names a pseudo parameter, a parameter or a resource (with an attribute), as !Sub needs.
    let parameters = template["Parameters"].as_mapping().unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let resolved = substitute(body, |name| {
        if let Some(parameter) = parameters.get(name) {
            return match parameter["Type"].as_str() {
                Some("Number") => parameter["Default"].as_u64().unwrap().to_string(),
                _ => "param".to_owned(),
            };
        }
        let logical = name.split('.').next().unwrap();
        if name.starts_with("AWS::") {
            return "x".to_owned();
        }
        assert!(
            resources.contains_key(logical),
            "${{{name}}} in the dashboard names nothing in the template"
        );
        // A resource stands for itself, so the checks below can tell which one a widget shows.
        name.to_owned()
    });
    let body: serde_json::Value = serde_json::from_str(&resolved).unwrap_or_else(|e| panic!("{e}: {resolved}"));
    let namespace = "keygate/x";

    // Metric name → the dimension names it is shown by, per namespace.
    let mut shown: BTreeMap<(String, String), BTreeSet<Vec<String>>> = BTreeMap::new();
    let widgets = body["widgets"].as_array().unwrap();
    for widget in widgets {
        for key in ["x", "y", "width", "height"] {
            assert!(widget[key].is_u64(), "{key} of {widget}");
        }
        if widget["type"] != "metric" {
            continue;
        }
        assert_eq!(widget["properties"]["region"], "x", "{widget}");
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            let line = line.as_array().unwrap();
            if let Some(expression) = line[0]["expression"].as_str() {
                let (schema, name) = search_schema(expression);
                shown
                    .entry((schema[0].clone(), name))
                    .or_default()
                    .insert(schema[1..].to_vec());
                continue;
            }
            // [namespace, name, dimension, value, ..., {options}]
            let parts: Vec<&str> = line.iter().filter_map(|p| p.as_str()).collect();
            let dimensions = parts[2..].chunks(2).map(|pair| pair[0].to_owned()).collect();
            shown
                .entry((parts[0].to_owned(), parts[1].to_owned()))
                .or_default()
                .insert(dimensions);
        }
    }
    let expect = |ns: &str, name: &str, dimensions: &[&str]| {
        let by = shown
            .get(&(ns.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("the dashboard does not show {ns} {name}; it shows {:?}", shown.keys()));
        let wanted: Vec<String> = dimensions.iter().map(|d| (*d).to_owned()).collect();
        assert!(
            by.contains(&wanted),
            "{ns} {name} is shown by {by:?}, not by {wanted:?}"
        );
    };
    expect(namespace, "SignIn", &["method", "outcome"]);
    expect(namespace, "CleanupDeleted", &["kind"]);
    expect(namespace, "IdpError", &["provider"]);
    for counter in [
        "MfaChallenge",
        "MfaFailure",
        "RateLimited",
        "BackoffRefused",
        "RefreshReuse",
        "MailQueued",
        "MailSent",
        "MailFailed",
    ] {
        expect(namespace, counter, &[]);
    }
    expect("AWS/ApiGateway", "5xx", &["ApiId"]);
    expect("AWS/ApiGateway", "4xx", &["ApiId"]);
    expect("AWS/Lambda", "Throttles", &[]);
    expect("AWS/Lambda", "Errors", &["FunctionName"]);
    expect("AWS/SQS", "ApproximateNumberOfMessagesVisible", &["QueueName"]);
    // No namespace but the counters' own and AWS's.
    for (ns, name) in shown.keys() {
        assert!(ns == namespace || ns.starts_with("AWS/"), "{ns} {name}");
    }

    // The API's answers are this API's, and the failed cleanup runs are token-cleanup's.
    let lines: Vec<&serde_json::Value> = widgets
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .collect();
    for (metric, value) in [
        ("5xx", "HttpApi"),
        ("4xx", "HttpApi"),
        ("Errors", "TokenCleanupFunction"),
    ] {
        assert!(
            lines.iter().any(|l| l[1] == metric && l[3] == value),
            "no {metric} of {value}"
        );
    }

    // The alarm widget lists every alarm.
    let listed: BTreeSet<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let alarms: BTreeSet<String> = resources_of(&template, "AWS::CloudWatch::Alarm")
        .into_keys()
        .map(|id| format!("{id}.Arn"))
        .collect();
    assert_eq!(listed, alarms);
    let url = call(&template["Outputs"]["DashboardUrl"]["Value"], "Sub").and_then(Value::as_str);
    assert!(
        url.is_some_and(|u| u.ends_with("#dashboards/dashboard/${Dashboard}")),
        "{url:?}"
    );
    assert_eq!(
        ref_to(&template["Outputs"]["DashboardName"]["Value"]),
        Some("Dashboard")
    );
}

/// The functions that run argon2 (a sign-in with a password or a client secret, or a new password).
const ARGON2: [&str; 11] = [
    "auth-register",
    "auth-login",
    "auth-login-root",
    "auth-login-service",
    "auth-change-password",
    "auth-password-reset",
    "auth-admin-set-password",
    "auth-me-delete",
    "accounts-create-service",
    "auth-invitations-accept",
    "oauth-token",
];

/// argon2 needs its 19 MiB and a full vCPU's share (1024 MB in Lambda), and its speed under fat LTO depends on the
/// binary crate's own opt-level: at "s" it runs 1.4 to 3 times slower (`make bench`, argon2 floor).
#[test]
fn every_function_that_runs_argon2_gets_1024_mb_and_opt_level_3() {
    let template = template();
    let manifest = std::fs::read_to_string(format!("{}/../Cargo.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for binary in ARGON2 {
        let function = function_building(&template, binary);
        assert_eq!(function["Properties"]["MemorySize"].as_i64(), Some(1024), "{binary}");
        let wanted = format!("[profile.release.package.{binary}]\nopt-level = 3\n");
        assert!(manifest.contains(&wanted), "Cargo.toml needs {wanted:?}");
    }
    let big: Vec<String> = resources_of(&template, "AWS::Serverless::Function")
        .into_values()
        .filter(|f| f["Properties"]["MemorySize"].as_i64() == Some(1024))
        .filter_map(|f| f["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned))
        .collect();
    for binary in big {
        assert!(
            ARGON2.contains(&binary.as_str()),
            "{binary} has 1024 MB but runs no argon2"
        );
    }
}
