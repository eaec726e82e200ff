//! A software passkey for the tests: a P-256 key (aws-lc-rs) that answers `navigator.credentials.create` and
//! `.get` options the way a platform authenticator does, with a resident credential (so usernameless sign-in
//! works) and flags and a counter the tests set. What it signs is exactly what WebAuthn defines: the attestation
//! object (`fmt: "none"`) with the attested credential data, and assertions over `authenticatorData ‖
//! SHA-256(clientDataJSON)`.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// The origin `make test` allows (`KEYGATE_APP_URL`).
pub const ORIGIN: &str = "http://localhost:5173";

/// One credential on a software authenticator.
pub struct SoftPasskey {
    /// The origin the "browser" reports in clientDataJSON.
    pub origin: String,
    /// The RP id the authenticator hashes into authenticatorData.
    pub rp_id: String,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The user handle stored with the resident credential (the user id the options named).
    pub user_handle: Vec<u8>,
    /// The signature counter sent next (0: a synced passkey, which does not count).
    pub counter: u32,
    /// Whether the authenticator says it verified the user.
    pub user_verified: bool,
    /// Whether the credential is a synced (backup eligible, backed up) passkey.
    pub synced: bool,
    key: EcdsaKeyPair,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest(&SHA256, bytes).as_ref().to_vec()
}

impl SoftPasskey {
    /// A new credential for the user that creation `options` (`{"publicKey": ...}`) name.
    pub fn new(options: &Value) -> Self {
        let public_key = &options["publicKey"];
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).unwrap();
        Self {
            origin: ORIGIN.to_owned(),
            rp_id: public_key["rp"]["id"].as_str().unwrap().to_owned(),
            credential_id,
            user_handle: B64.decode(public_key["user"]["id"].as_str().unwrap()).unwrap(),
            counter: 0,
            user_verified: true,
            synced: true,
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap(),
        }
    }

    /// The credential id as browsers show it.
    pub fn id(&self) -> String {
        B64.encode(&self.credential_id)
    }

    /// What `navigator.credentials.create(options)` returns, as `toJSON()` gives it.
    pub fn attest(&self, options: &Value) -> Value {
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": options["publicKey"]["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string();
        let point = self.key.public_key().as_ref();
        let cose = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]));
        let mut auth_data = self.auth_data(AT);
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&u16::try_from(self.credential_id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&serde_cbor_2::to_vec(&cose).unwrap());
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(serde_cbor_2::to_vec(&attestation).unwrap()),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "transports": ["internal"],
            },
            "clientExtensionResults": { "credProps": { "rk": true } },
        })
    }

    /// What `navigator.credentials.get(options)` returns, with the user handle of a resident credential.
    pub fn assert(&self, options: &Value) -> Value {
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": options["publicKey"]["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string();
        let auth_data = self.auth_data(0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }

    fn auth_data(&self, extra: u8) -> Vec<u8> {
        let mut flags = UP | extra;
        if self.user_verified {
            flags |= UV;
        }
        if self.synced {
            flags |= BE | BS;
        }
        let mut data = sha256(self.rp_id.as_bytes());
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }
}
