//! DynamoDB access: one module per entity, all in one table keyed by `pk`/`sk` with TTL on `expires_at`.

pub mod accounts;
pub mod api_tokens;
pub mod ceremonies;
pub mod cleanup;
pub mod codes;
pub mod databases;
pub mod events;
pub mod identities;
pub mod invitations;
pub mod login_failures;
pub mod magic_links;
pub mod mail_sent;
pub mod mfa_challenges;
pub mod passkeys;
pub mod rate_limits;
pub mod scoped_tokens;
pub mod second_factors;
pub mod sessions;
pub mod tenants;
pub mod users;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::UnixTime;
use crate::Error;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The table and the client that reaches it.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// A store over `table`.
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A strongly consistent GetItem, decoded.
    pub(crate) async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::dependency("dynamodb GetItem", e))?;
        output.item.map(decode).transpose()
    }

    /// A strongly consistent BatchGetItem of a few keys: each key's item in the key's place, `None` where there is
    /// none. DynamoDB answers in no particular order, so items are matched to keys by their `pk` and `sk`; and it
    /// refuses a request that names a key twice, so a repeated key is asked for once and answered in each place.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Option<Item>>, Error> {
        let mut unique: Vec<Item> = Vec::with_capacity(keys.len());
        for key in &keys {
            if !unique.contains(key) {
                unique.push(key.clone());
            }
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(unique))
            .consistent_read(true)
            .build()
            .map_err(|e| Error::dependency("dynamodb BatchGetItem request", e))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| Error::dependency("dynamodb BatchGetItem", e))?;
        let unprocessed = output.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty());
        if unprocessed {
            // Only under throttling; a partial answer must not look like "not found".
            return Err(Error::dependency(
                "dynamodb BatchGetItem",
                std::io::Error::other("unprocessed keys"),
            ));
        }
        let found = output
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        let same = |key: &Item, item: &Item| key.get("pk") == item.get("pk") && key.get("sk") == item.get("sk");
        Ok(keys
            .iter()
            .map(|key| found.iter().find(|item| same(key, item)).cloned())
            .collect())
    }

    /// Every item of one GSI1 partition that passes `filter`, newest first (GSI1 sorts by creation time), with
    /// only the `attributes` named (all when none are). GSI reads are eventually consistent: for listings, never
    /// for decisions. One round trip per page.
    pub(crate) async fn query_gsi1<T: DeserializeOwned>(
        &self,
        partition: String,
        filter: &str,
        values: Vec<(&str, AttributeValue)>,
        attributes: &[&str],
    ) -> Result<Vec<T>, Error> {
        // By placeholder, so that no attribute name can collide with a reserved word.
        let names: Vec<String> = (0..attributes.len()).map(|at| format!("#a{at}")).collect();
        let projection = (!attributes.is_empty()).then(|| names.join(", "));
        let mut found = Vec::new();
        let mut start_key = None;
        // An owner has few items here; the bound only stops a pathological partition from looping.
        for _ in 0..10 {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :partition")
                .filter_expression(filter)
                .expression_attribute_values(":partition", s(partition.clone()))
                .scan_index_forward(false)
                .set_projection_expression(projection.clone())
                .set_exclusive_start_key(start_key);
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            for (placeholder, attribute) in names.iter().zip(attributes) {
                query = query.expression_attribute_names(placeholder, *attribute);
            }
            let output = query.send().await.map_err(|e| Error::dependency("dynamodb Query", e))?;
            for item in output.items.unwrap_or_default() {
                found.push(decode(item)?);
            }
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// An unconditional PutItem.
    /// Every item of partition `pk` whose sort key starts with `prefix`, strongly consistent (an owner's few
    /// passkeys or identities). One round trip per page.
    pub(crate) async fn query_prefix<T: DeserializeOwned>(&self, pk: &str, prefix: &str) -> Result<Vec<T>, Error> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::dependency("dynamodb Query", e))?;
            for item in output.items.unwrap_or_default() {
                found.push(decode(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    pub(crate) async fn put<T: Serialize>(&self, value: &T) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(value)?))
            .send()
            .await
            .map_err(|e| Error::dependency("dynamodb PutItem", e))?;
        Ok(())
    }

    /// A TransactWriteItems call. `Ok(false)` when a condition failed, so the caller decides what losing the race
    /// means.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, Error> {
        Ok(self.transact_outcome(items).await?.is_empty())
    }

    /// A TransactWriteItems call that says which items failed their condition: empty when it was written, else the
    /// positions (in `items`) of the failed conditions, so a caller can tell a taken marker from a lost race.
    pub(crate) async fn transact_outcome(&self, items: Vec<TransactWriteItem>) -> Result<Vec<usize>, Error> {
        self.transact_failing_on(items, &["ConditionalCheckFailed"]).await
    }

    /// A TransactWriteItems call where anything that stops it from applying is a lost race: `Ok(false)` when a
    /// condition failed, or when another transaction wrote the same items at that moment (`TransactionConflict`,
    /// which DynamoDB reports under contention and moto never does). For spending a single-use code, where two
    /// racing requests must give one success and one clean refusal.
    pub(crate) async fn transact_racing(&self, items: Vec<TransactWriteItem>) -> Result<bool, Error> {
        Ok(self
            .transact_failing_on(items, &["ConditionalCheckFailed", "TransactionConflict"])
            .await?
            .is_empty())
    }

    async fn transact_failing_on(&self, items: Vec<TransactWriteItem>, codes: &[&str]) -> Result<Vec<usize>, Error> {
        // DynamoDB refuses an empty transaction; nothing to write is written (a sign-in that only leaves its
        // backoff counted, say).
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            let reasons = match self.send_transaction(items.clone()).await? {
                None => return Ok(Vec::new()),
                Some(reasons) => reasons,
            };
            let failed: Vec<usize> = reasons
                .iter()
                .enumerate()
                .filter(|(_, code)| code.as_deref().is_some_and(|code| codes.contains(&code)))
                .map(|(index, _)| index)
                .collect();
            if !failed.is_empty() {
                return Ok(failed);
            }
            // Another transaction held one of the items: nothing was written, and sending the same items again is
            // the same as having sent them a moment later. Without this, a caller that holds the password could
            // keep a password change failing by signing in (their transactions check the user item) at the time.
            let conflict = reasons
                .iter()
                .any(|code| code.as_deref() == Some("TransactionConflict"));
            if !conflict || attempt == CONFLICT_RETRIES {
                return Err(Error::dependency(
                    "dynamodb TransactWriteItems",
                    std::io::Error::other(format!("cancelled: {reasons:?}")),
                ));
            }
            attempt += 1;
            let jitter = rand::random::<u64>() % 20;
            tokio::time::sleep(std::time::Duration::from_millis(20 * attempt + jitter)).await;
        }
    }

    /// Sends one TransactWriteItems: `None` when it was written, else the cancellation reason of each item (in the
    /// order of `items`; `None` for an item that did not stop it).
    async fn send_transaction(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<Option<String>>>, Error> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(None),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Ok(Some(
                cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code().filter(|code| *code != "None").map(str::to_owned))
                    .collect(),
            )),
            _ => Err(Error::dependency("dynamodb TransactWriteItems", err)),
        }
    }
}

