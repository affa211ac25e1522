//! TAXII 2.1 push: the client half of "Add Objects" (POST
//! `{api_root}/collections/{id}/objects/`, then the status resource until
//! it is complete), and the durable spool `scanwatch run --taxii` queues
//! objects in before they are sent.
//!
//! An object counts as delivered when the server's status lists it as a
//! success, or lists it as a failure while a `GET` of that exact id and
//! version finds it in the collection: a server may refuse a version it
//! already holds (medallion does), and a re-sent object after a crash or a
//! lost answer is such a version. STIX ids and versions (`modified`) are
//! stable, so sending one twice never makes two objects.

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The media type of every TAXII 2.1 request and answer.
pub const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";

/// Where to push: shared by `share` and `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct TaxiiArgs {
    /// Push to this TAXII 2.1 API root (e.g.
    /// `https://taxii.example.org/api1/`); http:// or https://.
    #[arg(long = "taxii", value_name = "API_ROOT_URL")]
    pub url: Option<String>,
    /// The collection id to add objects to (with --taxii).
    #[arg(long, value_name = "ID", requires = "url")]
    pub collection: Option<String>,
    /// TAXII user (HTTP Basic auth, with --taxii). `share` also takes it
    /// as `--user`; in `run`, `--user` is the user to drop privileges to.
    #[arg(
        id = "taxii_user",
        long = "taxii-user",
        value_name = "USER",
        requires = "url"
    )]
    pub user: Option<String>,
    /// File holding the TAXII password (its first line); never given on the
    /// command line.
    #[arg(long, value_name = "FILE", requires = "url")]
    pub password_file: Option<PathBuf>,
}

/// What the server said of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Added, or already in the collection at this version.
    Delivered,
    /// Refused, with the server's message: sending it again will not help.
    Rejected(String),
    /// Still pending when we stopped waiting: not known to be delivered.
    Pending,
}

/// Why a push did not get an answer per object.
#[derive(Debug)]
pub enum PushError {
    /// No answer (connection refused, timeout, broken connection) or an
    /// answer that says try again (5xx, 408, 429).
    Retry(String),
    /// An answer that will not change by itself (401, 403, 404, 415, …):
    /// the settings are wrong.
    Refused(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Retry(m) | PushError::Refused(m) => f.write_str(m),
        }
    }
}

/// The object's id and version (`modified`, else `created`, else empty).
pub fn id_version(o: &Value) -> (String, String) {
    let id = o["id"].as_str().unwrap_or("").to_string();
    let v = o["modified"]
        .as_str()
        .or_else(|| o["created"].as_str())
        .unwrap_or("")
        .to_string();
    (id, v)
}

/// A TAXII 2.1 client for one collection.
pub struct Client {
    agent: ureq::Agent,
    api_root: String,
    collection: String,
    auth: Option<String>,
    /// The API root's `max_content_length`, once read.
    max_len: Option<usize>,
    /// How long to wait for a pending status to complete.
    pub status_wait: Duration,
}

/// Largest request body we send even when the server allows more.
const MAX_BODY: usize = 8 << 20;

