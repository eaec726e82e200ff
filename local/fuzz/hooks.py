"""schemathesis hooks of keygate's fuzz run (scripts/fuzz.sh): the credentials that get it past the front door.

At load, against the fresh local stack, as a user would: an account registered and verified (the code read from
moto's sent mail), the root of its own tenant. Then:

- its main session (an access JWT) for the operations that need an interactive session (their handlers ask for
  `Access::Interactive`);
- a PAT of it with every scope the account holds, for every other operation that takes a bearer;
- a disposable session of the same account, signed in anew every DISPOSABLE_SESSION_SECONDS, for the operations
  that end the bearer's session (logout) or rotate it and hand the fuzzer its refresh token (switching database):
  the fuzzer would chain that token into refresh and logout. So logout never ends the session the rest of the run
  uses;
- a session of a new account every GUESS_ACCOUNT_SECONDS for the operations that check a password or a second
  factor (changing the password, deleting the account, two-factor set-up and use). The password backoff is per
  account and every wrong guess there spends it: on one account the fuzzer would soon get nothing but 429, and it
  would lock the main account's password sign-in.

The fuzzer can still reach a credential some other way (it lists sessions and tokens and may revoke what it
finds). `before_call` keeps it off the run's own PAT and main session by id, and every provider checks its
credential when its short cache expires or a request answers 401, then mends it: a refresh, else a password login,
else an emailed sign-in code (the fuzzer may learn the address from /v1/auth/me and spend the account's backoff; a
code clears it).

`front_door` fails a case whose answer refused the run's own credential while it was still meant to work, so that
a gap in the above shows as a failure rather than as operations tested no further than authentication.

`filter_failure` drops the failures that local/fuzz/exclusions.toml documents, and the run ends by naming the
entries that matched nothing, which should go.

Environment: KEYGATE_FUZZ_API (the API's base URL) and AWS_ENDPOINT_URL (moto), which scripts/fuzz.sh sets.
"""

from __future__ import annotations

import atexit
import base64
import html
import json
import os
import re
import secrets
import sys
import threading
import time
import tomllib
from collections import Counter
from pathlib import Path

import requests
import schemathesis

API = os.environ["KEYGATE_FUZZ_API"].rstrip("/")
MOTO = os.environ["AWS_ENDPOINT_URL"].rstrip("/")

# The operations whose handler asks for `Access::Interactive` (grep -l Access::Interactive functions/*/src/lib.rs),
# where a PAT is refused by design, and that are in neither list below: they get the main session.
SESSION_OPERATIONS = [
    "linkIdentity",
    "passkeyDelete",
    "passkeyRegisterOptions",
    "passkeyRegisterVerify",
    "passkeyUpdate",
    "revokeOtherSessions",
    "revokeSession",
    "startIdentityLink",
    "unlinkIdentity",
]
# The operations that end or rotate the bearer's session: they get the disposable one.
DISPOSABLE_OPERATIONS = ["logout", "switchSessionDatabase"]
# How often those get a new session; in between, logout ends one that has already ended (204, idempotent).
DISPOSABLE_SESSION_SECONDS = 20
# The interactive operations whose wrong guesses spend the account's password backoff: each new account gets five
# free guesses and then waits 1, 2, 4... seconds, so a new one every GUESS_ACCOUNT_SECONDS keeps them reaching their
# logic. mfaSetup belongs here because enabling needs the session that set up.
GUESS_OPERATIONS = ["changePassword", "deleteMe", "mfaDisable", "mfaEnable", "mfaRegenerateBackupCodes", "mfaSetup"]
GUESS_ACCOUNT_SECONDS = 30
# How long a provider trusts its credential before checking it again (the stateful phase does not re-authenticate
# on a 401, so a credential the fuzzer ended costs at most this long of refusals).
CHECK_SECONDS = 10
# A session's access token is refreshed once it is this old (the default lifetime is 900 s).
ACCESS_REFRESH_AFTER = 600
TIMEOUT = 30
# Guards the credentials below: providers run on several worker threads and mend each other's inputs.
LOCK = threading.RLock()


