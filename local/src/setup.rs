//! Prepares the local AWS services: the table from template.yaml's own definition, the signing keys and their
//! public key set through the rotation code, the SES sender identity and the mail outbox queue. Safe to run again.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `Properties` of the `AWS::DynamoDB::Table` resource in a SAM template.
pub fn table_properties(template: &str) -> Result<Value, BoxError> {
    let template: Value = serde_yaml::from_str(template)?;
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or("template has no Resources")?;
    resources
        .values()
        .find(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .and_then(|r| r.get("Properties"))
        .cloned()
        .ok_or_else(|| "template has no AWS::DynamoDB::Table".into())
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>, BoxError> {
    let mut elements = Vec::new();
    for element in value.as_sequence().ok_or("KeySchema is not a list")? {
        elements.push(
            KeySchemaElement::builder()
                .attribute_name(
                    element
                        .get("AttributeName")
                        .and_then(Value::as_str)
                        .ok_or("AttributeName")?,
                )
                .key_type(KeyType::from(
                    element.get("KeyType").and_then(Value::as_str).ok_or("KeyType")?,
                ))
                .build()?,
        );
    }
    Ok(elements)
}

/// Creates the table as template.yaml defines it, unless it exists, and turns on TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, template: &str) -> Result<(), BoxError> {
    let properties = table_properties(template)?;
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for definition in properties
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or("AttributeDefinitions")?
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(
                    definition
                        .get("AttributeName")
                        .and_then(Value::as_str)
                        .ok_or("AttributeName")?,
                )
                .attribute_type(ScalarAttributeType::from(
                    definition
                        .get("AttributeType")
                        .and_then(Value::as_str)
                        .ok_or("AttributeType")?,
                ))
                .build()?,
        );
    }
    request = request.set_key_schema(Some(key_schema(properties.get("KeySchema").ok_or("KeySchema")?)?));
    for index in properties
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let projection = index
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(Value::as_str)
            .unwrap_or("ALL");
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.get("IndexName").and_then(Value::as_str).ok_or("IndexName")?)
                .set_key_schema(Some(key_schema(index.get("KeySchema").ok_or("index KeySchema")?)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection))
                        .build(),
                )
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => println!("created table {name}"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            println!("table {name} exists");
        }
        Err(err) => return Err(err.into()),
    }
    if let Some(ttl) = properties.get("TimeToLiveSpecification") {
        let attribute = ttl
            .get("AttributeName")
            .and_then(Value::as_str)
            .ok_or("TTL AttributeName")?;
        let result = client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await;
        if let Err(err) = result {
            // Already enabled is fine; anything else is worth a line.
            println!("time to live: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
        }
    }
    Ok(())
}

/// Creates the private key secret and the public-key secret if needed. When the private one holds no keys yet,
/// rotates it with the same code the rotation Lambda runs, which also publishes the public key set; otherwise
/// publishes that set again, so a stack set up before the public-key secret existed gets one.
pub async fn ensure_signing_key(
    client: &aws_sdk_secretsmanager::Client,
    secrets: keygate::rotation::Secrets<'_>,
) -> Result<(), BoxError> {
    for (secret_id, description) in [
        (secrets.private, "keygate JWT signing keys"),
        (secrets.public, "keygate public signing keys (JWKS)"),
    ] {
        match client
            .create_secret()
            .name(secret_id)
            .description(description)
            .send()
            .await
        {
            Ok(_) => println!("created secret {secret_id}"),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if keygate::keys::fetch_stage(client, secrets.private, "AWSCURRENT", None)
        .await?
        .is_some()
    {
        keygate::rotation::publish(client, secrets).await?;
        println!("signing keys present");
        return Ok(());
    }
    let token = keygate::secret::random_b64(24);
    keygate::rotation::rotate_now(client, secrets, &token).await?;
    println!("stored new signing keys");
    Ok(())
}

/// Creates the second-factor data key secret with a random key if it does not exist, as the stack's
/// `SecondFactorKeySecret` does in AWS. An existing one is kept: replacing it would strand every sealed secret.
pub async fn ensure_mfa_key(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> Result<(), BoxError> {
    match client
        .create_secret()
        .name(secret_id)
        .description("keygate second-factor data key")
        .secret_string(keygate::mfa::data_key::new_secret_string())
        .send()
        .await
    {
        Ok(_) => println!("created secret {secret_id}"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Verifies the sender identity in SES (moto accepts it at once).
pub async fn verify_sender(client: &aws_sdk_sesv2::Client, from: &str) -> Result<(), BoxError> {
    match client.create_email_identity().email_identity(from).send().await {
        Ok(_) => println!("verified sender {from}"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Creates the mail outbox queue `queue_url` names (its last path segment), with a dead-letter queue after 5
/// receives as in template.yaml, and checks that the local service gives the queue exactly that URL.
pub async fn create_mail_queue(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(), BoxError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = queue_url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or("KEYGATE_MAIL_QUEUE_URL names no queue")?;
    let dead_letters = client.create_queue().queue_name(format!("{name}-dlq")).send().await?;
    let arn = client
        .get_queue_attributes()
        .set_queue_url(dead_letters.queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or("the dead-letter queue has no ARN")?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": 5 }).to_string();
    let created = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await?;
    match created.queue_url() {
        Some(url) if url == queue_url => {
            println!("mail queue {url}");
            Ok(())
        }
        other => Err(format!("the mail queue's URL is {other:?}, but KEYGATE_MAIL_QUEUE_URL is {queue_url}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table_from_the_real_template() {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let properties = table_properties(&template).unwrap();
        let keys = key_schema(properties.get("KeySchema").unwrap()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].attribute_name(), "pk");
        assert_eq!(
            properties["TimeToLiveSpecification"]["AttributeName"].as_str(),
            Some("expires_at"),
        );
    }
}