impl Client {
    pub fn new(a: &TaxiiArgs) -> Result<Client> {
        let url = a.url.as_deref().context("--taxii URL missing")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--taxii {url:?}: give an http:// or https:// API root URL");
        }
        let collection = a
            .collection
            .clone()
            .filter(|c| !c.is_empty())
            .context("--taxii needs --collection ID")?;
        anyhow::ensure!(
            collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
            "--collection {collection:?}: a collection id is letters, digits, '-', '_' or '.'"
        );
        let auth = match (&a.user, &a.password_file) {
            (Some(u), Some(f)) => {
                let p = read_password(f)?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}").as_bytes());
                Some(format!("Basic {token}"))
            }
            (None, None) => None,
            (Some(_), None) => bail!("--taxii-user needs --password-file FILE"),
            (None, Some(_)) => bail!("--password-file needs --taxii-user USER"),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .max_redirects(0)
            .build()
            .into();
        let mut api_root = url.to_string();
        if !api_root.ends_with('/') {
            api_root.push('/');
        }
        Ok(Client {
            agent,
            api_root,
            collection,
            auth,
            max_len: None,
            status_wait: Duration::from_secs(30),
        })
    }

    pub fn describe(&self) -> String {
        format!("{}collections/{}/", self.api_root, self.collection)
    }

    fn get(&self, url: &str) -> Result<(u16, String), PushError> {
        let mut r = self.agent.get(url).header("Accept", TAXII_MEDIA);
        if let Some(a) = &self.auth {
            r = r.header("Authorization", a);
        }
        let mut resp = r
            .call()
            .map_err(|e| PushError::Retry(format!("{url}: {e}")))?;
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| PushError::Retry(format!("{url}: reading the answer: {e}")))?;
        Ok((code, body))
    }

    /// The API root's largest request body, read once.
    fn max_len(&mut self) -> Result<usize, PushError> {
        if let Some(n) = self.max_len {
            return Ok(n);
        }
        let url = self.api_root.clone();
        let (code, body) = self.get(&url)?;
        check_code(&url, code, &body)?;
        let info: Value = serde_json::from_str(&body)
            .map_err(|e| PushError::Refused(format!("{url}: not a TAXII API root ({e})")))?;
        let n = info["max_content_length"]
            .as_u64()
            .map_or(MAX_BODY, |n| (n as usize).min(MAX_BODY));
        self.max_len = Some(n);
        Ok(n)
    }

    /// Adds `objects` to the collection: one verdict per object, in order.
    /// The objects go in envelopes no larger than the API root allows.
    pub fn push(&mut self, objects: &[Value]) -> Result<Vec<Verdict>, PushError> {
        let max = self.max_len()?;
        let mut verdicts = vec![Verdict::Pending; objects.len()];
        let texts: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
        // Envelope framing: {"objects":[a,b,…]}
        let frame = 14;
        let mut start = 0;
        while start < objects.len() {
            let mut end = start;
            let mut size = frame;
            while end < objects.len() && size + texts[end].len() < max {
                size += texts[end].len() + 1;
                end += 1;
            }
            if end == start {
                verdicts[start] = Verdict::Rejected(format!(
                    "{} bytes, more than the API root's max_content_length ({max})",
                    texts[start].len()
                ));
                start += 1;
                continue;
            }
            let body = format!("{{\"objects\":[{}]}}", texts[start..end].join(","));
            let got = self.post_envelope(&objects[start..end], body)?;
            verdicts[start..end].clone_from_slice(&got);
            start = end;
        }
        Ok(verdicts)
    }

    fn post_envelope(&self, objects: &[Value], body: String) -> Result<Vec<Verdict>, PushError> {
        let url = format!("{}objects/", self.describe());
        let mut r = self
            .agent
            .post(&url)
            .header("Accept", TAXII_MEDIA)
            .content_type(TAXII_MEDIA);
        if let Some(a) = &self.auth {
            r = r.header("Authorization", a);
        }
        let mut resp = r
            .send(body.as_bytes())
            .map_err(|e| PushError::Retry(format!("{url}: {e}")))?;
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| PushError::Retry(format!("{url}: reading the answer: {e}")))?;
        check_code(&url, code, &text)?;
        let mut status: Value = serde_json::from_str(&text)
            .map_err(|e| PushError::Retry(format!("{url}: not a TAXII status resource ({e})")))?;
        let deadline = Instant::now() + self.status_wait;
        let mut pause = Duration::from_millis(100);
        while status["status"].as_str() == Some("pending") && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            let Some(sid) = status["id"].as_str() else {
                break;
            };
            let surl = format!("{}status/{sid}/", self.api_root);
            let (code, body) = self.get(&surl)?;
            check_code(&surl, code, &body)?;
            status = serde_json::from_str(&body).map_err(|e| {
                PushError::Retry(format!("{surl}: not a TAXII status resource ({e})"))
            })?;
        }
        self.verdicts(objects, &status)
    }

    /// Each object's fate from a status resource.
    fn verdicts(&self, objects: &[Value], status: &Value) -> Result<Vec<Verdict>, PushError> {
        let listed = |key: &str| -> BTreeMap<(String, String), String> {
            status[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            (
                                (
                                    d["id"].as_str().unwrap_or("").to_string(),
                                    d["version"].as_str().unwrap_or("").to_string(),
                                ),
                                d["message"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (failures, pendings) = (listed("failures"), listed("pendings"));
        let failed_ids: BTreeMap<&str, &String> =
            failures.iter().map(|((i, _), m)| (i.as_str(), m)).collect();
        let pending_ids: BTreeMap<&str, ()> =
            pendings.keys().map(|(i, _)| (i.as_str(), ())).collect();
        let complete = status["status"].as_str() == Some("complete");
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            let (id, version) = id_version(o);
            let v = if let Some(msg) = failed_ids.get(id.as_str()) {
                // Refused: perhaps because this version is already there.
                if self.holds(&id, &version)? {
                    Verdict::Delivered
                } else {
                    Verdict::Rejected(if msg.is_empty() {
                        "refused by the server (no message)".into()
                    } else {
                        (*msg).clone()
                    })
                }
            } else if pending_ids.contains_key(id.as_str()) || !complete {
                Verdict::Pending
            } else {
                Verdict::Delivered
            };
            out.push(v);
        }
        Ok(out)
    }

    /// The collection holds this id at this version: asked of its manifest
    /// (`match[id]`, `match[version]`), which lists versions as such (an
    /// object's own properties may include one named `version`).
    pub fn holds(&self, id: &str, version: &str) -> Result<bool, PushError> {
        let enc = |s: &str| s.replace(':', "%3A").replace('+', "%2B");
        let mut url = format!("{}manifest/?match%5Bid%5D={}", self.describe(), enc(id));
        if !version.is_empty() {
            url.push_str("&match%5Bversion%5D=");
            url.push_str(&enc(version));
        }
        let (code, body) = self.get(&url)?;
        if code == 404 {
            return Ok(false);
        }
        check_code(&url, code, &body)?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(v["objects"].as_array().is_some_and(|a| {
            a.iter().any(|m| {
                m["id"].as_str() == Some(id)
                    && (version.is_empty() || m["version"].as_str() == Some(version))
            })
        }))
    }
}

/// The first line of the password file; it must not be empty.
fn read_password(f: &Path) -> Result<String> {
    let text = fs::read_to_string(f).with_context(|| format!("--password-file {}", f.display()))?;
    let line = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(
        !line.is_empty(),
        "--password-file {}: empty (the password is its first line)",
        f.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(f) {
            if m.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "scanwatch: warning: --password-file {} can be read by others (chmod 600 it)",
                    f.display()
                );
            }
        }
    }
    Ok(line)
}