class FuzzAuthError(RuntimeError):
    """The run could not make or mend a credential: the stack is broken, and so is the run."""


def call(method: str, path: str, *, token: str | None = None, body: dict | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, API + path, json=body, headers=headers, timeout=TIMEOUT)


def expect(response: requests.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise FuzzAuthError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


def code_sent_to(email: str, kind: str, after: set[str]) -> tuple[str, set[str]]:
    """The 6-digit code of the newest email to `email` about `kind` that is not one of `after` (message ids)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = requests.get(f"{MOTO}/moto-api/keygate/sent-email", timeout=TIMEOUT).json()
        mine = [m for m in messages if email in m.get("destinations", {}).get("ToAddresses", [])]
        for message in reversed(mine):
            text = html.unescape(re.sub(r"<[^>]+>", " ", message.get("body") or ""))
            found = re.search(rf"{kind} is\D{{0,40}}?(\d{{6}})", text)
            if message["id"] not in after and found:
                return found.group(1), {m["id"] for m in mine}
        time.sleep(0.2)
    raise FuzzAuthError(f"no email with a {kind} reached {email}")


def sent_ids(email: str) -> set[str]:
    messages = requests.get(f"{MOTO}/moto-api/keygate/sent-email", timeout=TIMEOUT).json()
    return {m["id"] for m in messages if email in m.get("destinations", {}).get("ToAddresses", [])}


def claims(jwt: str) -> dict:
    """The payload of a JWT, unverified (keygate signed it; the run only reads its own token's claims)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Account:
    """A registered, verified account and the session the run keeps for it."""

    def __init__(self, label: str) -> None:
        self.email = f"fuzz-{label}-{secrets.token_hex(6)}@example.com"
        # Random, so that no example or generated value in the spec can be its password.
        self.password = secrets.token_urlsafe(24)
        self.access_token = ""
        self.refresh_token = ""
        self.session_id = ""
        self.signed_in_at = 0.0
        seen = sent_ids(self.email)
        expect(
            call("POST", "/v1/auth/register", body={"email": self.email, "password": self.password, "name": label}),
            202,
            "register",
        )
        code, _ = code_sent_to(self.email, "verification code", seen)
        verified = call("POST", "/v1/auth/register/verify", body={"email": self.email, "code": code})
        self.keep(expect(verified, 200, "verify"))

    def keep(self, tokens: dict) -> str:
        if "access_token" not in tokens:
            raise FuzzAuthError(f"no tokens in {sorted(tokens)} (a second factor was asked for?)")
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]
        self.session_id = tokens["session_id"]
        self.signed_in_at = time.monotonic()
        return self.access_token

    def alive(self) -> bool:
        return call("GET", "/v1/auth/me", token=self.access_token).status_code == 200

    def sign_in(self) -> dict:
        """A new session's tokens: by password, or, when the fuzzer has spent the account's backoff, by an emailed
        code (tried a few times: the fuzzer may ask for a code to this address too, which replaces the one sent)."""
        response = call("POST", "/v1/auth/login", body={"email": self.email, "password": self.password})
        if response.status_code == 200 and "access_token" in response.json():
            return response.json()
        for _ in range(5):
            seen = sent_ids(self.email)
            sent = call("POST", "/v1/auth/otp/send", body={"email": self.email, "purpose": "login"})
            if sent.status_code == 429:
                time.sleep(int(sent.headers.get("Retry-After", "1")))
                continue
            expect(sent, 202, "otp send")
            code, _ = code_sent_to(self.email, "sign-in code", seen)
            response = call("POST", "/v1/auth/otp/login", body={"email": self.email, "code": code})
            if response.status_code == 200 and "access_token" in response.json():
                return response.json()
        raise FuzzAuthError(f"could not sign in again: {response.status_code} {response.text[:300]}")

    def session(self) -> str:
        """An access token of a live session: the kept one, refreshed, or a new sign-in."""
        with LOCK:
            if time.monotonic() - self.signed_in_at < ACCESS_REFRESH_AFTER and self.alive():
                return self.access_token
            response = call("POST", "/v1/auth/refresh", body={"refresh_token": self.refresh_token})
            if response.status_code == 200 and "access_token" in response.json():
                self.keep(response.json())
                if self.alive():
                    return self.access_token
            return self.keep(self.sign_in())


MAIN = Account("main")
PAT = {"id": "", "token": ""}


def pat() -> str:
    """The kept PAT if every scope of it still works, else a new one with every scope of the account."""
    with LOCK:
        # A credential scope (tokens:write): a rotated-out secret in its grace period lacks it, and so would fail.
        if PAT["token"] and call("GET", "/v1/scoped-tokens", token=PAT["token"]).status_code == 200:
            return PAT["token"]
        session = MAIN.session()
        scopes = claims(session)["scope"].split()
        created = expect(
            call("POST", "/v1/api-tokens", token=session, body={"name": "fuzz run", "scopes": scopes}),
            201,
            "create the run's PAT",
        )
        PAT.update(id=created["id"], token=created["token"])
        return PAT["token"]


def bearer(case, token: str) -> None:  # type: ignore[no-untyped-def]
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=DISPOSABLE_SESSION_SECONDS).apply_to(operation_id=DISPOSABLE_OPERATIONS)
class DisposableSession:
    """Another session of the account every DISPOSABLE_SESSION_SECONDS, for the fuzzer to end or rotate."""

    def get(self, case, context):  # type: ignore[no-untyped-def]
        with LOCK:
            return MAIN.sign_in()["access_token"]

    def set(self, case, data, context):  # type: ignore[no-untyped-def]
        bearer(case, data)


