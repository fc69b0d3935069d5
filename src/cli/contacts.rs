//! `intake311 contacts …`: known officials of cities (mail from such an address identifies the
//! city). Maps arguments to the store and prints.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use intake311::store::ContactRow;

use super::output::{Table, count, emit};
use super::{ActorArgs, Context, JsonArg, email_arg};

#[derive(Subcommand, Debug)]
pub enum ContactsCmd {
    /// Record a known official of a city (mail from this address identifies the city).
    Add {
        /// The official's address.
        #[arg(value_parser = email_arg)]
        email: String,
        /// The city's id (see `cities list`).
        #[arg(long)]
        city: i64,
        /// The official's name.
        #[arg(long, default_value = "")]
        name: String,
        /// The official's title (Mayor, City Clerk, …).
        #[arg(long, default_value = "")]
        title: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Forget a contact (their mail is then matched by domain only).
    Remove {
        /// The contact's address.
        #[arg(value_parser = email_arg)]
        email: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// List contacts, of one city or all.
    List {
        /// Only the contacts of this city id.
        #[arg(long)]
        city: Option<i64>,
        #[command(flatten)]
        json: JsonArg,
    },
}

fn contact_line(c: &ContactRow) -> String {
    format!("{:<32} {:<22} {:<20} {:<10} {}", c.email, c.city, c.name, c.source, c.title)
}

pub async fn run(ctx: Context, cmd: ContactsCmd) -> anyhow::Result<ExitCode> {
    let store = &ctx.store;
    match cmd {
        ContactsCmd::Add { email, city, name, title, who } => {
            let actor = ctx.actor(&who).await?;
            let c = store
                .city_by_id(city)
                .await?
                .with_context(|| format!("no city has id {city} (intake311 cities list)"))?;
            store.add_contact(&email, &name, &title, city, &actor.email).await?;
            println!("{email} is a contact of {}", c.record.label());
        }
        ContactsCmd::Remove { email, who } => {
            let actor = ctx.actor(&who).await?;
            anyhow::ensure!(store.remove_contact(&email, &actor.email).await?, "{email} is not a contact");
            println!("removed contact {email}");
        }
        ContactsCmd::List { city, json } => {
            let rows = store.list_contacts(city).await?;
            let footer = count(rows.len(), "contact", "contacts");
            emit(json.json, &Table { rows: &rows, header: None, line: contact_line, footer })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
