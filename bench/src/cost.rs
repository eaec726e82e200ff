//! What the measured functions would cost on AWS: per million requests of each, and per 10,000 monthly active users
//! under a stated activity profile, beside Amazon Cognito's per-MAU prices. An estimate from list prices, so that
//! a team choosing between keygate and a managed service can check every figure.

use std::collections::BTreeMap;

/// List prices in US dollars, us-east-1, and where they come from.
#[derive(Debug, Clone, Copy)]
pub struct Prices {
    /// When these prices were read.
    pub as_of: &'static str,
    /// Lambda, per request.
    pub lambda_request: f64,
    /// Lambda on arm64, per GB-second (first tier).
    pub lambda_gb_second: f64,
    /// DynamoDB on-demand, Standard table class, per read request unit.
    pub read_unit: f64,
    /// DynamoDB on-demand, Standard table class, per write request unit.
    pub write_unit: f64,
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub http_api_request: f64,
    /// SQS standard, per request (64 KB chunks).
    pub sqs_request: f64,
    /// SES, per outbound email.
    pub ses_email: f64,
    /// Cognito user pools, per MAU above the free 10,000: Lite, Essentials, Plus (Plus has no free tier).
    pub cognito_per_mau: [(&'static str, f64, u64); 3],
}

/// The prices the report uses. Lambda from the AWS pricing page's worked examples; DynamoDB after the
/// November 2024 on-demand price cut; Cognito's tiers from November 2024. Re-check them against the AWS Price
/// List API before quoting a figure.
pub const PRICES: Prices = Prices {
    as_of: "2026-12-06",
    lambda_request: 0.20 / 1e6,
    lambda_gb_second: 0.000_013_333_4,
    read_unit: 0.125 / 1e6,
    write_unit: 0.625 / 1e6,
    http_api_request: 1.00 / 1e6,
    sqs_request: 0.40 / 1e6,
    ses_email: 0.10 / 1e3,
    cognito_per_mau: [
        ("Lite", 0.0055, 10_000),
        ("Essentials", 0.015, 10_000),
        ("Plus", 0.02, 0),
    ],
};

/// Read and write request units of `n` calls of one DynamoDB operation on keygate's paths. Every item keygate
/// reads or writes on them is under 1 KB, so a strongly consistent read of one item is one read unit and a write
/// one write unit (plus one for the `expiry` index, which sessions, codes and counters carry); a transaction
/// costs twice. A BatchGetItem reads two items and a TransactWriteItems writes three on these paths.
pub fn units(operation: &str, n: u64) -> (f64, f64) {
    let n = n as f64;
    match operation {
        "GetItem" | "Query" => (n, 0.0),
        "BatchGetItem" => (2.0 * n, 0.0),
        "TransactGetItems" => (4.0 * n, 0.0),
        "PutItem" | "UpdateItem" | "DeleteItem" => (0.0, 2.0 * n),
        "TransactWriteItems" => (0.0, 2.0 * 3.0 * 2.0 * n),
        "BatchWriteItem" => (0.0, 2.0 * 2.0 * n),
        _ => (n, n),
    }
}

/// One function as measured: what one request of it costs.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its name in the report.
    pub name: String,
    /// Configured memory (template.yaml).
    pub memory_mb: u32,
    /// Warm duration, median.
    pub warm_ms: f64,
    /// A cold start's extra billed time (init, since August 2025 billed for managed runtimes and custom ones alike).
    pub cold_extra_ms: f64,
    /// DynamoDB calls of one request, by operation.
    pub calls: BTreeMap<String, u64>,
    /// SQS messages one request queues (each is a mail: the mailer's SES send counts too).
    pub mails: f64,
    /// Whether API Gateway bills the request (not for the authorizer, which runs inside another route's request).
    pub through_api: bool,
}

/// Dollars per million requests, by service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PerMillion {
    /// Lambda requests and GB-seconds (the mailer's share included for mail).
    pub lambda: f64,
    /// DynamoDB request units.
    pub dynamodb: f64,
    /// API Gateway.
    pub api: f64,
    /// SQS and SES for the mail the request queues.
    pub mail: f64,
}

impl PerMillion {
    /// All services.
    pub fn total(&self) -> f64 {
        self.lambda + self.dynamodb + self.api + self.mail
    }
}

