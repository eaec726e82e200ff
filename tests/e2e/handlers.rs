//! Handler tests: real API Gateway HTTP API (v2) event JSON, through lambda_http's conversion, straight into the
//! function crates' `handle`, as Lambda would call them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keygate_e2e::{TestApp, PASSWORD};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn login_event_with_a_base64_body() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let body = STANDARD.encode(format!(r#"{{"email": "{email}", "password": "{PASSWORD}"}}"#));
    let event =
        fixture("apigw_v2_login.json").replace("eyJlbWFpbCI6ICJFTUFJTCIsICJwYXNzd29yZCI6ICJQQVNTV09SRCJ9", &body);
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = auth_login::handle(&app.state, request).await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();

    // The session recorded API Gateway's sourceIp and the User-Agent, not X-Forwarded-For guesses.
    let session = app
        .items(&format!("SESSION#{}", tokens["session_id"].as_str().unwrap()))
        .await;
    assert_eq!(session[0]["ip"].as_s().unwrap(), "203.0.113.7");
    assert!(session[0]["user_agent"].as_s().unwrap().contains("Firefox"));
    assert!(session[0].contains_key("secret_hash"));
    assert!(
        !format!("{:?}", session[0]).contains(tokens["refresh_token"].as_str().unwrap().rsplit('.').next().unwrap())
    );

    let me = fixture("apigw_v2_me.json").replace("TOKEN", tokens["access_token"].as_str().unwrap());
    let response = auth_me::handle(&app.state, lambda_http::request::from_str(&me).unwrap()).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn error_events_carry_api_gateways_request_id() {
    let app = TestApp::spawn().await;
    let event = fixture("apigw_v2_login.json").replace(
        "eyJlbWFpbCI6ICJFTUFJTCIsICJwYXNzd29yZCI6ICJQQVNTV09SRCJ9",
        &STANDARD.encode("{"),
    );
    let response = auth_login::handle(&app.state, lambda_http::request::from_str(&event).unwrap()).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["request_id"], "XyZ1AbCdIAMEV-w=");
    assert_eq!(body["error"]["code"], "malformed_json");
    let me = fixture("apigw_v2_me.json");
    let response = auth_me::handle(&app.state, lambda_http::request::from_str(&me).unwrap()).await;
    assert_eq!(response.status(), 401);
}
