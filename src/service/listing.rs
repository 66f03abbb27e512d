//! list_shares, get_share, list_schemas, list_tables, list_all_tables.

use super::{Service, ServiceError, page_token};
use crate::domain::model::{Principal, SharedTable};
use crate::domain::policy::may_see_share;
use crate::protocol::listing as wire;

const MAX_RESULTS_LIMIT: i64 = 500;

/// Raw pagination parameters from the query string.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `maxResults`, unparsed.
    pub max_results: Option<String>,
    /// `pageToken`.
    pub page_token: Option<String>,
}

fn not_found(kind: &str, name: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "{kind} '{name}' does not exist, please contact your share provider for further \
         information."
    ))
}

impl Service {
    fn page<T: Clone>(
        &self,
        principal: &Principal,
        scope: &str,
        items: &[T],
        params: &ListParams,
    ) -> Result<wire::Page<T>, ServiceError> {
        let limit = match params.max_results.as_deref().map(str::trim) {
            None | Some("") => MAX_RESULTS_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (0..=MAX_RESULTS_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ServiceError::InvalidParameter(format!(
                        "Acceptable values of 'maxResults' are 0 to {MAX_RESULTS_LIMIT}, \
                         inclusive. (Default: {MAX_RESULTS_LIMIT}); got '{raw}'"
                    )));
                }
            },
        } as usize;
        let scope = format!("{scope}\n{}", principal.recipient_id);
        let grace = self.inner.settings.url_ttl_ms;
        let start = match params.page_token.as_deref().filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => page_token::verify(&self.inner.keyring, &scope, t, self.now_ms(), grace)?,
        };
        let start = start.min(items.len());
        let end = start.saturating_add(limit).min(items.len());
        let next_page_token = if end < items.len() {
            Some(page_token::mint(&self.inner.keyring, &scope, end)?)
        } else {
            None
        };
        Ok(wire::Page {
            items: items[start..end].to_vec(),
            next_page_token,
        })
    }

    /// Shares granted to the caller.
    pub async fn list_shares(
        &self,
        principal: &Principal,
        params: &ListParams,
    ) -> Result<wire::Page<wire::Share>, ServiceError> {
        let shares: Vec<wire::Share> = self
            .inner
            .catalog
            .list_shares()
            .await?
            .into_iter()
            .filter(|s| may_see_share(principal, &s.name))
            .map(|s| wire::Share {
                name: s.name,
                id: Some(s.id),
            })
            .collect();
        self.page(principal, "shares", &shares, params)
    }

    async fn visible_share(
        &self,
        principal: &Principal,
        share: &str,
    ) -> Result<wire::Share, ServiceError> {
        match self.inner.catalog.get_share(share).await? {
            Some(s) if may_see_share(principal, &s.name) => Ok(wire::Share {
                name: s.name,
                id: Some(s.id),
            }),
            _ => Err(not_found("Share", share)),
        }
    }

    /// One share.
    pub async fn get_share(
        &self,
        principal: &Principal,
        share: &str,
    ) -> Result<wire::GetShareResponse, ServiceError> {
        Ok(wire::GetShareResponse {
            share: self.visible_share(principal, share).await?,
        })
    }

    /// Schemas of a share.
    pub async fn list_schemas(
        &self,
        principal: &Principal,
        share: &str,
        params: &ListParams,
    ) -> Result<wire::Page<wire::Schema>, ServiceError> {
        let visible = self.visible_share(principal, share).await?;
        let schemas: Vec<wire::Schema> = self
            .inner
            .catalog
            .list_schemas(&visible.name)
            .await?
            .ok_or_else(|| not_found("Share", share))?
            .into_iter()
            .map(|s| wire::Schema {
                name: s.name,
                share: s.share,
            })
            .collect();
        self.page(
            principal,
            &format!("schemas\n{}", visible.name.to_lowercase()),
            &schemas,
            params,
        )
    }

    /// Tables of one schema (`Some`) or of a whole share (`None`).
    pub async fn list_tables(
        &self,
        principal: &Principal,
        share: &str,
        schema: Option<&str>,
        params: &ListParams,
    ) -> Result<wire::Page<wire::Table>, ServiceError> {
        let visible = self.visible_share(principal, share).await?;
        let tables = self
            .inner
            .catalog
            .list_tables(&visible.name, schema)
            .await?
            .ok_or_else(|| match schema {
                Some(sc) => not_found("Schema", &format!("{share}.{sc}")),
                None => not_found("Share", share),
            })?;
        let items: Vec<wire::Table> = tables
            .into_iter()
            .map(|t| {
                let dir = self.directory_access_offered(principal, &t);
                table_item(t, dir)
            })
            .collect();
        let scope = match schema {
            Some(sc) => format!(
                "tables\n{}\n{}",
                visible.name.to_lowercase(),
                sc.to_lowercase()
            ),
            None => format!("all-tables\n{}", visible.name.to_lowercase()),
        };
        self.page(principal, &scope, &items, params)
    }
}

fn table_item(t: SharedTable, directory_access: bool) -> wire::Table {
    wire::Table {
        location: directory_access.then(|| t.location.url().to_string()),
        access_modes: directory_access.then(|| vec!["url".to_owned(), "dir".to_owned()]),
        name: t.name,
        schema: t.schema,
        share: t.share,
        share_id: Some(t.share_id),
        id: Some(t.id),
    }
}
