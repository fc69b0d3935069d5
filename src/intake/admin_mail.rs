//! Administrators' commands by mail: export, import with a dry run and a one-time token, confirm.
//! Talks to: [`crate::store`], [`crate::registry`], [`super::mailer`].

use super::admin;
use super::mailer::{Queued, mailbox};
use super::question::Filed;
use super::{Intake, Outcome, Position};
use crate::inbound::{InboundMail, auth_results, reply};
use crate::outbound::OutAttachment;
use crate::outbound::context::AdminContext;
use crate::registry;
use crate::registry::import::PlanError;
use crate::store::{StaffMember, StoreTx};
use crate::text::strip_reply_prefixes;

impl Intake {
    /// An administrator's command by mail. Always needs a verified sender; the reply goes to
    /// the administrator only.
    pub(super) async fn admin_mail(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        member: &StaffMember,
        command: admin::AdminCommand,
    ) -> anyhow::Result<Outcome> {
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            Filed { request: None, kind: "admin", new_text: &reply::new_content(&mail.text), note: "" },
        )
        .await?;
        let verification =
            auth_results::verify(&mail.auth_results, &self.cfg.intake.trusted_authserv_ids, mail.from_domain());
        let mut attachments = Vec::new();
        let (title, body) = if !verification.verified {
            (
                "Not applied: your message could not be verified".to_string(),
                format!(
                    "Administrators' commands by mail need a sender verified by the receiving server (DMARC, or SPF/DKIM aligned with your address).\n\nWhat the server reported: {}\n\nNothing was changed. You can run the same command on the server: intake311 cities import FILE.csv",
                    verification.reason
                ),
            )
        } else {
            match command {
                admin::AdminCommand::Export => {
                    let cities = tx.list_cities().await?;
                    attachments.push(OutAttachment {
                        filename: "cities.csv".into(),
                        content_type: "text/csv".into(),
                        data: registry::export_csv(&cities)?,
                    });
                    (
                        format!("The city list: {} cities, attached", cities.len()),
                        "Edit it and send it back with the subject #cities import to change the registry.".to_string(),
                    )
                }
                admin::AdminCommand::Import { replace } => {
                    self.admin_import_preview(tx, mail, &member.email, replace).await?
                }
                admin::AdminCommand::Confirm(token) => self.admin_confirm(tx, &member.email, &token).await?,
            }
        };
        let ctx = AdminContext {
            service_name: self.cfg.intake.service_name.clone(),
            subject: strip_reply_prefixes(&mail.subject),
            title: title.clone(),
            body,
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("admin_reply", &ctx)?;
        let to = mailbox(&member.name, &member.email)?;
        self.queue(tx, Queued { attachments: &attachments, ..self.answer(mail, "admin_reply", to, rendered) }).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Admin { summary: title })
    }

    pub(super) async fn admin_import_preview(
        &self,
        tx: &mut StoreTx,
        mail: &InboundMail,
        admin: &str,
        replace: bool,
    ) -> anyhow::Result<(String, String)> {
        let Some(file) = mail.attachments.iter().find(|a| {
            a.filename.to_ascii_lowercase().ends_with(".csv")
                || a.content_type == "text/csv"
                || a.content_type == "application/vnd.ms-excel"
        }) else {
            return Ok((
                "Not applied: no CSV file attached".into(),
                "Attach the city list as a .csv file (columns: name,state,domains,eligible; see cities export).".into(),
            ));
        };
        let source = format!("file {} by mail", file.filename);
        let plan = match registry::import::plan(&file.data, &source, &tx.list_cities().await?, replace) {
            Ok(plan) => plan,
            Err(e @ PlanError::Invalid(_)) => {
                return Ok((format!("Not applied: {} has errors", file.filename), e.to_string()));
            }
            Err(e @ PlanError::Conflict(_)) => {
                return Ok((format!("Not applied: {} does not fit the registry", file.filename), e.to_string()));
            }
        };
        let (diff, detail) = (&plan.diff, &plan.detail);
        let token = admin::new_token();
        let ttl = crate::store::ms_of(self.cfg.intake.admin_token_ttl);
        let expires_at = crate::store::now_ms() + ttl;
        tx.insert_admin_token(&crate::store::AdminToken {
            token: token.clone(),
            admin: admin.to_string(),
            action: if replace { "cities import --replace".into() } else { "cities import".into() },
            payload: file.data.clone(),
            detail: detail.to_string(),
            expires_at,
            used_at: None,
        })
        .await?;
        let until = chrono::DateTime::from_timestamp_millis(expires_at)
            .map(|d| d.with_timezone(&self.cfg.intake.timezone).format("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_default();
        Ok((
            format!("Dry run of {}: nothing has changed yet", file.filename),
            format!(
                "{diff}\nTo apply exactly this change, reply to this message with the line\n\n#confirm {token}\n\nThe token works once, until {until}.\n({detail})"
            ),
        ))
    }

    pub(super) async fn admin_confirm(
        &self,
        tx: &mut StoreTx,
        admin: &str,
        token: &str,
    ) -> anyhow::Result<(String, String)> {
        let not = |why: String| {
            Ok((
                format!("Not applied: {why}"),
                "Nothing was changed. Send the file again with the subject #cities import for a new token.".to_string(),
            ))
        };
        let Some(t) = tx.admin_token(token).await? else {
            return not(format!("there is no pending change with token {token}"));
        };
        if t.admin != admin {
            return not(format!("token {token} was issued to another administrator"));
        }
        if let Some(at) = t.used_at {
            let when = chrono::DateTime::from_timestamp_millis(at).map(|d| d.to_rfc3339()).unwrap_or_default();
            return not(format!("token {token} was already used ({when})"));
        }
        if t.expires_at < crate::store::now_ms() {
            return not(format!("token {token} has expired"));
        }
        let replace = t.action.ends_with("--replace");
        let plan = match registry::import::plan(&t.payload, "", &tx.list_cities().await?, replace) {
            Ok(plan) => plan,
            Err(e @ PlanError::Conflict(_)) => {
                return Ok(("Not applied: the registry changed since the dry run".into(), e.to_string()));
            }
            Err(e @ PlanError::Invalid(_)) => anyhow::bail!("stored file no longer parses: {e}"),
        };
        let diff = plan.diff;
        tx.apply_city_diff(&diff, admin, &t.detail).await?;
        tx.use_admin_token(token).await?;
        Ok(("Applied: the city list is updated".into(), format!("{diff}\n({})", t.detail)))
    }
}