/// How many times a transaction that lost to another one on the same items is sent again.
const CONFLICT_RETRIES: u64 = 2;

/// Seconds in one expiry bucket.
pub const EXPIRY_BUCKET_SECONDS: i64 = 3_600;

/// The expiry bucket of an item that expires at `expires_at` (DESIGN §6): the start of the hour it expires in.
/// Every item that expires carries it, indexed by the `expiry` GSI, so the scheduled cleanup queries the buckets
/// up to now instead of scanning the table.
pub fn expiry_bucket(expires_at: UnixTime) -> i64 {
    expires_at - expires_at.rem_euclid(EXPIRY_BUCKET_SECONDS)
}

/// The primary key of an item.
pub(crate) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Decodes an item with serde_dynamo.
pub(crate) fn decode<T: DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(|e| Error::dependency("decoding a dynamodb item", e))
}

/// Encodes an item with serde_dynamo.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value).map_err(|e| Error::dependency("encoding a dynamodb item", e))
}

/// Whether a single-item write failed its condition.
pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// The outcome of a conditional single-item write: `Ok(true)` when it happened, `Ok(false)` when its condition
/// failed (a lost race or an absent item, which callers answer with a clean 4xx), an error otherwise.
pub(crate) fn conditional<T, E, R>(result: Result<T, SdkError<E, R>>, what: &'static str) -> Result<bool, Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(Error::dependency(what, err)),
    }
}