/// 2xx passes; the rest is an error, to retry or not.
fn check_code(url: &str, code: u16, body: &str) -> Result<(), PushError> {
    if (200..300).contains(&code) {
        return Ok(());
    }
    // A TAXII error resource has a title and perhaps a description.
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .map(|v| {
            let t = v["title"].as_str().unwrap_or("");
            let d = v["description"].as_str().unwrap_or("");
            format!("{t}{}{d}", if d.is_empty() { "" } else { ": " })
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            body.chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string()
        });
    let msg = format!("{url}: HTTP {code} {detail}");
    if code >= 500 || code == 408 || code == 429 {
        Err(PushError::Retry(msg))
    } else {
        Err(PushError::Refused(msg))
    }
}

/// `scanwatch share … --taxii`: push every object of the bundle; one line
/// per refused object, and false unless every object was delivered.
pub fn share_push(a: &TaxiiArgs, bundle: &Value) -> Result<bool> {
    let mut c = Client::new(a)?;
    let objects = bundle["objects"].as_array().cloned().unwrap_or_default();
    let verdicts = match c.push(&objects) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "scanwatch share: TAXII push to {} failed: {e}; nothing was acknowledged",
                c.describe()
            );
            return Ok(false);
        }
    };
    let mut ok = 0;
    let mut bad = 0;
    let mut pending = 0;
    for (o, v) in objects.iter().zip(&verdicts) {
        match v {
            Verdict::Delivered => ok += 1,
            Verdict::Rejected(m) => {
                bad += 1;
                eprintln!(
                    "scanwatch share: TAXII: {} refused: {m}",
                    o["id"].as_str().unwrap_or("?")
                );
            }
            Verdict::Pending => {
                pending += 1;
                eprintln!(
                    "scanwatch share: TAXII: {} still pending after {} s",
                    o["id"].as_str().unwrap_or("?"),
                    c.status_wait.as_secs()
                );
            }
        }
    }
    eprintln!(
        "scanwatch share: TAXII: {ok} of {} objects delivered to {}{}{}",
        objects.len(),
        c.describe(),
        if bad > 0 {
            format!(", {bad} refused")
        } else {
            String::new()
        },
        if pending > 0 {
            format!(", {pending} still pending")
        } else {
            String::new()
        },
    );
    Ok(bad == 0 && pending == 0)
}