@schemathesis.auth(refresh_interval=GUESS_ACCOUNT_SECONDS).apply_to(operation_id=GUESS_OPERATIONS)
class GuessAccount:
    """A session of a new account every GUESS_ACCOUNT_SECONDS, for the operations whose guesses spend its backoff."""

    def get(self, case, context):  # type: ignore[no-untyped-def]
        return Account("guesses").access_token

    def set(self, case, data, context):  # type: ignore[no-untyped-def]
        bearer(case, data)


@schemathesis.auth(refresh_interval=CHECK_SECONDS).apply_to(operation_id=SESSION_OPERATIONS)
class MainSession:
    """The main account's session, for the operations that refuse a PAT."""

    def get(self, case, context):  # type: ignore[no-untyped-def]
        return MAIN.session()

    def set(self, case, data, context):  # type: ignore[no-untyped-def]
        bearer(case, data)


def takes_bearer(context) -> bool:  # type: ignore[no-untyped-def]
    security = context.operation.definition.raw.get("security")
    if security is None:
        security = context.operation.schema.raw_schema.get("security", [])
    return any("bearer" in requirement for requirement in security)


@(
    schemathesis.auth(refresh_interval=CHECK_SECONDS)
    .apply_to(takes_bearer)
    .skip_for(operation_id=[*SESSION_OPERATIONS, *DISPOSABLE_OPERATIONS, *GUESS_OPERATIONS])
)
class MainPat:
    """A PAT of the main account with every scope it holds, for every other operation that takes a bearer."""

    def get(self, case, context):  # type: ignore[no-untyped-def]
        return pat()

    def set(self, case, data, context):  # type: ignore[no-untyped-def]
        bearer(case, data)


# Operations that would end one of the run's own credentials, by the path parameter that names it.
OWN_CREDENTIALS = {
    "deleteApiToken": ("id", lambda: PAT["id"]),
    "rotateApiToken": ("id", lambda: PAT["id"]),
    "revokeSession": ("session_id", lambda: MAIN.session_id),
}


