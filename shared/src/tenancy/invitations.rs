//! Inviting people into a tenant, and accepting an invitation.
//!
//! An invited account is created at once (status `invited`), but it does not claim its address: no email marker
//! points to it, so no sign-in flow can find it and nothing an inviter does can take an address from its owner.
//! Accepting the emailed link proves the mailbox; only then does the account claim the address. If the address
//! has a verified account by then, the invitation is dead. If it has only a pending registration (whose password
//! nobody proved), the mailbox owner wins: the pending account is removed and the invited one takes the address.

use secrecy::SecretString;

use crate::account::check_new_password;
use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::passwords;
use crate::rate_limit::{self, MailKind};
use crate::session::{self, TokenResponse};
use crate::store::accounts::{self, AddressHolder};
use crate::store::events::{self, Event, Kind};
use crate::store::invitations::{self, INVALID};
use crate::store::sessions::{Lifetime, Session};
use crate::store::tenants;
use crate::store::users::{self, AccountStatus, User};
use crate::tenancy::accounts::{check_may_act, AccountView};
use crate::tenancy::Role;
use crate::{Error, State};

/// 422 for an address a directory is authoritative for: its people sign in there, and a local account with a
/// password would escape the directory (and squat the person's directory account).
async fn refuse_routed(state: &State, email: &Email, now: UnixTime) -> Result<(), Error> {
    if crate::federation::directory::is_routed(state, email, now).await? {
        return Err(Error::InvalidField(
            "This address signs in through its organization's directory, with its password there.".to_owned(),
        ));
    }
    Ok(())
}

/// Invites `email` into the caller's tenant with `role` (one the caller ranks above: never root). The answer is
/// the same for every address, and so are the calls: an invited account and an invitation are written either
/// way. An address without an account is emailed the link; one that already has an account is emailed a notice
/// instead, and its invitation's token is never sent, so it can never be accepted. The address's code budget is
/// spent either way (429 when it is exhausted, whatever the address).
/// Four round trips in two round-trip times: the marker, the tenant and the budget (concurrent), one
/// transaction; one SQS call.
pub async fn invite(
    state: &State,
    caller: &User,
    email: &Email,
    role: Role,
    name: Option<String>,
    now: UnixTime,
) -> Result<AccountView, Error> {
    let tenant_id = caller.tenant_id.as_deref().ok_or(Error::NotFound)?;
    check_may_act(caller, role)?;
    refuse_routed(state, email, now).await?;
    let store = &state.store;
    let (holder, tenant, spent) = tokio::join!(
        users::id_for_email(store, email),
        tenants::get(store, tenant_id),
        rate_limit::spend_mail(store, &state.config.rate_limits, MailKind::Invitation, email, now),
    );
    let (holder, tenant) = (holder?, tenant?.ok_or(Error::NotFound)?);
    if let Some(retry_after) = spent? {
        return Err(rate_limit::refused(retry_after));
    }
    let mut user = User::new(users::new_user_id(), email, name, None, None, now);
    user.join(tenant_id, role);
    user.status = AccountStatus::Invited;
    let (invitation, token) = invitations::issue(&user.id, tenant_id, email.as_str(), now);
    let event = Event::new(Kind::AccountInvited, &user, now, state.config.event_retention)
        .by(&caller.id)
        .with("role", role.as_str());
    let items = vec![
        accounts::create_item(store, &user)?,
        invitations::put_item(store, &invitation)?,
        events::put_item(store, &event)?,
    ];
    if !store.transact(items).await? {
        return Err(Error::Conflict("Inviting failed on a concurrent write; try again."));
    }
    let url = format!("{}/accept-invitation?token={token}", state.config.app_url);
    let mail = match holder {
        None => Mail::Invitation {
            tenant: &tenant.name,
            url: &url,
        },
        Some(_) => Mail::InvitedButRegistered { tenant: &tenant.name },
    };
    state.mailer.send(email, mail).await?;
    Ok(AccountView::from(&user))
}

/// Accepts an invitation: the account becomes active and verified (the link proves the mailbox) with the chosen
/// password, claims its address, and signs in. Rate-limited per client IP like the code endpoints. A forged,
/// used or expired token is 401 `invalid_token`, and so is one whose address has meanwhile got a verified
/// account (that invitation is then discarded).
/// Five round trips in four round-trip times (the per-IP counter, the invitation, the account and the address's
/// marker concurrently, one transaction), one more when a pending registration holds the address.
pub async fn accept(
    state: &State,
    token: &str,
    password: &SecretString,
    name: Option<String>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("invitations-accept");
    rate_limit::check_client_ip(store, &rule, client, now).await?;
    let invitation = invitations::get(store, token, now).await?;
    check_new_password(state, password).await?;
    let email = Email::parse(&invitation.email).map_err(|_| INVALID)?;
    // The domain may have been routed to a directory since the invitation was sent.
    refuse_routed(state, &email, now).await?;
    let (account, holder) = tokio::join!(
        accounts::get(store, &invitation.user_id),
        users::id_for_email(store, &email)
    );
    let (account, holder) = (account?, holder?);
    let Some(account) = account.filter(|a| {
        !a.deleting
            && a.user.status == AccountStatus::Invited
            && a.user.tenant_id.as_deref() == Some(invitation.tenant_id.as_str())
            && a.user.email == invitation.email
    }) else {
        return Err(INVALID);
    };
    let holder = match holder {
        None => AddressHolder::Nobody,
        Some(id) => match users::get(store, &id).await? {
            Some(pending) if !pending.email_verified => AddressHolder::Pending(Box::new(pending)),
            _ => {
                tracing::info!("an invitation to an address that has an account since is discarded");
                invitations::discard(store, &invitation).await?;
                return Err(INVALID);
            }
        },
    };
    let password_hash = passwords::hash(password).await?;
    let mut user = account.user;
    user.status = AccountStatus::Active;
    user.email_verified = true;
    user.password_hash = Some(password_hash.clone());
    if name.is_some() {
        user.name = name;
    }
    let (session, refresh) = Session::start(
        &user,
        &["email_link"],
        client,
        Lifetime::from_config(&state.config),
        now,
    );
    let mut items = vec![invitations::consume_item(store, &invitation, now)?];
    items.extend(accounts::claim_address_items(store, &email, &user.id, &holder)?);
    items.push(accounts::accept_item(
        store,
        &user,
        &password_hash,
        user.name.as_deref(),
        now,
    )?);
    items.extend(session::open_items(state, &user, &session, now)?);
    if !store.transact(items).await? {
        return Err(INVALID);
    }
    session::token_response(state, &user, &session, &refresh, now).await
}