/// The durable queue of objects not yet acknowledged: a journal of JSON
/// lines in `DIR/journal.jsonl`, each `{"queued": OBJECT}` or
/// `{"delivered": ID, "version": V}` or `{"refused": ID, "version": V,
/// "error": …}`, fsync'd before anything depends on it. Refused objects are
/// also copied to `DIR/refused.jsonl` for a person to look at. One process
/// holds the spool at a time (an exclusive lock on `DIR/lock`).
pub struct Spool {
    dir: PathBuf,
    journal: File,
    _lock: File,
    /// id -> (version, object): the newest queued version of each id not
    /// yet delivered.
    pending: BTreeMap<String, (String, Value)>,
    /// Order in which ids were queued (oldest first), for sending.
    order: Vec<String>,
    lines: u64,
    /// Lines of the journal that could not be read (a cut last line after
    /// a crash): counted and reported, never guessed at.
    pub unreadable: u64,
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool> {
        fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .with_context(|| format!("{}", dir.join("lock").display()))?;
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: a valid open descriptor.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                bail!(
                    "TAXII spool {} is in use by another scanwatch (give each run its own --taxii-spool)",
                    dir.display()
                );
            }
        }
        let path = dir.join("journal.jsonl");
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            journal: OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
                .with_context(|| format!("{}", path.display()))?,
            _lock: lock,
            pending: BTreeMap::new(),
            order: Vec::new(),
            lines: 0,
            unreadable: 0,
        };
        let f = File::open(&path).with_context(|| format!("{}", path.display()))?;
        for line in BufReader::new(f).split(b'\n') {
            let line = line.with_context(|| format!("{}", path.display()))?;
            if line.is_empty() {
                continue;
            }
            spool.lines += 1;
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) => spool.replay(v),
                Err(_) => spool.unreadable += 1,
            }
        }
        // Start from a clean journal holding what is pending (drops the
        // history and any cut line).
        spool.rewrite()?;
        Ok(spool)
    }

    fn replay(&mut self, v: Value) {
        if let Some(o) = v.get("queued") {
            self.insert(o.clone());
        } else if let Some(id) = v
            .get("delivered")
            .or_else(|| v.get("refused"))
            .and_then(Value::as_str)
        {
            let ver = v["version"].as_str().unwrap_or("");
            self.remove(id, ver);
        } else {
            self.unreadable += 1;
        }
    }

    /// Keeps the newer version of an id (a grown sighting replaces the
    /// older one: it carries everything the older one said).
    fn insert(&mut self, o: Value) -> bool {
        let (id, ver) = id_version(&o);
        match self.pending.get(&id) {
            Some((old, _)) if *old >= ver => false,
            Some(_) => {
                self.pending.insert(id, (ver, o));
                true
            }
            None => {
                self.order.push(id.clone());
                self.pending.insert(id, (ver, o));
                true
            }
        }
    }

    fn remove(&mut self, id: &str, ver: &str) {
        if self.pending.get(id).is_some_and(|(v, _)| v == ver) {
            self.pending.remove(id);
            self.order.retain(|i| i != id);
        }
    }

    fn append(&mut self, lines: &[Value]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, l)?;
            buf.push(b'\n');
        }
        self.journal
            .write_all(&buf)
            .and_then(|_| self.journal.sync_data())
            .with_context(|| format!("{}", self.dir.join("journal.jsonl").display()))?;
        self.lines += lines.len() as u64;
        Ok(())
    }

    /// Queues objects durably (returns once they are on disk).
    pub fn queue(&mut self, objects: Vec<Value>) -> Result<usize> {
        let mut lines = Vec::new();
        for o in objects {
            if self.insert(o.clone()) {
                lines.push(json!({ "queued": o }));
            }
        }
        let n = lines.len();
        self.append(&lines)?;
        Ok(n)
    }

    /// Up to `n` pending objects, oldest first.
    pub fn next_batch(&self, n: usize) -> Vec<Value> {
        self.order
            .iter()
            .take(n)
            .filter_map(|id| self.pending.get(id).map(|(_, o)| o.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Records what the server said of `objects`.
    pub fn settle(&mut self, objects: &[Value], verdicts: &[Verdict]) -> Result<()> {
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        for (o, v) in objects.iter().zip(verdicts) {
            let (id, ver) = id_version(o);
            match v {
                Verdict::Delivered => {
                    lines.push(json!({ "delivered": id, "version": ver }));
                }
                Verdict::Rejected(m) => {
                    lines.push(json!({ "refused": id, "version": ver, "error": m }));
                    refused.push(json!({ "error": m, "object": o }));
                }
                Verdict::Pending => continue,
            }
            self.remove(&id, &ver);
        }
        if !refused.is_empty() {
            let p = self.dir.join("refused.jsonl");
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| format!("{}", p.display()))?;
            for r in refused {
                writeln!(f, "{r}").with_context(|| format!("{}", p.display()))?;
            }
            f.sync_data().ok();
        }
        self.append(&lines)?;
        // Nothing left: an empty journal; else keep it short.
        if self.pending.is_empty() || self.lines > 4 * self.pending.len() as u64 + 1024 {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Replaces the journal by one `queued` line per pending object
    /// (written aside, fsync'd, renamed over).
    fn rewrite(&mut self) -> Result<()> {
        let path = self.dir.join("journal.jsonl");
        let tmp = self.dir.join("journal.jsonl.new");
        {
            let mut f = File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
            let mut buf = Vec::new();
            for id in &self.order {
                if let Some((_, o)) = self.pending.get(id) {
                    serde_json::to_writer(&mut buf, &json!({ "queued": o }))?;
                    buf.push(b'\n');
                }
            }
            f.write_all(&buf)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("{}", tmp.display()))?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("{}", path.display()))?;
        if let Ok(d) = File::open(&self.dir) {
            d.sync_all().ok();
        }
        self.journal = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&path)
            .with_context(|| format!("{}", path.display()))?;
        self.journal.seek(std::io::SeekFrom::End(0)).ok();
        self.lines = self.pending.len() as u64;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: &str, modified: &str) -> Value {
        json!({"type": "sighting", "id": id, "created": "2024-01-01T00:00:00.000Z", "modified": modified})
    }

    #[test]
    fn spool_survives_reopen_and_keeps_the_newest_version() {
        let dir = std::env::temp_dir().join(format!("sw-spool-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        {
            let mut s = Spool::open(&dir).unwrap();
            let n = s
                .queue(vec![
                    obj("sighting--a", "2024-01-01T00:00:01.000Z"),
                    obj("sighting--b", "2024-01-01T00:00:01.000Z"),
                ])
                .unwrap();
            assert_eq!(n, 2);
            // A grown sighting replaces the queued older version; an older
            // one queued late does not replace a newer one.
            s.queue(vec![obj("sighting--a", "2024-01-01T00:00:05.000Z")])
                .unwrap();
            s.queue(vec![obj("sighting--a", "2024-01-01T00:00:03.000Z")])
                .unwrap();
            // A second process cannot take the spool.
            assert!(Spool::open(&dir).is_err());
            let b = s.next_batch(10);
            assert_eq!(b.len(), 2);
            // b delivered; a's answer lost (pending): a stays.
            s.settle(&b, &[Verdict::Pending, Verdict::Delivered])
                .unwrap();
            assert_eq!(s.len(), 1);
        }
        // Cut last line, as after a crash in the middle of a write.
        let j = dir.join("journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&j).unwrap();
        f.write_all(b"{\"queued\": {\"id\":").unwrap();
        drop(f);
        let mut s = Spool::open(&dir).unwrap();
        assert_eq!(s.unreadable, 1);
        assert_eq!(s.len(), 1);
        let b = s.next_batch(10);
        assert_eq!(id_version(&b[0]).1, "2024-01-01T00:00:05.000Z");
        // A delivery of an older version does not clear the newer one.
        s.settle(
            &[obj("sighting--a", "2024-01-01T00:00:01.000Z")],
            &[Verdict::Delivered],
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        s.settle(&b, &[Verdict::Rejected("bad".into())]).unwrap();
        assert_eq!(s.len(), 0);
        assert!(fs::read_to_string(dir.join("refused.jsonl"))
            .unwrap()
            .contains("sighting--a"));
        drop(s);
        let s = Spool::open(&dir).unwrap();
        assert_eq!((s.len(), s.unreadable), (0, 0));
        let _ = fs::remove_dir_all(&dir);
    }
}