@schemathesis.hook
def before_call(context, case, kwargs):  # type: ignore[no-untyped-def]
    """Keeps the fuzzer off the run's own PAT and session, which it can find by listing them."""
    guarded = OWN_CREDENTIALS.get(case.operation.definition.raw.get("operationId", ""))
    if guarded and case.path_parameters:
        name, own = guarded
        if case.path_parameters.get(name) == own():
            case.path_parameters[name] = "fuzz-kept-" + secrets.token_hex(8)


def still_valid(authorization: str) -> bool:
    """Whether the run's credential in `authorization` works right now."""
    token = authorization.removeprefix("Bearer ")
    path = "/v1/scoped-tokens" if token == PAT["token"] else "/v1/auth/me"
    return call("GET", path, token=token).status_code == 200


@schemathesis.check
def front_door(ctx, response, case):  # type: ignore[no-untyped-def]
    """The run's own credential was refused: the operation was tested no further than authentication."""
    sent = (case.headers or {}).get("Authorization", "")
    if sent not in {f"Bearer {t}" for t in (PAT["token"], MAIN.access_token) if t}:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else ""
    # Some operations answer 401 invalid_token for a stale token in the body (a ceremony, an SSO state): only a
    # credential that fails on its own too was refused.
    if response.status_code == 401 and not still_valid(sent):
        raise AssertionError(f"The run's own credential was refused ({response.status_code} {code}).")
    if code == "insufficient_scope" and "interactive session" in message:
        raise AssertionError("This operation needs a session: add it to SESSION_OPERATIONS in local/fuzz/hooks.py.")
    return None


EXCLUSIONS = tomllib.loads(Path(__file__).with_name("exclusions.toml").read_text())["exclusion"]
MATCHED: Counter[int] = Counter()


def excluded(entry: dict, failure, case, response) -> bool:  # type: ignore[no-untyped-def]
    """Whether every key `entry` gives matches this failure."""
    if failure.code not in entry["failures"]:
        return False
    operation = case.operation
    if "operations" in entry and operation.definition.raw.get("operationId") not in entry["operations"]:
        return False
    if "paths" in entry and operation.path not in entry["paths"]:
        return False
    if "status" in entry and response.status_code != entry["status"]:
        return False
    if "detail" in entry and entry["detail"] not in str(failure.message):
        return False
    if "code" in entry or "message" in entry or "unless" in entry:
        try:
            body = response.json()
        except Exception:  # noqa: BLE001 (any unreadable body is simply not this one)
            return False
        if not isinstance(body, dict):
            return False
        # keygate's {"error": {"code", "message"}}, or RFC 6749's {"error", "error_description"} (/v1/oauth/token).
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else error
        message = str(error.get("message", "") if isinstance(error, dict) else body.get("error_description", ""))
        if "code" in entry and code != entry["code"]:
            return False
        if "message" in entry and entry["message"] not in message:
            return False
        if any(unless in message for unless in entry.get("unless", [])):
            return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):  # type: ignore[no-untyped-def]
    """Keeps a failure unless local/fuzz/exclusions.toml documents it."""
    for index, entry in enumerate(EXCLUSIONS):
        if response is not None and excluded(entry, failure, case, response):
            MATCHED[index] += 1
            return False
    return True


@atexit.register
def report_exclusions() -> None:
    print("\nExclusions (local/fuzz/exclusions.toml), failures dropped by each:", file=sys.stderr)
    for index, entry in enumerate(EXCLUSIONS):
        pending = " [until openapi.yaml says so]" if entry.get("spec") else ""
        print(f"  {MATCHED[index]:6}  {entry['name']}{pending}", file=sys.stderr)
    unused = [entry["name"] for index, entry in enumerate(EXCLUSIONS) if not MATCHED[index]]
    if unused:
        print(f"  unused this run (remove once their cause is gone): {', '.join(unused)}", file=sys.stderr)