impl Function {
    /// The bill for a million requests, `cold_share` of them cold starts.
    pub fn per_million(&self, prices: &Prices, cold_share: f64) -> PerMillion {
        // Lambda bills whole milliseconds.
        let billed_ms = self.warm_ms.ceil() + cold_share * self.cold_extra_ms.ceil();
        let gb_seconds = f64::from(self.memory_mb) / 1024.0 * billed_ms / 1000.0;
        let (reads, writes) = self
            .calls
            .iter()
            .map(|(operation, n)| units(operation, *n))
            .fold((0.0, 0.0), |(r, w), (dr, dw)| (r + dr, w + dw));
        // A queued mail: SendMessage, the mailer's receive and delete (batched by the event source, counted as
        // one each), one mailer invocation of ~100 ms at 256 MB, and the SES send.
        let mailer = prices.lambda_request + 0.25 * 0.1 * prices.lambda_gb_second;
        let mail = self.mails * (3.0 * prices.sqs_request + prices.ses_email + mailer);
        let million = 1e6;
        PerMillion {
            lambda: million * (prices.lambda_request + gb_seconds * prices.lambda_gb_second),
            dynamodb: million * (reads * prices.read_unit + writes * prices.write_unit),
            api: if self.through_api {
                million * prices.http_api_request
            } else {
                0.0
            },
            mail: million * mail,
        }
    }
}

/// How often an active user makes each request in a month: the profile the per-MAU figure assumes.
pub const PROFILE: &[(&str, f64, &str)] = &[
    (
        "auth-login",
        4.0,
        "password sign-ins (a new device, or a session past its end)",
    ),
    (
        "auth-refresh",
        120.0,
        "refreshes: 20 active days, 6 a day (15-minute access tokens)",
    ),
    ("auth-me", 20.0, "profile reads, one per active day"),
    (
        "authorizer (JWT)",
        1_000.0,
        "calls to your API through the keygate authorizer (decisions are not cached)",
    ),
];

/// Dollars a month for `users` monthly active users under [`PROFILE`], from the functions' per-million figures.
pub fn per_users(functions: &[(Function, PerMillion)], users: f64) -> f64 {
    PROFILE
        .iter()
        .filter_map(|(name, per_user, _)| {
            functions
                .iter()
                .find(|(f, _)| f.name == *name)
                .map(|(_, cost)| cost.total() * per_user * users / 1e6)
        })
        .sum()
}

/// Cognito's monthly bill for `users` MAU on each tier.
pub fn cognito(prices: &Prices, users: u64) -> Vec<(&'static str, f64)> {
    prices
        .cognito_per_mau
        .iter()
        .map(|(tier, per_mau, free)| (*tier, users.saturating_sub(*free) as f64 * per_mau))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Function {
        Function {
            name: "auth-login".into(),
            memory_mb: 1024,
            warm_ms: 25.2,
            cold_extra_ms: 60.0,
            calls: [("GetItem".to_owned(), 1), ("TransactWriteItems".to_owned(), 1)].into(),
            mails: 0.0,
            through_api: true,
        }
    }

    #[test]
    fn a_million_logins_cost_what_the_prices_say() {
        let cost = login().per_million(&PRICES, 0.0);
        // 26 ms billed at 1 GB: 0.026 GB-s each.
        assert!(
            (cost.lambda - (0.20 + 26_000.0 * 0.000_013_333_4)).abs() < 1e-6,
            "{cost:?}"
        );
        // One read unit and twelve write units a request.
        assert!((cost.dynamodb - (0.125 + 12.0 * 0.625)).abs() < 1e-9, "{cost:?}");
        assert!((cost.api - 1.0).abs() < 1e-12);
        assert_eq!(cost.mail, 0.0);
    }

    #[test]
    fn cold_starts_and_mail_add_to_the_bill() {
        let warm = login().per_million(&PRICES, 0.0);
        let cold = login().per_million(&PRICES, 0.01);
        assert!(cold.lambda > warm.lambda);
        let mailing = Function { mails: 1.0, ..login() }.per_million(&PRICES, 0.0);
        assert!(mailing.mail > 100.0, "SES alone is $100 a million: {mailing:?}");
    }

    #[test]
    fn cognito_bills_only_past_its_free_tier() {
        let bill = cognito(&PRICES, 10_000);
        assert_eq!(bill[0], ("Lite", 0.0));
        assert!((cognito(&PRICES, 20_000)[1].1 - 150.0).abs() < 1e-9);
        assert!((bill[2].1 - 200.0).abs() < 1e-9);
    }

    #[test]
    fn the_profile_sums_each_function_by_its_share() {
        let cost = PerMillion {
            lambda: 1.0,
            ..PerMillion::default()
        };
        let rows = vec![(login(), cost)];
        // Only login is given: 4 a month for 10,000 users is 40,000 requests, $1 a million.
        assert!((per_users(&rows, 10_000.0) - 0.04).abs() < 1e-12);
    }
}
