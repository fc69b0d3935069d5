//! The benchmark's synthetic world: a city registry (CSV for `intake311 cities import`), the
//! officials who write in, their questions as RFC 5322 bytes (CRLF), and a writer that drops mail
//! straight into a Dovecot Maildir's `new/`.
//!
//! Everything is generated from a fixed seed, so two runs with the same `--n` see the same mail.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::seq::IndexedRandom as _;
use rand::{Rng, RngCore};

/// The shared intake mailbox the daemon reads.
pub const INTAKE: &str = "intake@311.test";
/// Where staff notices go.
pub const STAFF: &str = "staff@311.test";

/// What the daemon should decide for a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A registered, eligible city: `ack_eligible` plus a staff notice.
    Eligible,
    /// A registered city that is not in the program: `ack_not_eligible`.
    NotEligible,
    /// A domain no city has: `needs_city`, `ack_unknown_city`.
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Eligible, Outcome::NotEligible, Outcome::Unknown];
}

#[derive(Debug, Clone)]
pub struct Official {
    pub email: String,
    pub name: String,
    pub title: String,
    /// How they sign, e.g. "City of Oakville, OH".
    pub place: String,
}

/// Cities, domains and officials.
pub struct World {
    /// The registry as CSV (header + one row per city).
    pub cities_csv: String,
    pub registered_cities: usize,
    /// Officials by outcome (index = position in [`Outcome::ALL`]).
    officials: [Vec<Official>; 3],
    /// Domains of each outcome, for extra senders (the trickle's fresh users).
    domains: [Vec<(String, String)>; 3],
}

const PREFIXES: &[&str] = &[
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Ash", "Birch", "Willow", "Spruce", "Walnut", "Chestnut", "Hickory",
    "River", "Lake", "Spring", "Fair", "Green", "Red", "Stone", "Clear", "Silver", "Golden", "North", "South", "East",
    "West", "Bright", "Pleasant", "Mill", "Brook",
];
const SUFFIXES: &[&str] = &[
    "ville", "ton", "field", "wood", "dale", "port", "view", "ridge", "haven", "ford", "burg", "mont", "crest", "land",
    "side",
];
const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME",
    "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
];
const ROLES: &[(&str, &str)] = &[
    ("mayor", "Mayor"),
    ("clerk", "City Clerk"),
    ("manager", "City Manager"),
    ("publicworks", "Director of Public Works"),
    ("finance", "Finance Director"),
    ("chief", "Chief of Police"),
    ("planning", "Planning Director"),
    ("council", "Council Member"),
];
const FIRST: &[&str] = &[
    "Maria", "James", "Aisha", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "Carlos", "Susan",
    "Daniel", "Karen", "Thomas", "Nancy", "Kevin", "Grace", "Luis", "Helen", "Samuel", "Rosa", "Andre", "Emily",
    "Tyrone",
];
const LAST: &[&str] = &[
    "Johnson",
    "Garcia",
    "Nguyen",
    "Smith",
    "Okafor",
    "Martinez",
    "Brown",
    "Kowalski",
    "Lee",
    "Hernandez",
    "Davis",
    "Walker",
    "Patel",
    "Robinson",
    "Clark",
    "Lopez",
    "Young",
    "Wright",
    "Hill",
    "Scott",
    "Baker",
    "Adams",
    "Rivera",
];

