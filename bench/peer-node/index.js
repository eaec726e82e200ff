// The peer: a login Lambda as teams usually write one in Node.js 20. AWS SDK v3 GetItem, @node-rs/argon2 verify,
// jsonwebtoken RS256 sign; the same table items, argon2 parameters and event as keygate's auth-login; and a
// plain Runtime API loop around the handler (what the managed nodejs20.x runtime does).
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { DynamoDBClient, GetItemCommand, PutItemCommand } = require("@aws-sdk/client-dynamodb");
const { SecretsManagerClient, GetSecretValueCommand } = require("@aws-sdk/client-secrets-manager");
const argon2 = require("@node-rs/argon2");
const jwt = require("jsonwebtoken");

const table = process.env.KEYGATE_TABLE;
const dynamo = new DynamoDBClient({});
const secrets = new SecretsManagerClient({});
let signingKey; // loaded once, on the first request, like most handlers do

async function key() {
  if (!signingKey) {
    const out = await secrets.send(
      new GetSecretValueCommand({ SecretId: process.env.KEYGATE_KEY_SECRET_ID, VersionStage: "AWSCURRENT" }),
    );
    const version = JSON.parse(out.SecretString);
    signingKey = version.signing || version; // keygate's key schedule: {signing, next}
  }
  return signingKey;
}

const reply = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json", "cache-control": "no-store" },
  body: JSON.stringify(body),
});

async function handler(event) {
  let body;
  try {
    const raw = event.isBase64Encoded ? Buffer.from(event.body || "", "base64").toString() : event.body;
    body = JSON.parse(raw || "");
  } catch {
    return reply(400, { error: { code: "malformed_json" } });
  }
  const email = String(body.email || "").trim().toLowerCase();
  const marker = await dynamo.send(
    new GetItemCommand({ TableName: table, Key: { pk: { S: `EMAIL#${email}` }, sk: { S: "USER" } }, ConsistentRead: true }),
  );
  let user;
  if (marker.Item) {
    const out = await dynamo.send(
      new GetItemCommand({
        TableName: table,
        Key: { pk: { S: `USER#${marker.Item.user_id.S}` }, sk: { S: "PROFILE" } },
        ConsistentRead: true,
      }),
    );
    user = out.Item;
  }
  const ok = user ? await argon2.verify(user.password_hash.S, String(body.password || "")) : false;
  if (!ok) return reply(401, { error: { code: "invalid_credentials" } });

  const k = await key();
  const now = Math.floor(Date.now() / 1000);
  const sid = crypto.randomBytes(16).toString("base64url");
  const secret = crypto.randomBytes(32).toString("base64url");
  await dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        pk: { S: `SESSION#${sid}` },
        sk: { S: "SESSION" },
        id: { S: sid },
        user_id: { S: user.id.S },
        secret_hash: { S: crypto.createHash("sha256").update(secret).digest("base64url") },
        created_at: { N: String(now) },
        expires_at: { N: String(now + 604800) },
      },
    }),
  );
  const accessToken = jwt.sign(
    { sub: user.id.S, sid, scope: "profile:read", amr: ["pwd"], jti: crypto.randomBytes(16).toString("base64url") },
    k.private_key_pem,
    { algorithm: "RS256", keyid: k.kid, expiresIn: 900, issuer: process.env.KEYGATE_ISSUER, audience: "keygate", header: { typ: "at+jwt" } },
  );
  return reply(200, {
    access_token: accessToken,
    token_type: "Bearer",
    expires_in: 900,
    refresh_token: `${sid}.${secret}`,
    session_id: sid,
  });
}

// The Runtime API loop.
const api = process.env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true });
function request(method, path, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: api.split(":")[0], port: api.split(":")[1], path, method, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.setNoDelay(true);
    if (payload) req.write(payload);
    req.end();
  });
}

(async () => {
  for (;;) {
    const next = await request("GET", "/2018-06-01/runtime/invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    let result;
    try {
      result = await handler(JSON.parse(next.body));
    } catch (err) {
      result = reply(500, { error: { code: "internal_error", message: String(err) } });
    }
    await request("POST", `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(result));
  }
})();
