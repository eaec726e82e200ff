//! Every email template, and the outbox they travel through: a request puts each email on SQS
//! ([`outbox::Mailer`]), and the mailer function renders and sends it through SES ([`delivery::Delivery`]). A
//! request never waits for SES. Message bodies and codes never reach a log line.

pub mod delivery;
pub mod outbox;

pub use delivery::{Delivery, Outcome};
pub use outbox::Mailer;

use serde::{Deserialize, Serialize};

/// The emails keygate sends. On the queue, `kind` names the variant and its fields ride along (see [`outbox`]).
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mail<'a> {
    /// The code that completes a registration.
    RegistrationCode {
        /// The 6-digit code.
        code: &'a str,
    },
    /// Someone tried to register an address that already has an account.
    AlreadyRegistered,
    /// The code that resets a forgotten password.
    PasswordResetCode {
        /// The 6-digit code.
        code: &'a str,
    },
    /// A code that logs in without a password.
    LoginCode {
        /// The 6-digit code.
        code: &'a str,
    },
    /// A link that logs in without a password.
    MagicLink {
        /// The sign-in URL.
        url: &'a str,
    },
    /// The address was proven and the account is ready.
    Welcome {
        /// Whether the account has a usable password; without one the mail says how to set one.
        has_password: bool,
    },
    /// The password was changed (or first set) from a signed-in session.
    PasswordChanged {
        /// Whether the change also revoked every personal access token.
        tokens_revoked: bool,
    },
    /// The password was reset with an emailed code.
    PasswordWasReset,
    /// An invitation to join a tenant: the link accepts it and sets a password.
    Invitation {
        /// The inviting tenant's name.
        tenant: &'a str,
        /// The accept URL (`<APP_URL>/accept-invitation?token=…`).
        url: &'a str,
    },
    /// An invitation sent to an address that already has an account: it tells the owner, and carries no link.
    InvitedButRegistered {
        /// The inviting tenant's name.
        tenant: &'a str,
    },
    /// A passkey was added to the account.
    PasskeyAdded {
        /// Its name.
        name: &'a str,
    },
    /// A passkey was removed from the account.
    PasskeyRemoved {
        /// Its name.
        name: &'a str,
    },
    /// A passkey sign-in presented a signature counter that went backwards: the credential may have been cloned.
    PasskeyCounterRegressed {
        /// Its name.
        name: &'a str,
    },
    /// Two-factor authentication was turned on.
    TwoFactorEnabled,
    /// Two-factor authentication was turned off.
    TwoFactorDisabled,
    /// New backup codes replaced the old ones.
    BackupCodesRegenerated,
    /// A backup code was used to sign in or to turn two-factor authentication off.
    BackupCodeUsed {
        /// Unused codes left.
        remaining: usize,
    },
    /// An administrator set a new password: every session and API token was ended.
    PasswordSetByAdmin,
    /// An administrator removed every second factor (TOTP, backup codes, passkeys) and ended every session.
    SecondFactorsReset,
    /// The account was deleted, by its owner or by an administrator.
    AccountDeleted,
    /// An external identity (Google, Entra ID) now signs in to the account.
    IdentityLinked {
        /// `google` or `entra`.
        provider: &'a str,
    },
    /// An external identity no longer signs in to the account.
    IdentityUnlinked {
        /// `google` or `entra`.
        provider: &'a str,
    },
    /// Sign-in for the address goes through the organization's directory: no code or link is sent.
    SignInThroughDirectory,
    /// The address's password is the organization's directory's: keygate cannot reset it.
    PasswordManagedByDirectory,
    /// A sign-in token that had been replaced was presented again, so its session was signed out.
    RefreshTokenReused {
        /// A readable label of the session's device.
        device: &'a str,
    },
    /// A sign-in from a device and network not seen in the account's recent sessions.
    NewDeviceSignIn {
        /// A readable label of the device.
        device: &'a str,
        /// The client's address, if known.
        ip: &'a str,
        /// How it signed in (`password`, `passkey`, ...).
        method: &'a str,
    },
    /// A personal access token expires within days.
    ApiTokenExpiring {
        /// The token's name.
        name: &'a str,
        /// Its expiry, RFC 3339.
        expires_at: &'a str,
    },
    /// Nothing to send: queued for an address without an account, so the request makes the same calls as for
    /// one with an account. The mailer drops it.
    Decoy,
}