impl World {
    /// `cities` registered cities (half eligible, half not) with two officials each, plus half as
    /// many unknown domains with two senders each, so the three outcomes have equal weight.
    pub fn generate(rng: &mut impl Rng, cities: usize) -> Result<World> {
        let unknown = cities / 2;
        let mut names: Vec<String> =
            PREFIXES.iter().flat_map(|p| SUFFIXES.iter().map(move |s| format!("{p}{s}"))).collect();
        if names.len() < cities + unknown {
            bail!("at most {} cities can be generated", names.len() * 2 / 3);
        }
        // Deterministic shuffle: registered cities and unknown places never share a name.
        for i in (1..names.len()).rev() {
            names.swap(i, rng.random_range(0..=i));
        }
        let mut csv = String::from("name,state,domains,eligible,eligible_from,eligible_until,population,notes\n");
        let mut officials: [Vec<Official>; 3] = Default::default();
        let mut domains: [Vec<(String, String)>; 3] = Default::default();
        for (i, name) in names.iter().take(cities + unknown).enumerate() {
            let state = STATES[i % STATES.len()];
            let outcome = if i >= cities {
                Outcome::Unknown
            } else if i % 2 == 0 {
                Outcome::Eligible
            } else {
                Outcome::NotEligible
            };
            let slug = format!("{}{}", name.to_ascii_lowercase(), state.to_ascii_lowercase());
            let (domain, place) = match outcome {
                // A distinct TLD: never equal to, or a sub-domain of, a registered .gov domain.
                Outcome::Unknown => (format!("{slug}.org"), format!("Village of {name}, {state}")),
                _ => (format!("{slug}.gov"), format!("City of {name}, {state}")),
            };
            if outcome != Outcome::Unknown {
                let mut all_domains = domain.clone();
                if i % 5 == 0 {
                    let _ = write!(all_domains, ";ci.{}.{}.us", name.to_ascii_lowercase(), state.to_ascii_lowercase());
                }
                let eligible = if outcome == Outcome::Eligible { "yes" } else { "no" };
                let note = if outcome == Outcome::Eligible { "Benchmark cohort" } else { "Applied for a later cohort" };
                let population = rng.random_range(2_000..900_000);
                let _ = writeln!(csv, "{name},{state},{all_domains},{eligible},,,{population},{note}");
            }
            let k = outcome_index(outcome);
            domains[k].push((domain.clone(), place.clone()));
            // Two officials per city, with different roles.
            let first_role = rng.random_range(0..ROLES.len());
            for role in [first_role, (first_role + 1 + rng.random_range(0..ROLES.len() - 1)) % ROLES.len()] {
                let (local, title) = ROLES[role];
                let name = format!("{} {}", pick(rng, FIRST), pick(rng, LAST));
                officials[k].push(Official {
                    email: format!("{local}@{domain}"),
                    name,
                    title: title.to_string(),
                    place: place.clone(),
                });
            }
        }
        Ok(World { cities_csv: csv, registered_cities: cities, officials, domains })
    }

    /// Every official (for creating their mailboxes).
    pub fn officials(&self) -> impl Iterator<Item = &Official> {
        self.officials.iter().flatten()
    }

    /// A random official whose mail should get `outcome`.
    pub fn pick(&self, rng: &mut impl Rng, outcome: Outcome) -> &Official {
        let list = &self.officials[outcome_index(outcome)];
        &list[rng.random_range(0..list.len())]
    }

    /// `per_outcome` fresh officials per outcome at existing domains (for the trickle, whose
    /// mailboxes must start empty).
    pub fn fresh_officials(&self, rng: &mut impl Rng, per_outcome: usize) -> Vec<Official> {
        let mut out = Vec::new();
        for outcome in Outcome::ALL {
            let domains = &self.domains[outcome_index(outcome)];
            for i in 0..per_outcome {
                let (domain, place) = &domains[(i * 7) % domains.len()];
                out.push(Official {
                    email: format!("trickle{i}@{domain}"),
                    name: format!("{} {}", pick(rng, FIRST), pick(rng, LAST)),
                    title: "Deputy City Administrator".into(),
                    place: place.clone(),
                });
            }
        }
        out
    }
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Eligible => 0,
        Outcome::NotEligible => 1,
        Outcome::Unknown => 2,
    }
}

