//! What a command needs before it runs: the config, the store (refused unless its schema is
//! exactly this binary's), the intake core for staff actions, and the acting person.
//!
//! Owns: the actor rule (`--as`, then `$INTAKE311_STAFF`, then `$SUDO_USER`/`$USER`) and the
//! schema gate of every command but `migrate` and `run`. Talks to: [`intake311::config`],
//! [`intake311::store`], [`intake311::intake`], [`intake311::services::staff`].

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use intake311::config::Config;
use intake311::intake::{Actor, Intake};
use intake311::outbound::Templates;
use intake311::services;
use intake311::store::{Source, Store};

use super::{ActorArgs, email_arg};

/// The config and an opened store whose schema is current.
pub struct Context {
    pub cfg: Arc<Config>,
    pub store: Store,
}

impl Context {
    /// Loads the config and opens the store. A database whose schema is not this binary's
    /// (missing, older, newer, broken) is an error that says what to do; nothing is changed.
    pub async fn open(config: Option<&Path>) -> anyhow::Result<Context> {
        let cfg = Config::load(config)?;
        intake311::services::set_display_zone(cfg.intake.timezone);
        let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
        let schema = store.schema_state().await.context("reading the database schema version")?;
        if !schema.is_current() {
            anyhow::bail!("{}: {schema}", cfg.database.url);
        }
        Ok(Context { cfg: Arc::new(cfg), store })
    }

    /// The intake core, for staff and review actions (loads the templates).
    pub fn intake(&self) -> anyhow::Result<Intake> {
        let templates = Templates::load(&self.cfg.intake.templates_dir)?;
        Intake::new(
            self.store.clone(),
            Arc::clone(&self.cfg),
            Arc::new(templates),
            Arc::new(tokio::sync::Notify::new()),
        )
    }

    /// The acting person (see [`actor_email`]), with their name from the staff list.
    pub async fn actor(&self, who: &ActorArgs) -> anyhow::Result<Actor> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let email = actor_email(who.as_.as_deref(), env("INTAKE311_STAFF"), env("SUDO_USER"), env("USER"))
            .map_err(anyhow::Error::msg)?;
        services::staff::actor(&self.store, &email, Source::Cli).await
    }
}

/// The one actor rule: `--as` (already checked), else `$INTAKE311_STAFF` (must be an address),
/// else the login name from `$SUDO_USER`, else `$USER`, else `cli`.
pub fn actor_email(
    as_: Option<&str>,
    staff_env: Option<String>,
    sudo_user: Option<String>,
    user: Option<String>,
) -> Result<String, String> {
    if let Some(a) = as_ {
        return email_arg(a);
    }
    if let Some(s) = staff_env {
        return email_arg(&s).map_err(|e| format!("$INTAKE311_STAFF: {e}"));
    }
    Ok(sudo_user.or(user).unwrap_or_else(|| "cli".into()))
}

#[cfg(test)]
mod tests {
    use super::actor_email;

    #[test]
    fn the_actor_rule_in_order() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(actor_email(Some("Ana@311.test"), s("b@x.test"), s("root"), s("u")), Ok("ana@311.test".into()));
        assert_eq!(actor_email(None, s("B@X.test"), s("root"), s("u")), Ok("b@x.test".into()));
        assert_eq!(actor_email(None, None, s("root"), s("u")), Ok("root".into()));
        assert_eq!(actor_email(None, None, None, s("u")), Ok("u".into()));
        assert_eq!(actor_email(None, None, None, None), Ok("cli".into()));
        assert!(actor_email(None, s("nobody"), None, None).unwrap_err().contains("$INTAKE311_STAFF"));
    }
}
