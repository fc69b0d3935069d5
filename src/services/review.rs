//! The review queue: requests whose city a person must decide, with any suggested city named.
//!
//! Owns: [`ReviewEntry`] (the request plus the suggestion's label). The decisions themselves
//! are staff actions ([`super::staff::approve`], [`super::staff::reject`]).
//! Talks to: [`crate::store`].

use std::collections::HashMap;

use serde::Serialize;

use crate::store::{RequestRow, Store};

/// One request waiting for a person to decide its city.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewEntry {
    #[serde(flatten)]
    pub request: RequestRow,
    /// `City, ST (#id)` of the suggested city, when there is one.
    pub suggested_city: Option<String>,
}

/// The review queue, oldest first, each with its suggestion's label.
pub async fn queue(store: &Store) -> anyhow::Result<Vec<ReviewEntry>> {
    let rows = store.review_queue().await?;
    let labels: HashMap<i64, String> = if rows.iter().any(|r| r.suggested_city_id.is_some()) {
        store.list_cities().await?.into_iter().map(|c| (c.id, format!("{} (#{})", c.record.label(), c.id))).collect()
    } else {
        HashMap::new()
    };
    Ok(rows
        .into_iter()
        .map(|request| {
            let suggested_city = request.suggested_city_id.and_then(|id| labels.get(&id).cloned());
            ReviewEntry { request, suggested_city }
        })
        .collect())
}