/// Builds one transaction element, mapping the builder's missing-field error.
pub(crate) fn built<T, E: std::error::Error + Send + Sync + 'static>(result: Result<T, E>) -> Result<T, Error> {
    result.map_err(|e| Error::dependency("building a dynamodb request", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// DynamoDB's HTTP answers, canned: the next of `answers` (status, body) for each request, whose body is kept
    /// in `bodies`. moto never reports a TransactionConflict, so this is how the retry is exercised. (Not
    /// aws-smithy-http-client's `test-util`: it turns on serde_json's `preserve_order` for the whole workspace's
    /// test build, and the answers the e2e tests check would then differ from the deployed ones.)
    #[derive(Debug, Clone)]
    struct Canned {
        answers: Arc<Vec<(u16, &'static str)>>,
        bodies: Arc<Mutex<Vec<String>>>,
    }

    impl HttpConnector for Canned {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
            let mut bodies = self.bodies.lock().unwrap();
            bodies.push(body.unwrap_or_default());
            let (status, answer) = self.answers.get(bodies.len() - 1).copied().unwrap_or((200, "{}"));
            let response = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(answer));
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for Canned {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// A store whose DynamoDB answers with `answers` in turn, and the bodies of the requests it was sent.
    fn replying(answers: Vec<(u16, &'static str)>) -> (Store, Arc<Mutex<Vec<String>>>) {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let canned = Canned {
            answers: Arc::new(answers),
            bodies: bodies.clone(),
        };
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::for_tests(),
            ))
            .http_client(SharedHttpClient::new(canned))
            .build();
        (Store::new(aws_sdk_dynamodb::Client::new(&aws), "t".to_owned()), bodies)
    }

    fn calls(bodies: &Mutex<Vec<String>>) -> usize {
        bodies.lock().unwrap().len()
    }

    fn two_items() -> Vec<TransactWriteItem> {
        let check = |pk: &str| {
            let check = ConditionCheck::builder()
                .table_name("t")
                .set_key(Some(key(pk, "X")))
                .condition_expression("attribute_exists(pk)")
                .build()
                .unwrap();
            TransactWriteItem::builder().condition_check(check).build()
        };
        vec![check("A"), check("B")]
    }

    const CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"conflict"}]}"#;
    const CONDITION: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"ConditionalCheckFailed"},{"Code":"None"}]}"#;

    #[tokio::test]
    async fn a_transaction_that_lost_to_another_is_sent_again() {
        let (store, sent) = replying(vec![(400, CONFLICT), (400, CONFLICT), (200, "{}")]);
        assert_eq!(store.transact_outcome(two_items()).await.unwrap(), Vec::<usize>::new());
        assert_eq!(calls(&sent), 3);
    }

    #[tokio::test]
    async fn a_transaction_that_keeps_losing_is_an_error_after_three_tries() {
        let (store, sent) = replying(vec![(400, CONFLICT); 5]);
        assert!(store.transact_outcome(two_items()).await.is_err());
        assert_eq!(calls(&sent), 3);
    }

    #[tokio::test]
    async fn a_racing_transaction_treats_the_conflict_as_its_answer() {
        let (store, sent) = replying(vec![(400, CONFLICT), (200, "{}")]);
        assert!(!store.transact_racing(two_items()).await.unwrap());
        assert_eq!(calls(&sent), 1);
    }

    #[tokio::test]
    async fn a_failed_condition_is_answered_at_once_with_its_position() {
        let (store, sent) = replying(vec![(400, CONDITION), (200, "{}")]);
        assert_eq!(store.transact_outcome(two_items()).await.unwrap(), vec![0]);
        assert_eq!(calls(&sent), 1);
    }

    #[tokio::test]
    async fn a_key_asked_twice_is_sent_once_and_answered_in_both_places() {
        let answer =
            r#"{"Responses":{"t":[{"pk":{"S":"USER#a"},"sk":{"S":"PROFILE"},"n":{"N":"1"}}]},"UnprocessedKeys":{}}"#;
        let (store, sent) = replying(vec![(200, answer)]);
        let user = key("USER#a", "PROFILE");
        let other = key("USER#b", "PROFILE");
        let found = store.batch_get(vec![user.clone(), other, user]).await.unwrap();
        assert_eq!(calls(&sent), 1);
        let first = sent.lock().unwrap()[0].clone();
        assert_eq!(first.matches("USER#a").count(), 1, "{first}");
        assert!(found[0].is_some() && found[2].is_some(), "{found:?}");
        assert!(found[1].is_none(), "{found:?}");
    }
}