/// A rendered email.
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

impl Mail<'_> {
    /// Renders the subject, text and HTML parts. A [`Mail::Decoy`] renders empty; it is never sent.
    pub fn render(&self, app_url: &str) -> Rendered {
        let (subject, lines): (&str, Vec<String>) = match self {
            Self::RegistrationCode { code } => (
                "Your keygate verification code",
                vec![
                    format!("Your verification code is {code}."),
                    "Enter it to finish creating your account. It expires in 10 minutes.".into(),
                    "If you did not try to create an account, ignore this email.".into(),
                ],
            ),
            Self::AlreadyRegistered => (
                "You already have an account",
                vec![
                    "Someone tried to create an account with this email address, but you already have one.".into(),
                    format!("If it was you, sign in at {app_url}, or reset your password if you forgot it."),
                    "If it was not you, ignore this email. Your account is unchanged.".into(),
                ],
            ),
            Self::PasswordResetCode { code } => (
                "Your password reset code",
                vec![
                    format!("Your password reset code is {code}."),
                    "Enter it to choose a new password. It expires in 10 minutes.".into(),
                    "If you did not ask to reset your password, ignore this email.".into(),
                ],
            ),
            Self::LoginCode { code } => (
                "Your sign-in code",
                vec![
                    format!("Your sign-in code is {code}."),
                    "Enter it to sign in. It expires in 10 minutes and works once.".into(),
                    "If you did not try to sign in, ignore this email; nobody can sign in without the code.".into(),
                ],
            ),
            Self::MagicLink { url } => (
                "Your sign-in link",
                vec![
                    "Open this link to sign in. It expires in 15 minutes and works once:".into(),
                    (*url).to_owned(),
                    "If you did not try to sign in, ignore this email.".into(),
                ],
            ),
            Self::Welcome { has_password: true } => (
                "Welcome to your new account",
                vec![
                    "Your email address is verified and your account is ready.".into(),
                    format!("Sign in at {app_url} with your email address and password."),
                ],
            ),
            Self::Welcome { has_password: false } => (
                "Welcome to your new account",
                vec![
                    "Your email address is verified and your account is ready.".into(),
                    "Your account has no password yet. Someone else also tried to register this address, or you \
                     signed in with an emailed code or link first, so no password chosen before that is kept."
                        .into(),
                    "To choose a password, open your account settings within 5 minutes of signing in. Until then \
                     you can sign in with an emailed code or link."
                        .into(),
                ],
            ),
            Self::PasswordChanged { tokens_revoked } => (
                "Your password was changed",
                vec![
                    if *tokens_revoked {
                        "The password of your account was just changed. Your other sessions were signed out and \
                         every API token was revoked."
                            .into()
                    } else {
                        "The password of your account was just changed, and your other sessions were signed out.".into()
                    },
                    "If this was not you, reset your password now and review your account.".into(),
                ],
            ),
            Self::PasswordWasReset => (
                "Your password was reset",
                vec![
                    "The password of your account was just reset. Every session was signed out and every API \
                     token was revoked."
                        .into(),
                    "If this was not you, reset your password again and review your account.".into(),
                ],
            ),
            Self::Invitation { tenant, url } => (
                "You are invited to join an organization",
                vec![
                    format!("You were invited to join {tenant}."),
                    "Open this link to accept and choose your password. It expires in 7 days and works once:".into(),
                    (*url).to_owned(),
                    "If you did not expect this invitation, ignore this email.".into(),
                ],
            ),
            Self::InvitedButRegistered { tenant } => (
                "You were invited to join an organization",
                vec![
                    format!("You were invited to {tenant}, but your address already has an account."),
                    "An address can belong to one account only, so this invitation cannot be accepted. If you want \
                     to join, ask whoever invited you to invite another address of yours."
                        .into(),
                    "If you did not expect this invitation, ignore this email. Your account is unchanged.".into(),
                ],
            ),
            Self::PasskeyAdded { name } => (
                "A passkey was added",
                vec![
                    format!("A passkey named \"{name}\" was just added to your account. It can sign you in."),
                    "If this was not you, remove it in your security settings, reset your password and review your \
                     sessions."
                        .into(),
                ],
            ),
            Self::PasskeyRemoved { name } => (
                "A passkey was removed",
                vec![
                    format!("The passkey named \"{name}\" was just removed from your account."),
                    "If this was not you, reset your password now and review your sessions.".into(),
                ],
            ),
            Self::RefreshTokenReused { device } => (
                "A session of yours was signed out",
                vec![
                    format!(
                        "An old sign-in token of your session on \"{device}\" was used again, after it had \
                         been replaced. That can mean someone copied it, so that session was signed out."
                    ),
                    "If you did not just lose a sign-in on that device, change your password now and review your \
                     sessions."
                        .into(),
                ],
            ),
            Self::NewDeviceSignIn { device, ip, method } => (
                "New sign-in to your account",
                vec![
                    format!("Your account was just signed in to from {device} at {ip} (with {method})."),
                    "If this was you, there is nothing to do. If not, change your password now and sign out the \
                     sessions you do not know in your security settings."
                        .into(),
                ],
            ),
            Self::ApiTokenExpiring { name, expires_at } => (
                "An API token of yours expires soon",
                vec![
                    format!("Your personal access token \"{name}\" expires at {expires_at}."),
                    "If something still uses it, rotate it or create a new one before then.".into(),
                ],
            ),
            Self::PasskeyCounterRegressed { name } => (
                "A sign-in with your passkey was refused",
                vec![
                    format!(
                        "A sign-in with your passkey \"{name}\" was refused: its signature counter went backwards, \
                         which can mean the key was copied."
                    ),
                    "If you did not just try to sign in with it, remove that passkey in your security settings and \
                     review your sessions."
                        .into(),
                ],
            ),
            Self::TwoFactorEnabled => (
                "Two-factor authentication is on",
                vec![
                    "Two-factor authentication was just turned on for your account. Signing in now also needs a \
                     code from your authenticator app, or one of your backup codes."
                        .into(),
                    "Keep the backup codes somewhere safe: they are the way back in if you lose your phone.".into(),
                    "If this was not you, reset your password now and contact your administrator.".into(),
                ],
            ),
            Self::TwoFactorDisabled => (
                "Two-factor authentication is off",
                vec![
                    "Two-factor authentication was just turned off for your account. Signing in needs only your \
                     first factor now."
                        .into(),
                    "If this was not you, reset your password now, turn two-factor authentication on again, and \
                     review your sessions."
                        .into(),
                ],
            ),
            Self::PasswordSetByAdmin => (
                "An administrator set your password",
                vec![
                    "An administrator of your organization just set a new password for your account. Every \
                     session was signed out and every API token was revoked."
                        .into(),
                    "Ask your administrator for the new password, or reset it yourself with an emailed code.".into(),
                ],
            ),
            Self::SecondFactorsReset => (
                "Your second factors were removed",
                vec![
                    "An administrator of your organization just removed your authenticator app, your backup \
                     codes and your passkeys, and signed out every session."
                        .into(),
                    "Sign in with your password and set up two-factor authentication again. If you did not ask \
                     for this, tell your administrator."
                        .into(),
                ],
            ),
            Self::AccountDeleted => (
                "Your account was deleted",
                vec![
                    "Your account and everything it held were just deleted. Every session and API token has \
                     stopped working."
                        .into(),
                    "If you did not expect this, contact the administrator of your organization.".into(),
                ],
            ),
            Self::SignInThroughDirectory => (
                "Sign in with your organization's account",
                vec![
                    "Someone asked to sign in to this address with an emailed code or link, or to register it. \
                     Sign-in for your address goes through your organization's directory: sign in with your \
                     usual work email and password."
                        .into(),
                    "If this was not you, you can ignore this email.".into(),
                ],
            ),
            Self::PasswordManagedByDirectory => (
                "Your password is managed by your organization",
                vec![
                    "Someone asked to reset the password of this address. Your password is managed by your \
                     organization's directory, so it cannot be reset here."
                        .into(),
                    "Change or reset it the way your organization does (ask your IT department). If this was not \
                     you, you can ignore this email."
                        .into(),
                ],
            ),
            Self::IdentityLinked { provider } => (
                "A new way to sign in was added",
                vec![
                    format!(
                        "Your {} account can now sign in to your account.",
                        provider_name(provider)
                    ),
                    "If this was not you, remove it under your account's linked identities, change your password \
                     and sign out every session."
                        .into(),
                ],
            ),
            Self::IdentityUnlinked { provider } => (
                "A way to sign in was removed",
                vec![
                    format!(
                        "Your {} account can no longer sign in to your account.",
                        provider_name(provider)
                    ),
                    "If this was not you, change your password and review your sessions.".into(),
                ],
            ),
            Self::BackupCodesRegenerated => (
                "New backup codes",
                vec![
                    "New backup codes were just made for your account; the old ones no longer work.".into(),
                    "If this was not you, reset your password now and review your sessions.".into(),
                ],
            ),
            Self::BackupCodeUsed { remaining } => (
                "A backup code was used",
                vec![
                    format!(
                        "One of your backup codes was just used. {remaining} unused {} left.",
                        if *remaining == 1 { "code is" } else { "codes are" }
                    ),
                    if *remaining < 3 {
                        "You are running out of backup codes: make new ones in your security settings, with a code \
                         from your authenticator app."
                            .into()
                    } else {
                        "Each backup code works once.".into()
                    },
                    "If this was not you, reset your password now and review your sessions.".into(),
                ],
            ),
            Self::Decoy => {
                return Rendered {
                    subject: String::new(),
                    text: String::new(),
                    html: String::new(),
                }
            }
        };
        let text = lines.join("\n\n") + "\n";
        let paragraphs: String = lines
            .iter()
            .map(|line| {
                let line = escape_html(line);
                if line.starts_with("https://") || line.starts_with("http://") {
                    format!("<p><a href=\"{line}\">{line}</a></p>")
                } else {
                    format!("<p>{line}</p>")
                }
            })
            .collect();
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\">{paragraphs}</body></html>"
        );
        Rendered {
            subject: subject.to_owned(),
            text,
            html,
        }
    }
}