fn pick<'a>(rng: &mut impl Rng, list: &'a [&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Questions
// ---------------------------------------------------------------------------------------------

const TOPICS: &[&str] = &[
    "water main replacement",
    "lead service lines",
    "pothole repair on arterial roads",
    "police officer recruitment",
    "moving to a 311 phone number",
    "stormwater fees",
    "snow removal contracts",
    "broadband grants",
    "short-term rental permits",
    "sidewalk accessibility",
    "street light outages",
    "code enforcement for vacant lots",
    "summer youth employment",
    "tree canopy funding",
    "bridge inspection schedules",
    "a new fire station",
    "downtown parking meters",
    "small business grants",
    "emergency alert systems",
    "recycling contracts",
];
const DEPARTMENTS: &[&str] = &[
    "Public Works",
    "the Water Department",
    "Finance",
    "the Police Department",
    "Planning and Zoning",
    "Parks and Recreation",
    "the City Attorney's office",
    "our council",
];
const SENTENCES: &[&str] = &[
    "We have been looking at {topic} for most of this year and would value your guidance.",
    "Our council asked me to find out how other cities of our size handle {topic}.",
    "{dept} estimates the cost at about ${amount} over the next {years} years, which is more than we budgeted.",
    "Residents raised {topic} at three public meetings since {month}, and the calls keep coming.",
    "Is there a federal or state program that covers part of {topic}, and are we eligible for it?",
    "We would also like to know whether a shared contract with neighbouring towns is allowed.",
    "{dept} has one person working on this part time, so any template or checklist would help a lot.",
    "Last winter we logged {count} complaints about it, up from {count2} the year before.",
    "Could you tell us what questions we should ask vendors before we sign anything?",
    "We read the report from {month} but it did not say how small cities should phase the work.",
    "Our current agreement ends on June 30, {year2}, and we need a recommendation before then.",
    "If it helps, I can send the council minutes and the spreadsheet {dept} prepared.",
    "Several residents have asked whether the city can pay for repairs on private property.",
    "We are not sure which state agency regulates this, and the answers we got so far conflict.",
    "The mayor would like to present options at the {month} council meeting.",
    "Do other cities publish a dashboard for {topic}, and what does it usually show?",
    "We have a draft ordinance but are unsure how enforcement works in practice.",
    "Our population is about {pop}, and roughly a fifth of households are over 65.",
    "Thank you for any pointers, even partial ones; we know this is a broad question.",
    "I am copying the numbers below from memory, so please treat them as approximate.",
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn sentence(rng: &mut impl Rng, topic: &str) -> String {
    let mut s = pick(rng, SENTENCES).to_string();
    for (key, value) in [
        ("{topic}", topic.to_string()),
        ("{dept}", pick(rng, DEPARTMENTS).to_string()),
        ("{amount}", format!("{},{:03}", rng.random_range(40..990), rng.random_range(0..1000))),
        ("{years}", rng.random_range(2..10).to_string()),
        ("{month}", pick(rng, MONTHS).to_string()),
        ("{count}", rng.random_range(120..900).to_string()),
        ("{count2}", rng.random_range(20..120).to_string()),
        ("{year2}", rng.random_range(2027..2030).to_string()),
        ("{pop}", format!("{},{:03}", rng.random_range(2..300), rng.random_range(0..1000))),
    ] {
        if s.contains(key) {
            s = s.replace(key, &value);
        }
    }
    // Uppercase a leading placeholder's first letter ("the Water Department ..." -> "The ...").
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

/// Appends `text` wrapped at 72 columns, CRLF line ends.
fn push_wrapped(out: &mut String, text: &str) {
    let mut col = 0;
    for word in text.split(' ') {
        if col > 0 && col + 1 + word.len() > 72 {
            out.push_str("\r\n");
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out.push_str("\r\n");
}

/// A plain-text question body of about `target` bytes, signed by `from`.
fn body(rng: &mut impl Rng, from: &Official, topic: &str, target: usize) -> String {
    let mut out = String::with_capacity(target + 512);
    out.push_str("Dear 311 for Cities team,\r\n\r\n");
    while out.len() < target.saturating_sub(200) {
        let mut para = String::new();
        for _ in 0..rng.random_range(3..7) {
            if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(&sentence(rng, topic));
        }
        push_wrapped(&mut out, &para);
        out.push_str("\r\n");
    }
    let _ = write!(out, "Best regards,\r\n\r\n{}\r\n{}\r\n{}\r\n", from.name, from.title, from.place);
    out
}

/// An attachment to carry: file name, content type, raw bytes.
pub struct Attachment {
    pub filename: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

impl Attachment {
    /// A document of `size` bytes (incompressible, like a scan or a PDF).
    pub fn random(rng: &mut impl RngCore, size: usize, seq: u64) -> Attachment {
        const KINDS: &[(&str, &str, &[u8])] = &[
            ("pdf", "application/pdf", b"%PDF-1.7\n"),
            ("jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
            ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04"),
        ];
        let (ext, content_type, magic) = KINDS[(seq % KINDS.len() as u64) as usize];
        let mut data = vec![0u8; size.max(magic.len())];
        rng.fill_bytes(&mut data);
        data[..magic.len()].copy_from_slice(magic);
        Attachment { filename: format!("council-packet-{seq}.{ext}"), content_type, data }
    }
}

/// One question as the intake mailbox would store it.
pub struct Question {
    /// Without angle brackets.
    pub message_id: String,
    pub raw: Vec<u8>,
}

/// A question from `from` to the intake address: `body_bytes` of text, optionally one base64
/// attachment. `tag` makes the Message-ID unique per benchmark phase.
pub fn question(
    rng: &mut impl Rng,
    from: &Official,
    tag: &str,
    seq: u64,
    body_bytes: usize,
    attachment: Option<&Attachment>,
) -> Question {
    let topic = pick(rng, TOPICS);
    let subject = match rng.random_range(0..4) {
        0 => format!("Question about {topic}"),
        1 => format!("{}: who should we talk to?", capitalize(topic)),
        2 => format!(
            "Help with {topic} in {}",
            from.place.trim_start_matches("City of ").trim_start_matches("Village of ")
        ),
        _ => format!("Guidance on {topic}"),
    };
    let domain = from.email.rsplit('@').next().unwrap_or("bench.test");
    let message_id = format!("bench.{tag}.{seq}.{:08x}@{domain}", rng.random::<u32>());
    let date = chrono::Utc::now().to_rfc2822();
    let text = body(rng, from, topic, body_bytes);
    let mut raw = String::with_capacity(text.len() + attachment.map_or(0, |a| a.data.len() * 4 / 3 + 1024) + 1024);
    let _ = write!(
        raw,
        "Return-Path: <{email}>\r\n\
         Delivered-To: {INTAKE}\r\n\
         Received: from mail.{domain} (mail.{domain} [192.0.2.{octet}])\r\n\tby mail.intake311.test (Postfix) with ESMTPS id {qid:X}\r\n\tfor <{INTAKE}>; {date}\r\n\
         From: {name} <{email}>\r\n\
         To: 311 for Cities <{INTAKE}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{message_id}>\r\n\
         User-Agent: Mozilla Thunderbird\r\n\
         MIME-Version: 1.0\r\n",
        email = from.email,
        name = from.name,
        octet = rng.random_range(1..255),
        qid = rng.random::<u64>() & 0xFF_FFFF_FFFF,
    );
    match attachment {
        None => {
            raw.push_str(
                "Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            );
            raw.push_str(&text);
        }
        Some(a) => {
            let boundary = format!("------------{:024x}", rng.random::<u128>() >> 32);
            let _ = write!(
                raw,
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                 This is a multi-part message in MIME format.\r\n\
                 --{boundary}\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
                 {text}\r\n\
                 --{boundary}\r\nContent-Type: {ct}; name=\"{file}\"\r\nContent-Disposition: attachment; filename=\"{file}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n",
                ct = a.content_type,
                file = a.filename,
            );
            base64_lines(&a.data, &mut raw);
            let _ = write!(raw, "--{boundary}--\r\n");
        }
    }
    Question { message_id, raw: raw.into_bytes() }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Base64 in 76-character lines, each ended by CRLF.
pub fn base64_lines(data: &[u8], out: &mut String) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(data.len() / 57 * 78 + 80);
    for line in data.chunks(57) {
        for chunk in line.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for j in 0..4 {
                out.push(if j <= chunk.len() { T[((n >> (18 - 6 * j)) & 63) as usize] as char } else { '=' });
            }
        }
        out.push_str("\r\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Maildir
// ---------------------------------------------------------------------------------------------

/// Writes messages into a Maildir's `new/` the way a delivery agent does (tmp/ then rename), owned
/// by Dovecot's `mail_uid`/`mail_gid`, named `<time>.M<seq>P<pid>.bench,S=<size>,W=<size>` so that
/// Dovecot gets each message's size without reading it (the mail is CRLF, so the virtual size W
/// equals the file size).
pub struct MaildirWriter {
    tmp: PathBuf,
    new: PathBuf,
    uid: u32,
    gid: u32,
    seq: u64,
    pub messages: u64,
    pub bytes: u64,
}

impl MaildirWriter {
    /// Creates `maildir` (and its parents up to the user's home) if missing.
    pub fn open(maildir: &Path) -> Result<MaildirWriter> {
        let (uid, gid) = crate::mailservers::lookup_user("dovecot")?;
        // The user's home and the domain directory above it may not exist yet either.
        let mut to_create = Vec::new();
        let mut p = Some(maildir);
        for _ in 0..3 {
            match p {
                Some(dir) if !dir.exists() => {
                    to_create.push(dir.to_path_buf());
                    p = dir.parent();
                }
                _ => break,
            }
        }
        for dir in to_create.iter().rev() {
            make_dir(dir, uid, gid)?;
        }
        for sub in ["cur", "new", "tmp"] {
            let d = maildir.join(sub);
            if !d.exists() {
                make_dir(&d, uid, gid)?;
            }
        }
        Ok(MaildirWriter {
            tmp: maildir.join("tmp"),
            new: maildir.join("new"),
            uid,
            gid,
            seq: 0,
            messages: 0,
            bytes: 0,
        })
    }

    /// Delivers one message.
    pub fn deliver(&mut self, raw: &[u8]) -> Result<()> {
        self.seq += 1;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let base = format!("{}.M{}P{}.bench", now.as_secs(), self.seq, std::process::id());
        let tmp = self.tmp.join(&base);
        {
            let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(raw).with_context(|| format!("writing {}", tmp.display()))?;
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod {}", tmp.display()))?;
        chown(&tmp, Some(self.uid), Some(self.gid)).with_context(|| format!("chown {}", tmp.display()))?;
        let size = raw.len();
        let dest = self.new.join(format!("{base},S={size},W={size}"));
        fs::rename(&tmp, &dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        self.messages += 1;
        self.bytes += size as u64;
        Ok(())
    }
}

fn make_dir(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).with_context(|| format!("chmod {}", dir.display()))?;
    chown(dir, Some(uid), Some(gid)).with_context(|| format!("chown {}", dir.display()))
}
