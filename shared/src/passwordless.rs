//! Magic-link login. (Email OTP login is [`crate::account::send_code`] and
//! [`crate::account::redeem_code_for_session`] with [`crate::store::codes::Purpose::Login`].)

use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::session::{self, TokenResponse};
use crate::store::sessions::{self, Session};
use crate::store::users;
use crate::store::{login_failures, magic_links};
use crate::{Error, State};

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

/// Emails a sign-in link when the address has an account; queues a decoy otherwise, so the SQS call is the same.
/// One round trip for an unknown address (the marker), two for a known one (plus the link); one SQS SendMessage.
pub async fn send_magic_link(
    state: &State,
    email: &Email,
    redirect_uri: Option<String>,
    now: UnixTime,
) -> Result<(), Error> {
    let Some(user_id) = users::id_for_email(&state.store, email).await? else {
        return state.mailer.send(email, Mail::Decoy).await;
    };
    let (link, token) = magic_links::issue(&user_id, redirect_uri, now);
    magic_links::store(&state.store, &link).await?;
    let url = format!("{}/magic-link?token={token}", state.config.app_url);
    state.mailer.send(email, Mail::MagicLink { url: &url }).await
}

/// What a redeemed link yields: tokens, and where the application should go next.
#[derive(Debug, serde::Serialize)]
pub struct MagicLinkLogin {
    /// The token response.
    #[serde(flatten)]
    pub tokens: TokenResponse,
    /// The allow-listed `redirect_uri` given when the link was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// Redeems a link (single use) and starts a session (amr `email_link`); the link proves the address.
/// Three round trips: the conditional delete, the user read, one transaction (verify the address, create the
/// session, forget failed password logins).
pub async fn login_with_magic_link(
    state: &State,
    token: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<MagicLinkLogin, Error> {
    let link = magic_links::redeem(&state.store, token, now).await?;
    let mut user = users::get(&state.store, &link.user_id)
        .await?
        .ok_or(Error::InvalidToken("The link is invalid, used or expired."))?;
    let (session, refresh) = Session::start(&user, &["email_link"], client, state.config.refresh_token_ttl, now);
    // The link proves the address: verify it and forget failed password logins, with the session, in one write.
    user.email_verified = true;
    let items = vec![
        users::mark_verified_item(&state.store, &user.id, now)?,
        sessions::create_item(&state.store, &session)?,
        login_failures::clear_item(&state.store, &user.email)?,
    ];
    if !state.store.transact(items).await? {
        return Err(Error::InvalidToken("The link is invalid, used or expired."));
    }
    let tokens = session::token_response(state, &user, &session, &refresh, now).await?;
    Ok(MagicLinkLogin {
        tokens,
        redirect_uri: link.redirect_uri,
    })
}