/// A provider's name as people know it.
fn provider_name(provider: &str) -> &str {
    match provider {
        "google" => "Google",
        "entra" => "Microsoft (Entra ID)",
        other => other,
    }
}

fn escape_html(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mail_has_subject_text_and_html() {
        for mail in [
            Mail::RegistrationCode { code: "123456" },
            Mail::AlreadyRegistered,
            Mail::PasswordResetCode { code: "654321" },
            Mail::LoginCode { code: "111111" },
            Mail::MagicLink {
                url: "https://app.example.com/magic-link?token=abc",
            },
            Mail::Welcome { has_password: true },
            Mail::Welcome { has_password: false },
            Mail::PasswordChanged { tokens_revoked: false },
            Mail::PasswordChanged { tokens_revoked: true },
            Mail::PasswordWasReset,
            Mail::Invitation {
                tenant: "Contoso",
                url: "https://app.example.com/accept-invitation?token=abc",
            },
            Mail::InvitedButRegistered { tenant: "Contoso" },
            Mail::PasskeyAdded { name: "Laptop" },
            Mail::PasskeyRemoved { name: "Laptop" },
            Mail::PasskeyCounterRegressed { name: "Key" },
            Mail::TwoFactorEnabled,
            Mail::TwoFactorDisabled,
            Mail::BackupCodesRegenerated,
            Mail::PasswordSetByAdmin,
            Mail::SecondFactorsReset,
            Mail::AccountDeleted,
            Mail::IdentityLinked { provider: "google" },
            Mail::SignInThroughDirectory,
            Mail::PasswordManagedByDirectory,
            Mail::IdentityUnlinked { provider: "entra" },
            Mail::BackupCodeUsed { remaining: 9 },
            Mail::BackupCodeUsed { remaining: 1 },
            Mail::RefreshTokenReused {
                device: "Firefox on macOS",
            },
            Mail::NewDeviceSignIn {
                device: "Firefox on macOS",
                ip: "203.0.113.9",
                method: "password",
            },
            Mail::ApiTokenExpiring {
                name: "ci",
                expires_at: "2026-12-24T00:00:00Z",
            },
        ] {
            let rendered = mail.render("https://app.example.com");
            assert!(!rendered.subject.is_empty());
            assert!(rendered.text.len() > 40);
            assert!(rendered.html.starts_with("<!doctype html>"));
        }
        let code = Mail::RegistrationCode { code: "123456" }.render("x");
        assert!(code.text.contains("123456") && code.html.contains("123456"));
    }

    #[test]
    fn html_is_escaped() {
        let rendered = Mail::AlreadyRegistered.render("https://x.example/<script>");
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("<script>"));
    }
}
