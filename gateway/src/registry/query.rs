//! Search filters and pagination: exact-match AND over the given fields, newest first.

use schemars::JsonSchema;
use serde::Deserialize;

use super::error::RegistryError;
use super::model::{Event, Group, Nvrpp, Receiver};

/// Default page size of a search.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size a search accepts.
pub const MAX_LIMIT: usize = 1000;
/// Most stored objects one search looks at: a filter that matches few of them ends its page
/// early (fewer results than the limit) with the cursor where it stopped, so that no request
/// scans the whole store and every result is still reached by following `next`.
pub const MAX_SCANNED: usize = 10_000;
/// Most payload bytes one page of events holds: a page reaching it ends early (at least one
/// event; cursor in `next`), so that no answer is larger than about this much.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// What a store's search found: at most `limit + 1` matches, and, when it looked at
/// [`MAX_SCANNED`] objects before finding that many, the id of the last one it looked at.
#[derive(Debug)]
pub struct Scan<T> {
    /// The matches, newest first.
    pub items: Vec<T>,
    /// Where the search stopped early, if it did.
    pub stopped_at: Option<String>,
}

impl<T> Scan<T> {
    /// A complete search.
    pub fn complete(items: Vec<T>) -> Self {
        Scan {
            items,
            stopped_at: None,
        }
    }
}

/// What an object counts towards a page's [`MAX_PAGE_BYTES`]: its payload or schema.
pub trait PageBytes {
    /// The bytes it counts.
    fn page_bytes(&self) -> usize;
}

impl PageBytes for Event {
    fn page_bytes(&self) -> usize {
        self.payload.get().len()
    }
}

impl PageBytes for Receiver {
    fn page_bytes(&self) -> usize {
        self.schema.get().len()
    }
}

impl PageBytes for Group {
    fn page_bytes(&self) -> usize {
        0
    }
}

/// Gathers one page of a newest-first scan with the bounds every store keeps: at most
/// `limit + 1` matches, [`MAX_SCANNED`] objects looked at and [`MAX_PAGE_BYTES`] gathered. A
/// store offers each object it looks at, in order, and stops when told to.
pub struct Gather<T> {
    items: Vec<T>,
    limit: usize,
    scanned: usize,
    bytes: usize,
    last: String,
}

impl<T: PageBytes> Gather<T> {
    /// An empty page of at most `page.limit + 1` matches.
    pub fn new(page: &Page) -> Self {
        Gather {
            items: Vec::new(),
            limit: page.limit,
            scanned: 0,
            bytes: 0,
            last: String::new(),
        }
    }

    /// Takes note of the object with id `id` that the scan looked at, and of it when it
    /// matched; `Some` ends the scan with the page found.
    pub fn look_at(&mut self, id: &str, matched: Option<T>) -> Option<Scan<T>> {
        if self.scanned == MAX_SCANNED {
            return Some(self.stopped());
        }
        self.scanned += 1;
        id.clone_into(&mut self.last);
        let item = matched?;
        self.bytes += item.page_bytes();
        self.items.push(item);
        if self.items.len() > self.limit {
            return Some(Scan::complete(std::mem::take(&mut self.items)));
        }
        (self.bytes >= MAX_PAGE_BYTES).then(|| self.stopped())
    }

    /// The page when the scan ran out of objects.
    pub fn finish(self) -> Scan<T> {
        Scan::complete(self.items)
    }

    /// The page so far, ending where the scan stopped (after the last object looked at).
    fn stopped(&mut self) -> Scan<T> {
        Scan {
            items: std::mem::take(&mut self.items),
            stopped_at: Some(std::mem::take(&mut self.last)),
        }
    }
}

/// One page of a search: at most `limit` results, all older than the `after` cursor.
#[derive(Debug, Clone)]
pub struct Page {
    /// Maximum number of results.
    pub limit: usize,
    /// Only results whose id sorts before this one (the last id of the previous page).
    pub after: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl Page {
    /// The page a client asked for: `limit` between 1 and [`MAX_LIMIT`] (default
    /// [`DEFAULT_LIMIT`]), results older than `after`.
    pub fn new(limit: Option<i64>, after: Option<String>) -> Result<Self, RegistryError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT as i64);
        match usize::try_from(limit) {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Page { limit: n, after }),
            _ => Err(RegistryError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            ))),
        }
    }
}

/// Results of a search and the cursor of the next page, if there is one.
#[derive(Debug)]
pub struct Found<T> {
    /// The results, newest first.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Found<T> {
    /// Cuts the matches (fetched with one extra) to `limit` and sets the cursor from the last
    /// id kept, or from where the search stopped early.
    pub fn paginate(scan: Scan<T>, limit: usize, id: impl Fn(&T) -> &str) -> Self {
        let Scan {
            mut items,
            stopped_at,
        } = scan;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| id(last).to_owned())
        } else {
            stopped_at
        };
        Found { items, next }
    }
}

fn matches(wanted: &Option<String>, actual: &str) -> bool {
    wanted.as_deref().is_none_or(|w| w == actual)
}

/// Filter on events; `None` fields match anything.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Event id.
    pub id: Option<String>,
    /// NVRPP name.
    pub name: Option<String>,
    /// NVRPP version.
    pub version: Option<String>,
    /// NVRPP release.
    pub release: Option<String>,
    /// NVRPP platform id.
    pub platform_id: Option<String>,
    /// NVRPP package.
    pub package: Option<String>,
    /// Success.
    pub success: Option<bool>,
    /// Receiver id.
    pub event_receiver_id: Option<String>,
}

impl EventFilter {
    /// The events about `unit` (its five parts all equal).
    pub fn of_unit(unit: &Nvrpp) -> Self {
        EventFilter {
            name: Some(unit.name.clone()),
            version: Some(unit.version.clone()),
            release: Some(unit.release.clone()),
            platform_id: Some(unit.platform_id.clone()),
            package: Some(unit.package.clone()),
            ..EventFilter::default()
        }
    }

    /// Its text fields, given or not.
    pub fn fields(&self) -> [&Option<String>; 7] {
        [
            &self.id,
            &self.name,
            &self.version,
            &self.release,
            &self.platform_id,
            &self.package,
            &self.event_receiver_id,
        ]
    }

    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &Event) -> bool {
        matches(&self.id, &e.id)
            && matches(&self.name, &e.name)
            && matches(&self.version, &e.version)
            && matches(&self.release, &e.release)
            && matches(&self.platform_id, &e.platform_id)
            && matches(&self.package, &e.package)
            && self.success.is_none_or(|s| s == e.success)
            && matches(&self.event_receiver_id, &e.event_receiver_id)
    }
}

/// Filter on receivers or groups (both are searched by id, name, type and version).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionFilter {
    /// Id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Version.
    pub version: Option<String>,
}

impl DefinitionFilter {
    /// Its text fields, given or not.
    pub fn fields(&self) -> [&Option<String>; 4] {
        [&self.id, &self.name, &self.kind, &self.version]
    }

    fn matches_fields(&self, id: &str, name: &str, kind: &str, version: &str) -> bool {
        matches(&self.id, id)
            && matches(&self.name, name)
            && matches(&self.kind, kind)
            && matches(&self.version, version)
    }

    /// Whether receiver `r` passes the filter.
    pub fn matches_receiver(&self, r: &Receiver) -> bool {
        self.matches_fields(&r.id, &r.name, &r.kind, &r.version)
    }

    /// Whether group `g` passes the filter.
    pub fn matches_group(&self, g: &Group) -> bool {
        self.matches_fields(&g.id, &g.name, &g.kind, &g.version)
    }
}
