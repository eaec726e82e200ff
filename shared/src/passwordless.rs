//! Magic-link login. (Email OTP login is [`crate::account::send_code`] and
//! [`crate::account::redeem_code_for_session`] with [`crate::store::codes::Purpose::Login`].)

use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::mfa::challenge::SignIn;
use crate::session::TokenResponse;
use crate::store::users::{self, MailboxProof};
use crate::store::{login_failures, magic_links};
use crate::{account, Error, State};

/// Longest accepted `redirect_uri`.
const MAX_REDIRECT_URI_BYTES: usize = 2_048;

/// Checks an optional `redirect_uri` against the configured allow-list.
pub fn check_redirect(state: &State, redirect_uri: Option<&str>) -> Result<Option<String>, Error> {
    match redirect_uri {
        None => Ok(None),
        Some(uri) if uri.len() <= MAX_REDIRECT_URI_BYTES && state.config.redirect_allowed(uri) => {
            Ok(Some(uri.to_owned()))
        }
        Some(_) => Err(Error::InvalidField(
            "redirect_uri is not on this deployment's allow-list.".to_owned(),
        )),
    }
}

/// Emails a sign-in link when the address has an account. For an unknown address it stores a link for no
/// account and queues a decoy, so the calls are the same either way. An address routed to a directory gets a
/// notice instead: it signs in with its directory password.
/// Two round trips (the marker, the link) and one SQS call.
pub async fn send_magic_link(
    state: &State,
    email: &Email,
    redirect_uri: Option<String>,
    now: UnixTime,
) -> Result<(), Error> {
    if crate::federation::directory::is_routed(state, email, now).await? {
        return state.mailer.send(email, Mail::SignInThroughDirectory).await;
    }
    let user_id = users::id_for_email(&state.store, email).await?;
    let (link, token) = magic_links::issue(user_id.as_deref().unwrap_or_default(), redirect_uri, now);
    magic_links::store(&state.store, &link).await?;
    let url = format!("{}/magic-link?token={token}", state.config.app_url);
    let mail = match user_id {
        Some(_) => Mail::MagicLink { url: &url },
        None => Mail::Decoy,
    };
    state.mailer.send(email, mail).await
}

/// What a redeemed link yields: tokens (or a second-factor challenge), and where the application should go next.
#[derive(Debug, serde::Serialize)]
pub struct MagicLinkLogin {
    /// The token response, or the challenge.
    #[serde(flatten)]
    pub tokens: SignIn<TokenResponse>,
    /// The allow-listed `redirect_uri` given when the link was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// Redeems a link (single use) and starts a session (amr `email_link`). The link proves the address: a pending
/// account becomes verified with no usable password (DESIGN §7), and failed password logins are forgotten.
/// Three round trips: the conditional delete, the user read, one transaction (verify, create the session, forget
/// failed logins); one SQS call for a first proof.
pub async fn login_with_magic_link(
    state: &State,
    token: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<MagicLinkLogin, Error> {
    const INVALID: Error = Error::InvalidToken("The link is invalid, used or expired.");
    let link = magic_links::redeem(&state.store, token, now).await?;
    let user = users::get(&state.store, &link.user_id).await?.ok_or(INVALID)?;
    let items = vec![login_failures::clear_item(&state.store, &user.email)?];
    let tokens =
        account::sign_in_with_mailbox_proof(state, user, MailboxProof::SignIn, "email_link", items, client, now)
            .await
            .map_err(|err| match err {
                Error::Conflict(_) => INVALID,
                other => other,
            })?;
    Ok(MagicLinkLogin {
        tokens,
        redirect_uri: link.redirect_uri,
    })
}
